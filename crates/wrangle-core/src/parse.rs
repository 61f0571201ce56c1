//! Parsers for everything a user types: durations, times, payload JSON, store URLs.
//!
//! Each returns an [`InputError`] whose message is one line naming what is wrong, which
//! every front end prints as is and turns into exit code 2.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Malformed user input: one line saying what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    message: String,
}

impl InputError {
    /// An error with `message` (no trailing period needed). It is kept to one line:
    /// control characters (which quoted input may hold) are shown escaped, as `\n`.
    pub fn new(message: impl Into<String>) -> Self {
        InputError {
            message: one_line(message.into()),
        }
    }
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`), so that a message quoting
/// user input stays one line and cannot move a terminal's cursor.
pub fn one_line(text: String) -> String {
    if !text.chars().any(char::is_control) {
        return text;
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Parses an id range `START..END` (end exclusive, so `0..10` is ten ids; negative ids
/// allowed). The range must not be empty.
pub fn parse_range(text: &str) -> Result<(i64, i64), InputError> {
    let invalid = |why: &str| InputError::new(format!("invalid range '{text}': {why}"));
    let (start, end) = text
        .trim()
        .split_once("..")
        .ok_or_else(|| invalid("expected START..END, e.g. 0..1000"))?;
    let bound = |s: &str, which: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| invalid(&format!("{which} is not an integer")))
    };
    let (start, end) = (bound(start, "START")?, bound(end, "END")?);
    if end <= start {
        return Err(invalid("END must be greater than START (END is exclusive)"));
    }
    Ok((start, end))
}

/// The longest duration anything accepts: a hundred years. Times computed from longer
/// ones (`now + delay`) would leave the calendar the stores can hold.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a duration such as `250ms`, `2s`, `10m`, `1h30m` or `1d` (at most
/// [`MAX_DURATION`]).
pub fn parse_duration(text: &str) -> Result<Duration, InputError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(InputError::new(
            "invalid duration '': expected e.g. 500ms, 2s, 10m, 1h",
        ));
    }
    let duration = humantime::parse_duration(trimmed).map_err(|err| {
        InputError::new(format!(
            "invalid duration '{text}': {err} (expected e.g. 500ms, 2s, 10m, 1h)"
        ))
    })?;
    if duration > MAX_DURATION {
        return Err(InputError::new(format!(
            "invalid duration '{text}': at most 100 years"
        )));
    }
    Ok(duration)
}

/// Parses an absolute time: RFC 3339 (`2026-11-23T12:00:00Z`, with offset) or
/// `YYYY-MM-DD HH:MM:SS` taken as UTC.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, InputError> {
    let trimmed = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%d %H:%M:%S") {
        return Ok(t.and_utc());
    }
    Err(InputError::new(format!(
        "invalid time '{text}': expected RFC 3339 such as 2026-11-23T12:00:00Z"
    )))
}

/// Parses a task payload. It must be valid JSON; an empty string is `null`.
pub fn parse_payload(text: &str) -> Result<Value, InputError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|err| {
        InputError::new(format!(
            "invalid payload JSON: {err} in '{}'",
            shorten(text, 60)
        ))
    })
}

/// Parses a size in bytes: `512M`, `2G`, `1.5G`, `800K`, `1048576` (binary units, an
/// optional trailing `B` or `iB`).
pub fn parse_size(text: &str) -> Result<u64, InputError> {
    let invalid = || {
        InputError::new(format!(
            "invalid size '{text}': expected a number with K, M or G, e.g. 512M"
        ))
    };
    let upper = text.trim().to_ascii_uppercase();
    let number = upper.trim_end_matches("IB").trim_end_matches('B');
    let (digits, unit) = match number.char_indices().last() {
        Some((i, 'K')) => (&number[..i], 1u64 << 10),
        Some((i, 'M')) => (&number[..i], 1 << 20),
        Some((i, 'G')) => (&number[..i], 1 << 30),
        Some((i, 'T')) => (&number[..i], 1 << 40),
        _ => (number, 1),
    };
    let value: f64 = digits.trim().parse().map_err(|_| invalid())?;
    if !value.is_finite() || value <= 0.0 || value * unit as f64 >= u64::MAX as f64 {
        return Err(invalid());
    }
    Ok((value * unit as f64) as u64)
}

/// Parses a queue or kind name: non-empty, at most 128 bytes, no whitespace or control
/// characters (they are shown in tables and used in store keys).
pub fn parse_name(what: &str, text: &str) -> Result<String, InputError> {
    if text.is_empty()
        || text.len() > 128
        || text.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(InputError::new(format!(
            "invalid {what} name '{}': use 1 to 128 characters without spaces",
            shorten(text, 60)
        )));
    }
    Ok(text.to_string())
}

/// Checks an environment variable's name as `--env` and `[kinds.X] env` take it: letters,
/// digits and `_`, not starting with a digit (what a shell can read back as `$NAME`).
pub fn check_env_name(name: &str) -> Result<(), InputError> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(InputError::new(format!(
            "invalid environment variable name '{name}': use letters, digits and _, not starting with a digit"
        )))
    }
}

/// Checks a value an environment variable can hold (no NUL byte).
pub fn check_env_value(name: &str, value: &str) -> Result<(), InputError> {
    if value.contains('\0') {
        return Err(InputError::new(format!(
            "the value of {name} holds a NUL byte, which no environment variable can"
        )));
    }
    Ok(())
}

/// Parses `NAME=VALUE` (the value may be empty, and may hold `=`).
pub fn parse_env_assignment(text: &str) -> Result<(String, String), InputError> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| InputError::new(format!("invalid --env '{text}': expected NAME=VALUE")))?;
    check_env_name(name)?;
    check_env_value(name, value)?;
    Ok((name.to_string(), value.to_string()))
}

/// `text` cut to `max` characters, with `…` appended when something was cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

/// `url` with its password replaced by `***`, for messages and logs: the password of the
/// user part (`postgres://user:***@host/db`) and the value of any query option whose name
/// ends in `pass` or `password` (`redis+unix:///run/redis.sock?pass=***`).
///
/// When the URL is malformed (a password holding an unescaped `/`, `?` or `#`), more is
/// hidden rather than less: everything from the first `:` after the scheme to the last
/// `@`.
pub fn redact_url(url: &str) -> String {
    let (mut out, rest, user_end) = match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let authority = &rest[..authority_end];
            // Where the user part ends: the last `@` of the authority; or, when a `:` in
            // the authority is followed by something other than a port number, the last
            // `@` anywhere (the password then holds a `/`, `?` or `#`).
            let looks_like_port =
                |after: &str| after.is_empty() || after.bytes().all(|b| b.is_ascii_digit());
            let user_end = match authority.rfind('@') {
                Some(at) => Some(at),
                None => match authority.split_once(':') {
                    Some((_, after)) if !looks_like_port(after) => rest.rfind('@'),
                    _ => None,
                },
            };
            (format!("{scheme}://"), rest, user_end)
        }
        // Not a URL (a mistyped scheme): anything before an `@` may be a password.
        None => (String::new(), url, url.rfind('@')),
    };
    let remainder = match user_end {
        Some(at) => {
            match rest[..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(&rest[..at]),
            }
            &rest[at..]
        }
        None => rest,
    };
    match remainder.split_once('?') {
        None => out.push_str(remainder),
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_password_option(name) => format!("{name}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
    }
    out
}

