//! Opening a store: whether a missing store may be created ([`Open`]), how long connecting
//! may take ([`DEFAULT_CONNECT_TIMEOUT`], the `connect_timeout=` URL option), and the one
//! wording of why connecting failed ([`ConnectFailure`]), which every server store
//! (PostgreSQL, MySQL/MariaDB, Redis) builds from its driver's error so that a user reads
//! the same line whatever the store: `cannot connect to postgres at db:5432: connection
//! refused`.
//!
//! This module only names and words things; the stores do the connecting. With the `tls`
//! feature it also reads rustls's verdict on a server certificate out of a driver error
//! ([`tls_cause`]), so the three stores word certificate problems alike.

use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use crate::store::StoreError;

/// How long connecting to a store server may take (TCP, TLS handshake, authentication)
/// before it fails with [`ConnectCause::TimedOut`], when the URL has no `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What connecting does when there is no wrangle store at the URL yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Open {
    /// Create the store if it is missing (an SQLite file and its directory, a PostgreSQL
    /// schema, MySQL tables, a Redis layout key) and migrate an older one to the current
    /// version. What workers and submitters use.
    #[default]
    Create,
    /// Open only a store that exists and is at the current version; create, migrate or
    /// write nothing. A missing store is [`StoreError::NoStore`]; one of an older version
    /// is refused (see [`outdated_store`]), because migrating it would be a write. For
    /// commands that only look (status, listings).
    Existing,
}

/// Awaits `connecting` for at most `timeout`: its value, or the cause of its failure
/// (`cause` reads the driver's error), or [`ConnectCause::TimedOut`].
pub async fn within<T, E>(
    timeout: Duration,
    connecting: impl Future<Output = Result<T, E>>,
    cause: impl FnOnce(&E) -> ConnectCause,
) -> Result<T, ConnectCause> {
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(err)) => Err(cause(&err)),
        Err(_) => Err(ConnectCause::TimedOut(timeout)),
    }
}

/// Parses the `connect_timeout` URL option: a duration such as `5s` or `500ms`, not zero.
pub fn parse_connect_timeout(value: &str) -> Result<Duration, StoreError> {
    match crate::parse::parse_duration(value) {
        Ok(timeout) if !timeout.is_zero() => Ok(timeout),
        Ok(_) => Err(StoreError::InvalidRequest(
            "connect_timeout must be more than 0, e.g. 5s".into(),
        )),
        Err(e) => Err(StoreError::InvalidRequest(format!("connect_timeout: {e}"))),
    }
}

/// The hint of [`StoreError::NoStore`]: generic, since a library caller may create stores
/// in its own way (a front end can match the variant and say more).
pub const NO_STORE_HINT: &str =
    "a store is created by the first program that opens it to write, such as a worker or a submit";

/// The refusal of [`Open::Existing`] to open the store at `at` (where [`StoreError::NoStore`]
/// would name it) whose schema or layout is at version `found`, older than this code's
/// `current`: bringing it up to date is a write.
pub fn outdated_store(at: &str, found: i64, current: i64) -> StoreError {
    StoreError::Backend(format!(
        "the wrangle store at {at} is at version {found}, older than this wrangle's \
         {current}: run a worker or submit a task once to upgrade it"
    ))
}

/// Why connecting to a store server failed: which store, where, and the cause. Displayed
/// as one line, `cannot connect to KIND at HOST:PORT: CAUSE`, never holding a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectFailure {
    /// The kind of store: `postgres`, `mysql` or `redis`.
    pub store: &'static str,
    /// `HOST:PORT` (IPv6 hosts in brackets), or the Unix socket path.
    pub address: String,
    /// What went wrong.
    pub cause: ConnectCause,
}

impl ConnectFailure {
    /// A failure to connect to the `store` server at `host`:`port`.
    pub fn tcp(store: &'static str, host: &str, port: u16, cause: ConnectCause) -> Self {
        let address = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        ConnectFailure {
            store,
            address,
            cause,
        }
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot connect to {} at {}: {}",
            self.store, self.address, self.cause
        )
    }
}

/// The cause of a [`ConnectFailure`], in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectCause {
    /// Nothing listens at the address (the server is down, or the port is wrong).
    Refused,
    /// No connection within the connect timeout (a host that does not answer, a firewall
    /// dropping packets, a server too busy to finish the handshake).
    TimedOut(Duration),
    /// The TLS handshake failed for a reason other than the server's certificate: the
    /// server does not speak TLS, or the protocols do not match.
    Tls(String),
    /// The server's certificate was rejected.
    Certificate {
        /// What is wrong with it.
        problem: CertificateProblem,
        /// The URL option that names a CA file for this store (`sslrootcert`, `ssl-ca`,
        /// `ca_file`), for the hint when the issuer is unknown.
        ca_option: &'static str,
    },
    /// The CA file named in the URL could not be read.
    CaFile {
        /// The file.
        path: String,
        /// Why not, e.g. `No such file or directory (os error 2)`.
        error: String,
    },
    /// The server refused the user name or password.
    Authentication {
        /// The user name (never the password).
        user: String,
    },
    /// The database the URL names does not exist on the server.
    NoDatabase(String),
    /// Anything else, in the driver's or server's words (one line, no password).
    Other(String),
}

