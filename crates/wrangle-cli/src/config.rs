//! `wrangle.toml`: the store URL and, per task kind, the command that runs it with its
//! timeout and retries.
//!
//! ```toml
//! store = "sqlite://.wrangle/wrangle.db"
//! [kinds.resize]
//! exec = ["convert", "{}", "-resize", "50%", "out/{id}.png"]
//! timeout = "10m"
//! retries = 5
//! [kinds.score]
//! runner = ["python3", "score.py"]   # long-lived, JSON lines (docs/runner-protocol.md)
//! env = { RAILS_ENV = "production" } # for its commands or runner processes
//! cwd = "app"                          # where they run (relative: to the worker's directory)
//! [pool]                               # `wrangle worker` runner groups (like --pool)
//! "mail" = 2
//! "reports,exports" = 1
//! [retention]                          # finished tasks kept this long, then pruned
//! completed = "1d"                     # the defaults; "forever" keeps them
//! dead = "30d"
//! cancelled = "7d"
//! interval = "1m"                      # how often (one worker at a time)
//! ```
//!
//! Precedence: flags > environment (`WRANGLE_STORE`) > file > defaults. Unknown keys are
//! errors (a typo should not silently do nothing), and errors name the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use wrangle::parse::parse_duration;

use crate::fail::{CliError, CliResult};

/// The default config file, used when present.
pub(crate) const DEFAULT_CONFIG: &str = "wrangle.toml";

/// The parsed file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Store URL.
    pub(crate) store: Option<String>,
    /// Task kinds by name.
    #[serde(default)]
    pub(crate) kinds: BTreeMap<String, KindConfig>,
    /// Worker pool: runners per queue list (`"mail" = 2`, `"reports,exports" = 1`, `"*" = 1`).
    #[serde(default)]
    pub(crate) pool: BTreeMap<String, u32>,
    /// How long finished tasks are kept before workers prune them.
    #[serde(default)]
    pub(crate) retention: RetentionConfig,
}

/// The `[retention]` table: durations (`"1d"`, `"forever"`), each a default for the
/// worker's `--keep-*` flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionConfig {
    pub(crate) completed: Option<String>,
    pub(crate) dead: Option<String>,
    pub(crate) cancelled: Option<String>,
    /// At most this many completed tasks (the newest kept).
    pub(crate) completed_max: Option<u64>,
    pub(crate) interval: Option<String>,
}

/// Flags that override `[retention]`, in its keys' order.
pub(crate) struct RetentionFlags<'a> {
    pub(crate) completed: Option<&'a str>,
    pub(crate) dead: Option<&'a str>,
    pub(crate) cancelled: Option<&'a str>,
    pub(crate) completed_max: Option<u64>,
    pub(crate) interval: Option<&'a str>,
}

/// A kept time: a duration, or `forever` (never pruned).
fn keep_time(value: &str) -> Result<Option<Duration>, wrangle::InputError> {
    if value.trim() == "forever" {
        return Ok(None);
    }
    parse_duration(value).map(Some)
}

impl RetentionConfig {
    /// The policy: each flag given, else the file's key, else the default. A bad value is
    /// one line naming the flag or the key.
    pub(crate) fn retention(&self, flags: &RetentionFlags<'_>) -> CliResult<wrangle::Retention> {
        let defaults = wrangle::Retention::default();
        let pick = |flag: Option<&str>, flag_name: &str, key: &Option<String>, key_name: &str| {
            let (value, source) = match (flag, key) {
                (Some(value), _) => (value, format!("--{flag_name}")),
                (None, Some(value)) => (value.as_str(), format!("[retention] {key_name}")),
                (None, None) => return Ok(None),
            };
            keep_time(value)
                .map(Some)
                .map_err(|e| CliError::input(format!("{source}: {e}")))
        };
        let completed = pick(
            flags.completed,
            "keep-completed",
            &self.completed,
            "completed",
        )?;
        let dead = pick(flags.dead, "keep-dead", &self.dead, "dead")?;
        let cancelled = pick(
            flags.cancelled,
            "keep-cancelled",
            &self.cancelled,
            "cancelled",
        )?;
        let interval = match pick(flags.interval, "prune-every", &self.interval, "interval")? {
            Some(Some(interval)) if !interval.is_zero() => interval,
            None => defaults.interval,
            Some(_) => {
                let source = flags
                    .interval
                    .map_or("[retention] interval", |_| "--prune-every");
                return Err(CliError::input(format!(
                    "{source}: the prune interval must be a duration above 0"
                )));
            }
        };
        Ok(wrangle::Retention {
            completed: completed.unwrap_or(defaults.completed),
            dead: dead.unwrap_or(defaults.dead),
            cancelled: cancelled.unwrap_or(defaults.cancelled),
            completed_max: flags.completed_max.or(self.completed_max),
            interval,
        })
    }
}