/// Whether a URL query option named `name` holds a password (`password`, `pass`,
/// `sslpassword`, …).
fn is_password_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with("pass") || name.ends_with("password")
}

/// Where tasks are kept, parsed from a store URL.
///
/// Its `Display` and `Debug` hide the password (see [`redact_url`]); the variants hold the
/// URL as given, for the driver.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH[?OPTIONS]` (relative or absolute) or a bare path ending in `.db`;
    /// the options (e.g. `synchronous=normal`) are the store's to interpret.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The query string after `?`, empty if none.
        options: String,
    },
    /// `memory://`: this process only.
    Memory,
    /// `postgres://…` or `postgresql://…`, kept verbatim for the driver.
    Postgres(String),
    /// `redis://…`, `rediss://…` or `redis+unix://…`, kept verbatim.
    Redis(String),
    /// `mysql://…` or `mariadb://…`, kept verbatim (`mariadb` is rewritten to `mysql`).
    Mysql(String),
}

/// The embedded default store, relative to the working directory.
pub const DEFAULT_STORE_PATH: &str = ".wrangle/wrangle.db";

impl StoreUrl {
    /// Parses a store URL; see the variants for the accepted forms.
    pub fn parse(text: &str) -> Result<StoreUrl, InputError> {
        let text = text.trim();
        // Errors quote the URL without its password.
        let shown = redact_url(text);
        let Some((scheme, rest)) = text.split_once("://") else {
            if text.ends_with(".db") || text.ends_with(".sqlite") {
                return Ok(StoreUrl::Sqlite {
                    path: PathBuf::from(text),
                    options: String::new(),
                });
            }
            return Err(InputError::new(format!(
                "invalid store URL '{}': expected sqlite://PATH, postgres://…, redis://…, mysql://… or memory://",
                shorten(&shown, 60)
            )));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                let (path, options) = rest.split_once('?').unwrap_or((rest, ""));
                if path.is_empty() {
                    return Err(InputError::new(format!(
                        "invalid store URL '{shown}': sqlite:// needs a file path, e.g. sqlite://.wrangle/wrangle.db"
                    )));
                }
                Ok(StoreUrl::Sqlite {
                    path: PathBuf::from(path),
                    options: options.to_string(),
                })
            }
            "memory" => Ok(StoreUrl::Memory),
            "postgres" | "postgresql" => Ok(StoreUrl::Postgres(text.to_string())),
            "redis" | "rediss" | "redis+unix" => Ok(StoreUrl::Redis(text.to_string())),
            "mysql" => Ok(StoreUrl::Mysql(text.to_string())),
            "mariadb" => Ok(StoreUrl::Mysql(format!("mysql://{rest}"))),
            other => Err(InputError::new(format!(
                "unsupported store scheme '{other}://' in '{shown}': use sqlite, postgres, redis, mysql or memory"
            ))),
        }
    }

    /// The default store: `sqlite://.wrangle/wrangle.db`.
    pub fn default_sqlite() -> StoreUrl {
        StoreUrl::Sqlite {
            path: PathBuf::from(DEFAULT_STORE_PATH),
            options: String::new(),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite { path, options } if options.is_empty() => {
                write!(f, "sqlite://{}", path.display())
            }
            StoreUrl::Sqlite { path, options } => {
                write!(f, "sqlite://{}?{options}", path.display())
            }
            StoreUrl::Memory => f.write_str("memory://"),
            StoreUrl::Postgres(url) | StoreUrl::Redis(url) | StoreUrl::Mysql(url) => {
                f.write_str(&redact_url(url))
            }
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite { path, options } => f
                .debug_struct("Sqlite")
                .field("path", path)
                .field("options", options)
                .finish(),
            StoreUrl::Memory => f.write_str("Memory"),
            StoreUrl::Postgres(url) => f.debug_tuple("Postgres").field(&redact_url(url)).finish(),
            StoreUrl::Redis(url) => f.debug_tuple("Redis").field(&redact_url(url)).finish(),
            StoreUrl::Mysql(url) => f.debug_tuple("Mysql").field(&redact_url(url)).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_assignments() {
        assert_eq!(
            parse_env_assignment("RAILS_ENV=production"),
            Ok(("RAILS_ENV".into(), "production".into()))
        );
        assert_eq!(parse_env_assignment("A="), Ok(("A".into(), String::new())));
        assert_eq!(
            parse_env_assignment("A=b=c"),
            Ok(("A".into(), "b=c".into()))
        );
        for bad in ["A", "=x", "1A=x", "A-B=x", "A B=x", "A=\0"] {
            let err = parse_env_assignment(bad).unwrap_err().to_string();
            assert!(!err.contains('\n') && !err.is_empty(), "{bad}: {err}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("0..10"), Ok((0, 10)));
        assert_eq!(parse_range(" -5..5 "), Ok((-5, 5)));
        for bad in [
            "", "10", "0..", "..5", "a..b", "5..5", "9..3", "0...5", "1.5..3",
        ] {
            let err = parse_range(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid range"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration(" 10m ").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("36500d").unwrap(), MAX_DURATION);
        for bad in ["5x", "", "abc", "-1s", "1.5.2s", "99999999999d", "101y"] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("invalid duration '{bad}'")),
                "{err}"
            );
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn times() {
        let t = parse_time("2026-11-23T12:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T12:00:00+00:00");
        let t = parse_time("2026-11-23T13:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T12:00:00+00:00");
        assert!(parse_time("2026-11-23 12:00:00").is_ok());
        assert!(parse_time("tomorrow").is_err());
    }

    #[test]
    fn payloads() {
        assert_eq!(
            parse_payload(r#"{"x":1}"#).unwrap(),
            serde_json::json!({"x": 1})
        );
        assert_eq!(parse_payload("").unwrap(), Value::Null);
        assert_eq!(parse_payload("42").unwrap(), serde_json::json!(42));
        let err = parse_payload("{bad").unwrap_err().to_string();
        assert!(err.starts_with("invalid payload JSON:"), "{err}");
        assert!(err.contains("{bad"));
        let long = format!("[{}", "1,".repeat(200));
        let err = parse_payload(&long).unwrap_err().to_string();
        assert!(err.len() < 200, "long inputs are shortened: {err}");
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("queue", "emails").unwrap(), "emails");
        assert!(parse_name("queue", "").is_err());
        assert!(parse_name("queue", "a b").is_err());
        assert!(parse_name("kind", &"x".repeat(129)).is_err());
    }

    fn sqlite(path: &str, options: &str) -> StoreUrl {
        StoreUrl::Sqlite {
            path: path.into(),
            options: options.into(),
        }
    }

    #[test]
    fn store_urls() {
        let with_options = StoreUrl::parse("sqlite://a.db?synchronous=normal").unwrap();
        assert_eq!(with_options, sqlite("a.db", "synchronous=normal"));
        assert_eq!(with_options.to_string(), "sqlite://a.db?synchronous=normal");
        assert_eq!(
            StoreUrl::parse("sqlite://.wrangle/wrangle.db").unwrap(),
            sqlite(".wrangle/wrangle.db", "")
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///tmp/x.db").unwrap(),
            sqlite("/tmp/x.db", "")
        );
        assert_eq!(StoreUrl::parse("jobs.db").unwrap(), sqlite("jobs.db", ""));
        assert_eq!(StoreUrl::parse("memory://").unwrap(), StoreUrl::Memory);
        assert!(matches!(
            StoreUrl::parse("postgres://u@h/db").unwrap(),
            StoreUrl::Postgres(_)
        ));
        assert!(matches!(
            StoreUrl::parse("redis://127.0.0.1:6379/").unwrap(),
            StoreUrl::Redis(_)
        ));
        assert_eq!(
            StoreUrl::parse("mariadb://root@h/db").unwrap(),
            StoreUrl::Mysql("mysql://root@h/db".into())
        );
        let err = StoreUrl::parse("foo://").unwrap_err().to_string();
        assert!(err.contains("unsupported store scheme 'foo://'"), "{err}");
        assert!(StoreUrl::parse("sqlite://").is_err());
        assert!(StoreUrl::parse("nonsense").is_err());
        assert_eq!(
            StoreUrl::default_sqlite().to_string(),
            "sqlite://.wrangle/wrangle.db"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        let cases = [
            (
                "postgres://user:s3cret@db:5432/app?schema=x",
                "postgres://user:***@db:5432/app?schema=x",
            ),
            (
                "redis://:s3cret@127.0.0.1:6379/0",
                "redis://:***@127.0.0.1:6379/0",
            ),
            (
                "rediss://default:s3cret@h/?ca_file=/c.pem",
                "rediss://default:***@h/?ca_file=/c.pem",
            ),
            ("mysql://root@h:3306/db", "mysql://root@h:3306/db"),
            (
                "postgres://h/db?user=u&password=s3cret",
                "postgres://h/db?user=u&password=***",
            ),
            (
                "redis+unix:///run/r.sock?db=1&pass=s3cret",
                "redis+unix:///run/r.sock?db=1&pass=***",
            ),
            // An `@` in a query value is not a user part.
            ("redis://h:6379/?prefix=a@b", "redis://h:6379/?prefix=a@b"),
            // Unescaped `/` and `@` in the password: everything up to the last `@` goes.
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let url = StoreUrl::parse("postgres://user:s3cret@db/app").unwrap();
        assert_eq!(url.to_string(), "postgres://user:***@db/app");
        assert!(!format!("{url:?}").contains("s3cret"), "{url:?}");
        assert!(matches!(&url, StoreUrl::Postgres(raw) if raw.contains("s3cret")));
        for url in ["mysql://root:s3cret@h/db", "redis://:s3cret@h/"] {
            let parsed = StoreUrl::parse(url).unwrap();
            assert!(!parsed.to_string().contains("s3cret"), "{parsed}");
            assert!(!format!("{parsed:?}").contains("s3cret"), "{parsed:?}");
        }
        let err = StoreUrl::parse("postgres:/user:s3cret@db/app").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = StoreUrl::parse("postgress://user:s3cret@db/app").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(err.to_string().contains("user:***@db"), "{err}");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("800KB").unwrap(), 800 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "M", "-1M", "0", "12X", "1..2M", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