impl ConnectCause {
    /// The cause an I/O error stands for, when it is one of the plain network ones.
    pub fn from_io(err: &io::Error, timeout: Duration) -> Option<ConnectCause> {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => Some(ConnectCause::Refused),
            io::ErrorKind::TimedOut => Some(ConnectCause::TimedOut(timeout)),
            _ => None,
        }
    }

    /// Driver text as an [`Other`](ConnectCause::Other) cause, kept to one line.
    pub fn other(text: impl fmt::Display) -> ConnectCause {
        let text = text.to_string();
        ConnectCause::Other(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// Whether trying again later may succeed: the server may come up, the network may
    /// recover; a wrong password, certificate or database name stays wrong.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConnectCause::Refused | ConnectCause::TimedOut(_) | ConnectCause::Other(_)
        )
    }
}

impl fmt::Display for ConnectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectCause::Refused => f.write_str("connection refused"),
            ConnectCause::TimedOut(after) => {
                write!(f, "timed out after {}", humantime::format_duration(*after))
            }
            ConnectCause::Tls(reason) => write!(f, "TLS handshake failed: {reason}"),
            ConnectCause::Certificate { problem, ca_option } => {
                write!(f, "TLS handshake failed: {problem}")?;
                if matches!(problem, CertificateProblem::UnknownIssuer) {
                    write!(
                        f,
                        " (give the CA certificate that signed it with {ca_option}=FILE)"
                    )?;
                }
                Ok(())
            }
            ConnectCause::CaFile { path, error } => {
                write!(f, "cannot read the CA file {path}: {error}")
            }
            ConnectCause::Authentication { user } => {
                write!(f, "authentication failed for user '{user}'")
            }
            ConnectCause::NoDatabase(name) => write!(f, "database \"{name}\" does not exist"),
            ConnectCause::Other(text) => f.write_str(text),
        }
    }
}

/// What is wrong with a server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProblem {
    /// Not signed by a certificate authority the client trusts (a self-signed or private
    /// CA not given to the client).
    UnknownIssuer,
    /// Valid, but not for the host name or address connected to.
    WrongHost,
    /// Past its end date.
    Expired,
    /// Before its start date.
    NotYetValid,
    /// Revoked by its issuer.
    Revoked,
    /// Anything else, in the TLS library's words.
    Other(String),
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server's certificate ")?;
        match self {
            CertificateProblem::UnknownIssuer => {
                f.write_str("is not signed by a trusted certificate authority")
            }
            CertificateProblem::WrongHost => f.write_str("is not valid for this host name"),
            CertificateProblem::Expired => f.write_str("has expired"),
            CertificateProblem::NotYetValid => f.write_str("is not valid yet"),
            CertificateProblem::Revoked => f.write_str("is revoked"),
            CertificateProblem::Other(reason) => write!(f, "was rejected: {reason}"),
        }
    }
}