/// One `[kinds.NAME]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KindConfig {
    /// Command (argv) run per task.
    pub(crate) exec: Option<Vec<String>>,
    /// Long-lived runner process (argv), one per runner slot, speaking JSON lines.
    pub(crate) runner: Option<Vec<String>>,
    /// Per-attempt time limit, e.g. "10m".
    pub(crate) timeout: Option<String>,
    /// Retries after the first attempt.
    pub(crate) retries: Option<u32>,
    /// Environment variables for its commands or runner processes (over the worker's
    /// `--env`).
    #[serde(default)]
    pub(crate) env: BTreeMap<String, String>,
    /// The directory its commands or runner processes run in.
    pub(crate) cwd: Option<PathBuf>,
}

impl KindConfig {
    pub(crate) fn timeout(&self, kind: &str) -> CliResult<Option<Duration>> {
        self.timeout
            .as_deref()
            .map(|t| {
                parse_duration(t).map_err(|e| {
                    CliError::input(format!("wrangle.toml [kinds.{kind}] timeout: {e}"))
                })
            })
            .transpose()
    }
}

impl Config {
    /// Loads `path` if given (it must exist), else `./wrangle.toml` if present, else an
    /// empty config.
    pub(crate) fn load(path: Option<&Path>) -> CliResult<Config> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default());
            }
            Err(err) => {
                return Err(CliError::input(format!(
                    "cannot read config {}: {err}",
                    path.display()
                )));
            }
        };
        Config::parse(&text, &path)
    }

    fn parse(text: &str, path: &Path) -> CliResult<Config> {
        let config: Config = toml::from_str(text).map_err(|err| {
            let line = err
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1)
                .map_or(String::new(), |line| format!(" line {line}:"));
            CliError::input(format!(
                "invalid config {}:{line} {}",
                path.display(),
                err.message().trim()
            ))
        })?;
        for (name, kind) in &config.kinds {
            kind.timeout(name)?;
            let invalid = |why: &str| {
                CliError::input(format!(
                    "invalid config {}: [kinds.{name}] {why}",
                    path.display()
                ))
            };
            for (key, argv) in [("exec", &kind.exec), ("runner", &kind.runner)] {
                if argv.as_ref().is_some_and(|argv| argv.is_empty()) {
                    return Err(invalid(&format!("{key} must name a program")));
                }
            }
            if kind.exec.is_some() && kind.runner.is_some() {
                return Err(invalid("has both exec and runner; give one"));
            }
            if let Some(argv) = &kind.exec {
                wrangle::placeholder::check_template(argv)
                    .map_err(|e| invalid(&format!("exec: {e}")))?;
            }
            for (var, value) in &kind.env {
                wrangle::parse::check_env_name(var)
                    .and_then(|()| wrangle::parse::check_env_value(var, value))
                    .map_err(|e| invalid(&format!("env: {e}")))?;
            }
        }
        config.pool_groups().map_err(|e| {
            CliError::input(format!("invalid config {}: [pool] {e}", path.display()))
        })?;
        let no_flags = RetentionFlags {
            completed: None,
            dead: None,
            cancelled: None,
            completed_max: None,
            interval: None,
        };
        if let Err(CliError::Input(why)) = config.retention.retention(&no_flags) {
            return Err(CliError::input(format!(
                "invalid config {}: {why}",
                path.display()
            )));
        }
        Ok(config)
    }

    /// The `[pool]` table as pool groups (empty when there is none).
    pub(crate) fn pool_groups(&self) -> Result<Vec<wrangle::pool::PoolGroup>, wrangle::InputError> {
        self.pool
            .iter()
            .map(|(queues, runners)| wrangle::pool::PoolGroup::new(queues, *runners))
            .collect()
    }

    /// The store URL by precedence: flag/environment (clap merges those), then file, then
    /// the embedded default.
    pub(crate) fn store_url(&self, flag_or_env: Option<&str>) -> String {
        flag_or_env
            .map(str::to_string)
            .or_else(|| self.store.clone())
            .unwrap_or_else(|| wrangle::StoreUrl::default_sqlite().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds() {
        let config = Config::parse(
            "store = \"memory://\"\n[kinds.noop]\nexec = [\"echo\", \"NOOP: OK!\"]\ntimeout = \"10m\"\nretries = 5\n",
            Path::new("wrangle.toml"),
        )
        .unwrap();
        assert_eq!(config.store.as_deref(), Some("memory://"));
        let noop = &config.kinds["noop"];
        assert_eq!(noop.retries, Some(5));
        assert_eq!(
            noop.timeout("noop").unwrap(),
            Some(Duration::from_secs(600))
        );
    }

    #[test]
    fn random_configs_never_panic_and_give_one_line_errors() {
        let examples = [
            "store = \"memory://\"\n[kinds.noop]\nexec = [\"echo\", \"{}\"]\ntimeout = \"10m\"\nretries = 5\n",
            "[kinds.square]\nrunner = [\"python3\", \"square.py\"]\n[pool]\ndefault = 2\nmail = 1\n",
            "store = 'postgres://u:p@h/db'\n[kinds.\"a.b\"]\nexec = []\n",
        ];
        wrangle_testkit::fuzz::check(
            "wrangle.toml",
            &examples,
            |text| {
                let config = Config::parse(text, Path::new("wrangle.toml"))?;
                Ok::<_, CliError>(config.pool_groups()?)
            },
            |err| err.to_string(),
        );
    }

    #[test]
    fn kinds_take_an_environment_and_a_directory() {
        let config = Config::parse(
            "[kinds.a]\nexec = [\"env\"]\nenv = { RAILS_ENV = \"production\", EMPTY = \"\" }\ncwd = \"app\"\n",
            Path::new("w.toml"),
        )
        .unwrap();
        let a = &config.kinds["a"];
        assert_eq!(a.env["RAILS_ENV"], "production");
        assert_eq!(a.cwd.as_deref(), Some(Path::new("app")));
        for bad in [
            "[kinds.a]\nexec = [\"env\"]\nenv = { \"BAD-NAME\" = \"x\" }\n",
            "[kinds.a]\nexec = [\"env\"]\nenv = { A = 1 }\n",
        ] {
            let err = Config::parse(bad, Path::new("w.toml"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("env") || err.contains("string"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn errors_name_the_line() {
        let err = Config::parse(
            "store = \"x\"\n[kinds.a]\nexec = [\"echo\"]\nretires = 3\n",
            Path::new("w.toml"),
        )
        .unwrap_err();
        let CliError::Input(message) = err else {
            panic!()
        };
        assert!(message.contains("line 4"), "{message}");
        assert!(message.contains("retires"), "{message}");
        let err = Config::parse("[kinds.a]\ntimeout = \"5x\"\n", Path::new("w.toml")).unwrap_err();
        let CliError::Input(message) = err else {
            panic!()
        };
        assert!(message.contains("invalid duration '5x'"), "{message}");
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let config = Config {
            store: Some("memory://".into()),
            ..Config::default()
        };
        assert_eq!(config.store_url(Some("sqlite://a.db")), "sqlite://a.db");
        assert_eq!(config.store_url(None), "memory://");
        assert_eq!(
            Config::default().store_url(None),
            "sqlite://.wrangle/wrangle.db"
        );
    }
}
