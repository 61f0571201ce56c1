//! A real terminal for the end-to-end tests: a tmux server of its own running one command
//! in a fixed-size window. `send-keys` types, `capture-pane` reads the screen. The server's
//! socket is in the test's temp dir, so nothing is left behind in tmux's shared one, and the
//! server is killed on drop, pass or fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{logs_in, poll, text};

/// The session (and window) every command targets.
const TARGET: &str = "test";

/// What [`Tmux::screen`] reads.
#[derive(Clone, Copy, Debug)]
pub enum Capture {
    /// The visible rows as tmux prints them, one line each.
    Pane,
    /// The visible rows and all the scrollback, wrapped lines joined, trailing blanks
    /// dropped, so that the cursor's line is the last.
    History,
}

/// Whether tmux is installed. When it is not, fails if tmux is required (`CI` or
/// `WRANGLE_TEST_REQUIRE_SERVERS`), else says that the test is skipped.
pub fn installed_or_skip() -> bool {
    if Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        !wrangle_testkit::require_servers(),
        "tmux is required (CI / WRANGLE_TEST_REQUIRE_SERVERS) but not installed"
    );
    eprintln!("skipping: tmux is not installed");
    false
}

/// A tmux server with one window; killed on drop.
pub struct Tmux {
    socket: PathBuf,
    /// Where the command runs; its `*.log` files go into a failed wait's message.
    dir: PathBuf,
    capture: Capture,
    /// How long [`Tmux::wait_for`] waits.
    deadline: Duration,
}

impl Tmux {
    /// Runs `command` (a program and its arguments, or one shell command line) in a
    /// `width`x`height` window, in `dir`, which also holds the server's socket.
    pub fn start(
        dir: &Path,
        (width, height): (u16, u16),
        capture: Capture,
        deadline: Duration,
        command: &[&str],
    ) -> Tmux {
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
            dir: dir.to_path_buf(),
            capture,
            deadline,
        };
        let (width, height) = (width.to_string(), height.to_string());
        // No user config: the test must see the same terminal on every machine.
        let mut args = vec![
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            TARGET,
            "-x",
            &width,
            "-y",
            &height,
            "-c",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(command);
        tmux.tmux(&args);
        tmux
    }

    /// Runs `tmux ARGS…` on this server; its output. Fails when tmux does.
    #[track_caller]
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Types `text` as it is (no key names).
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", TARGET, "-l", text]);
    }

    /// Types `line` and presses Enter.
    pub fn type_line(&self, line: &str) {
        self.type_text(line);
        self.press(&["Enter"]);
    }

    /// Presses keys by their tmux names (`Tab`, `Down`, `Enter`, `C-c`, `p`, `+`).
    pub fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", TARGET];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// The screen, as [`Capture`] says.
    pub fn screen(&self) -> String {
        match self.capture {
            Capture::Pane => self.tmux(&["capture-pane", "-p", "-t", TARGET]),
            Capture::History => {
                let all = self.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", TARGET]);
                let screen = all.lines().map(str::trim_end).collect::<Vec<_>>();
                // The rows below the cursor are blank.
                screen.join("\n").trim_end().to_string()
            }
        }
    }

    /// Polls the screen every 100 ms until `check` holds on it, and returns that screen;
    /// fails with the last screen (and the logs in the window's dir) after the deadline.
    #[track_caller]
    pub fn wait_for(&self, what: &str, mut check: impl FnMut(&str) -> bool) -> String {
        let mut last = String::new();
        let found = poll(self.deadline, Duration::from_millis(100), || {
            let screen = self.screen();
            if check(&screen) {
                return Some(screen);
            }
            last = screen;
            None
        });
        match found {
            Some(screen) => screen,
            None => panic!(
                "{what}: not on screen within {:?}:\n{last}\n{}",
                self.deadline,
                logs_in(&self.dir)
            ),
        }
    }

    pub fn resize(&self, width: u16, height: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            TARGET,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