/// The TLS cause behind a driver error, if rustls is somewhere in its chain of sources:
/// a rejected certificate becomes [`ConnectCause::Certificate`] (with `ca_option` for the
/// hint), any other TLS error [`ConnectCause::Tls`]. Errors wrapped in `io::Error` are
/// looked into (rustls's handshake errors travel that way, and `io::Error::source` skips
/// the wrapped error itself), and so are errors behind an `Arc` (redis-rs keeps its I/O
/// errors so, and an `Arc`'s `source` skips the error it holds too).
#[cfg(feature = "tls")]
pub fn tls_cause(
    err: &(dyn std::error::Error + 'static),
    ca_option: &'static str,
) -> Option<ConnectCause> {
    use rustls::{CertificateError, Error as TlsError};

    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let mut next = Some(err);
    let tls = loop {
        let current = next?;
        if let Some(tls) = current.downcast_ref::<TlsError>() {
            break tls;
        }
        if let Some(shared) = current.downcast_ref::<Shared>() {
            next = Some(shared.as_ref());
            continue;
        }
        let wrapped = current
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<TlsError>());
        if let Some(tls) = wrapped {
            break tls;
        }
        next = current.source();
    };
    let problem = match tls {
        TlsError::InvalidCertificate(error) => match error {
            CertificateError::UnknownIssuer => CertificateProblem::UnknownIssuer,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                CertificateProblem::WrongHost
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CertificateProblem::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CertificateProblem::NotYetValid
            }
            CertificateError::Revoked => CertificateProblem::Revoked,
            other => CertificateProblem::Other(format!("{other:?}")),
        },
        other => return Some(ConnectCause::Tls(other.to_string())),
    };
    Some(ConnectCause::Certificate { problem, ca_option })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_one_line_naming_store_address_and_cause() {
        let refused = ConnectFailure::tcp("postgres", "127.0.0.1", 1, ConnectCause::Refused);
        assert_eq!(
            refused.to_string(),
            "cannot connect to postgres at 127.0.0.1:1: connection refused"
        );
        let timed_out = ConnectFailure::tcp(
            "redis",
            "::1",
            6380,
            ConnectCause::TimedOut(Duration::from_millis(1500)),
        );
        assert_eq!(
            timed_out.to_string(),
            "cannot connect to redis at [::1]:6380: timed out after 1s 500ms"
        );
        let auth = ConnectCause::Authentication { user: "x".into() };
        assert_eq!(auth.to_string(), "authentication failed for user 'x'");
        assert_eq!(
            ConnectCause::NoDatabase("foo".into()).to_string(),
            "database \"foo\" does not exist"
        );
        let untrusted = ConnectCause::Certificate {
            problem: CertificateProblem::UnknownIssuer,
            ca_option: "sslrootcert",
        };
        assert_eq!(
            untrusted.to_string(),
            "TLS handshake failed: the server's certificate is not signed by a trusted \
             certificate authority (give the CA certificate that signed it with \
             sslrootcert=FILE)"
        );
        assert_eq!(
            ConnectCause::other("line one\n  line two").to_string(),
            "line one line two"
        );
    }

    #[test]
    fn only_network_causes_are_transient() {
        assert!(ConnectCause::Refused.is_transient());
        assert!(ConnectCause::TimedOut(DEFAULT_CONNECT_TIMEOUT).is_transient());
        assert!(!ConnectCause::Authentication { user: "u".into() }.is_transient());
        assert!(!ConnectCause::NoDatabase("d".into()).is_transient());
        assert!(!ConnectCause::Tls("no".into()).is_transient());
    }

    #[tokio::test]
    async fn connecting_is_cut_short_at_the_timeout() {
        let timeout = Duration::from_millis(20);
        let never = std::future::pending::<Result<(), io::Error>>();
        assert_eq!(
            within(timeout, never, |_| ConnectCause::Refused).await,
            Err(ConnectCause::TimedOut(timeout))
        );
        let refused = async { Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionRefused)) };
        let cause = |e: &io::Error| ConnectCause::from_io(e, timeout).unwrap();
        assert_eq!(
            within(timeout, refused, cause).await,
            Err(ConnectCause::Refused)
        );
        assert_eq!(
            within(timeout, async { Ok::<_, io::Error>(7) }, cause).await,
            Ok(7)
        );
    }

    #[test]
    fn connect_timeouts_parse_as_durations() {
        assert_eq!(
            parse_connect_timeout("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_connect_timeout("5s").unwrap(),
            DEFAULT_CONNECT_TIMEOUT
        );
        for bad in ["0", "0s", "soon", ""] {
            assert!(
                matches!(
                    parse_connect_timeout(bad),
                    Err(StoreError::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn rustls_verdicts_become_certificate_problems() {
        use rustls::{CertificateError, Error as TlsError};
        // As rustls hands them to a driver: inside an io::Error, inside the driver's own.
        #[derive(Debug)]
        struct Driver(io::Error);
        impl fmt::Display for Driver {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "driver: {}", self.0)
            }
        }
        impl std::error::Error for Driver {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped = |tls: TlsError| Driver(io::Error::new(io::ErrorKind::InvalidData, tls));
        let cause = tls_cause(
            &wrapped(TlsError::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            "ca_file",
        );
        assert_eq!(
            cause,
            Some(ConnectCause::Certificate {
                problem: CertificateProblem::UnknownIssuer,
                ca_option: "ca_file"
            })
        );
        let cause = tls_cause(
            &wrapped(TlsError::InvalidCertificate(
                CertificateError::NotValidForName,
            )),
            "ssl-ca",
        );
        assert!(
            matches!(
                cause,
                Some(ConnectCause::Certificate {
                    problem: CertificateProblem::WrongHost,
                    ..
                })
            ),
            "{cause:?}"
        );
        let cause = tls_cause(&wrapped(TlsError::HandshakeNotComplete), "ssl-ca");
        assert!(matches!(cause, Some(ConnectCause::Tls(_))), "{cause:?}");
        // redis-rs's way: the io::Error behind an Arc, as the source.
        #[derive(Debug)]
        struct Shared(std::sync::Arc<dyn std::error::Error + Send + Sync>);
        impl fmt::Display for Shared {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "redis: {}", self.0)
            }
        }
        impl std::error::Error for Shared {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let tls = TlsError::InvalidCertificate(CertificateError::Expired);
        let shared = Shared(std::sync::Arc::new(io::Error::new(
            io::ErrorKind::InvalidData,
            tls,
        )));
        assert!(
            matches!(
                tls_cause(&shared, "ca_file"),
                Some(ConnectCause::Certificate {
                    problem: CertificateProblem::Expired,
                    ..
                })
            ),
            "{shared}"
        );
        let plain = Driver(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(tls_cause(&plain, "ssl-ca"), None);
    }
}
