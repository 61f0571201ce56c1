//! The clients in other languages (`examples/clients/`): the Python and the Ruby pi client
//! submit a task to `wrangle serve` and wait for its result, which a `wrangle worker`
//! computes with `pi_worker.py` (ExecQueues' pi example, over the HTTP API).

mod common;

use std::path::Path;
use std::process::Command;

use common::{Sandbox, text};

const PI_50: &str = "3.14159265358979323846264338327950288419716939937510";

#[test]
fn python_and_ruby_clients_get_pi_from_a_worker() {
    let mut sandbox = Sandbox::sqlite();
    sandbox.create_store();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/clients");
    let worker = format!("python3 {}", examples.join("pi_worker.py").display());
    sandbox.spawn_worker("pi-1", &["--exec", &worker, "-n", "2"]);
    let token = sandbox.path("token");
    std::fs::write(&token, "pi-token").unwrap();
    let (mut server, port) = sandbox.serve(&["--token-file", token.to_str().unwrap()]);
    let url = format!("http://127.0.0.1:{port}");
    for (program, client) in [("python3", "pi_client.py"), ("ruby", "pi_client.rb")] {
        let out = Command::new(program)
            .arg(examples.join(client))
            .args(["--url", &url, "--token", "pi-token", "50"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{client}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), PI_50, "{client}");
        // A wrong token is one clear line from the client.
        let out = Command::new(program)
            .arg(examples.join(client))
            .args(["--url", &url, "--token", "wrong", "5"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{client} with a wrong token");
        assert!(
            text(&out.stderr).contains("401"),
            "{client}: {}",
            text(&out.stderr)
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    sandbox.stop_workers();
}
