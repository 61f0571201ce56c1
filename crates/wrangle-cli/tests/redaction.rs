//! A store password never appears in anything wrangle prints: every command that shows
//! the store, its workers, tasks or jobs (plain and `--json`), the console from a pipe,
//! `top` on a terminal, a worker's log at debug level, and the errors of a failed login,
//! an unreachable server and a malformed URL. Checked on PostgreSQL, Redis and MariaDB,
//! each with a role whose password is known, by searching every byte of output for it.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::tmux::{self, Capture, Tmux};
use common::{Sandbox, text};
use wrangle_testkit::{MariaDbServer, PostgresServer, RedisServer, closed_port, or_skip};

const SECRET: &str = "Sup3r-s3cret-Pa55";

/// Everything printed so far, labelled by the command that printed it.
#[derive(Default)]
struct Printed(Vec<(String, String)>);

impl Printed {
    fn add(&mut self, label: &str, out: &Output) {
        let both = format!("{}{}", text(&out.stdout), text(&out.stderr));
        self.0.push((label.to_string(), both));
    }

    fn assert_no_secret(&self, store: &str) {
        for (label, printed) in &self.0 {
            assert!(
                !printed.contains(SECRET),
                "{store}: `{label}` printed the password:\n{printed}"
            );
        }
    }
}

/// Runs every output path against `url` (which holds [`SECRET`]); `bad_login` is the same
/// server with a wrong user or password, `down` a URL with the password and no server.
fn nothing_prints_the_password(url: &str, bad_login: &str, store: &str) {
    assert!(url.contains(SECRET));
    let mut sandbox = Sandbox::on(url);
    let mut printed = Printed::default();
    let mut run = |sandbox: &Sandbox, args: &[&str]| {
        let out = sandbox.run(args);
        printed.add(&args.join(" "), &out);
        assert!(
            out.status.success(),
            "{store}: wrangle {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };

    run(&sandbox, &["submit", "echo", r#"{"n":1}"#]);
    let worker = {
        let log = std::fs::File::create(sandbox.path("w1.log")).unwrap();
        sandbox
            .command(&["worker", "--name", "w1", "--exec", "cat"])
            .env("WRANGLE_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    sandbox.workers.push(worker);
    sandbox.wait_for_worker("w1", Duration::from_secs(30));
    let submitted = run(
        &sandbox,
        &["--json", "submit", "echo", r#"{"n":2}"#, "--wait"],
    );
    let id = serde_json::from_str::<serde_json::Value>(&submitted).unwrap()["id"].to_string();
    run(
        &sandbox,
        &[
            "job", "create", "blocks", "--range", "0..100", "--block", "10", "--kind", "echo",
        ],
    );
    for args in [
        &["status"][..],
        &["--json", "status"],
        &["workers", "list"],
        &["--json", "workers", "list"],
        &["tasks", "list"],
        &["--json", "tasks", "list"],
        &["tasks", "show", &id],
        &["--json", "tasks", "show", &id],
        &["job", "list"],
        &["--json", "job", "list"],
        &["job", "status", "blocks"],
        &["--json", "job", "status", "blocks"],
    ] {
        run(&sandbox, args);
    }
    let console = "status\nworkers\njobs\njob blocks\nstatus w1\npool w1\ntask 1\ntail 1s\n";
    for json in [false, true] {
        let args: &[&str] = if json {
            &["--json", "console"]
        } else {
            &["console"]
        };
        let out = sandbox.run_with_stdin(args, console);
        printed.add(&format!("{args:?} from a pipe"), &out);
    }
    if tmux::installed_or_skip() {
        let top = Tmux::start(
            sandbox.dir.path(),
            (120, 40),
            Capture::Pane,
            Duration::from_secs(20),
            &[&sandbox.shell_command(&["top"])],
        );
        let screen = top.wait_for("top showing worker w1", |s| s.contains("w1"));
        printed.0.push(("top".into(), screen));
        top.press(&["q"]);
    }
    sandbox.stop_workers();
    printed
        .0
        .push(("worker log (debug)".into(), sandbox.worker_logs()));

    // Errors: a failed login, no server, a malformed option, each naming the store.
    let down = {
        let port = closed_port().unwrap().to_string();
        let at = url.split('@').nth(1).unwrap().split('/').next().unwrap();
        url.replacen(at, &format!("127.0.0.1:{port}"), 1)
    };
    let malformed = format!(
        "{url}{}connect_timeout=never",
        if url.contains('?') { "&" } else { "?" }
    );
    for (what, bad) in [
        ("login", bad_login),
        ("down", &down),
        ("malformed", &malformed),
    ] {
        for args in [&["status"][..], &["submit", "echo", "{}"]] {
            let out = Sandbox::on(bad).run(args);
            printed.add(&format!("{what}: {args:?}"), &out);
            assert!(!out.status.success(), "{store} {what}: {args:?} succeeded");
            let err = text(&out.stderr);
            assert!(
                err.contains("127.0.0.1"),
                "{store} {what}: names the server: {err}"
            );
            if what == "malformed" {
                // The URL is shown, with the password masked.
                assert!(err.contains(":***@127.0.0.1"), "{store}: {err}");
            }
        }
    }
    printed.assert_no_secret(store);
}

/// Runs `program args…`, which must succeed.
fn admin(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        text(&out.stderr)
    );
}

#[test]
fn postgres_password_is_never_printed() {
    let Some(server) = or_skip(PostgresServer::start()) else {
        return;
    };
    // The test role logs in without a password check, so the URL may carry one; any other
    // role must give its password, which `nobody` cannot.
    let url = server
        .url()
        .replacen("wrangle@", &format!("wrangle:{SECRET}@"), 1);
    let bad_login = server
        .url()
        .replacen("wrangle@", &format!("nobody:{SECRET}@"), 1);
    nothing_prints_the_password(&url, &bad_login, "PostgreSQL");
}

#[test]
fn redis_password_is_never_printed() {
    let Some(server) = or_skip(RedisServer::start()) else {
        return;
    };
    let port = server.port().to_string();
    admin(
        "redis-cli",
        &[
            "-p",
            &port,
            "ACL",
            "SETUSER",
            "app",
            "on",
            &format!(">{SECRET}"),
            "~*",
            "&*",
            "+@all",
        ],
    );
    let url = server
        .url()
        .replacen("redis://", &format!("redis://app:{SECRET}@"), 1);
    let bad_login = server
        .url()
        .replacen("redis://", &format!("redis://app:x{SECRET}@"), 1);
    nothing_prints_the_password(&url, &bad_login, "Redis");
}

#[test]
fn mariadb_password_is_never_printed() {
    let Some(server) = or_skip(MariaDbServer::start()) else {
        return;
    };
    let port = server.port().to_string();
    let mut sql = String::new();
    for host in ["%", "localhost", "127.0.0.1"] {
        sql.push_str(&format!(
            "CREATE USER 'app'@'{host}' IDENTIFIED BY '{SECRET}'; \
             GRANT ALL ON *.* TO 'app'@'{host}'; "
        ));
    }
    admin(
        "mariadb",
        &["-h", "127.0.0.1", "-P", &port, "-u", "root", "-e", &sql],
    );
    let url = server.url().replacen("root@", &format!("app:{SECRET}@"), 1);
    let bad_login = server
        .url()
        .replacen("root@", &format!("app:x{SECRET}@"), 1);
    nothing_prints_the_password(&url, &bad_login, "MariaDB");
}
