//! The servers started with TLS, through their own command-line clients: each verifies
//! against the server's own certificate authority (`ca_file`) and, without it, refuses
//! the server (nothing of the test CA reaches the system's trust store). Also the two
//! stand-ins for servers that are not there: a closed port and a silent one.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use wrangle_testkit::{
    MariaDbServer, PostgresServer, RedisServer, SilentPort, accepts_connections, closed_port,
    or_skip,
};

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Stdout of a command that must succeed.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Stderr of a command that must fail.
fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(!out.status.success(), "{cmd:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ca(path: Option<std::path::PathBuf>) -> std::path::PathBuf {
    let ca = path.expect("a TLS server has a CA file");
    assert!(ca.is_file(), "{}", ca.display());
    ca
}

#[test]
fn postgres_verifies_with_its_ca_only() {
    let Some(pg) = or_skip(PostgresServer::start_tls()) else {
        return;
    };
    let ca = ca(pg.ca_file());
    let psql = |query: &str| {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-A", "-t"])
            .arg(format!("{}?{query}", pg.url()))
            .args([
                "-c",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ])
            // No ~/.postgresql/root.crt of the machine's user may stand in for the CA.
            .env("PGSSLROOTCERT", "/nonexistent");
        cmd
    };
    let verified = format!("sslmode=verify-full&sslrootcert={}", ca.display());
    assert_eq!(ok(&mut psql(&verified)), "t");
    let err = fails(&mut psql("sslmode=verify-full"));
    assert!(err.contains("root certificate"), "{err}");
    // Without TLS the superuser still gets in (the server offers TLS, it does not demand it).
    assert_eq!(ok(&mut psql("sslmode=disable")), "f");
}

#[test]
fn redis_speaks_only_tls_and_verifies_with_its_ca_only() {
    let Some(redis) = or_skip(RedisServer::start_tls()) else {
        return;
    };
    let ca = ca(redis.ca_file());
    assert_eq!(redis.url(), format!("rediss://127.0.0.1:{}/", redis.port()));
    let cli = |extra: &[&str]| {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &redis.port().to_string()])
            .args(extra)
            .arg("PING");
        cmd
    };
    let cacert = ca.display().to_string();
    assert_eq!(ok(&mut cli(&["--tls", "--cacert", &cacert])), "PONG");
    let refused = run(&mut cli(&["--tls"]));
    let said = String::from_utf8_lossy(&refused.stdout) + String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() || !said.contains("PONG"),
        "verified without the CA: {said}"
    );
    let plain = run(&mut cli(&[]));
    assert!(
        !String::from_utf8_lossy(&plain.stdout).contains("PONG"),
        "answered without TLS"
    );
}

#[test]
fn mariadb_verifies_with_its_ca_only() {
    let Some(db) = or_skip(MariaDbServer::start_tls()) else {
        return;
    };
    let ca = ca(db.ca_file());
    let mariadb = |ca: Option<&Path>| {
        let mut cmd = Command::new("mariadb");
        cmd.args(["--no-defaults", "--protocol=tcp", "-h", "127.0.0.1"])
            .arg(format!("--port={}", db.port()))
            .args(["-u", "root", "--batch", "--skip-column-names"])
            .args(["--ssl", "--ssl-verify-server-cert"])
            .args(ca.map(|ca| format!("--ssl-ca={}", ca.display())))
            .args(["-e", "SHOW SESSION STATUS LIKE 'Ssl_cipher'"]);
        cmd
    };
    let cipher = ok(&mut mariadb(Some(&ca)));
    assert!(
        cipher.starts_with("Ssl_cipher") && cipher.split_whitespace().count() == 2,
        "{cipher}"
    );
    fails(&mut mariadb(None));
}

#[test]
fn closed_ports_refuse_and_silent_ports_never_answer() {
    let port = closed_port().unwrap();
    assert!(!accepts_connections(port));

    let silent = SilentPort::bind().unwrap();
    let mut conn = TcpStream::connect(("127.0.0.1", silent.port())).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8; 1];
    let err = conn.read(&mut byte).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
}
