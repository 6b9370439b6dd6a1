//! On a real terminal (a tmux pane): the spinner shows on stderr while the server is silent, and is
//! replaced by the answer and then one stats line.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::{Harness, KEY};

/// A private tmux server, killed when the test ends however it ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "-f", "/dev/null"])
            .env("TERM", "xterm-256color");
        cmd
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "moat"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen until `check` holds; the deadline only bounds a broken test.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "never saw {what}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// Starts `moat ARGS` in a fresh tmux pane against the harness's emulator, which holds its headers
/// back for `delay_ms`; after moat exits the pane shows `[exit CODE]`.
fn start(h: &Harness, delay_ms: u64, args: &str) -> Tmux {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux is required for this test (scripts/test.sh installs it)"
    );
    h.config(&format!(
        "[profiles.default]\nextra_body = {{ emulate = {{ first_byte_delay_ms = {delay_ms} }} }}\n"
    ));
    let script = h.path("run.sh");
    let env: Vec<String> = [
        ("HOME", h.path("home")),
        ("XDG_CONFIG_HOME", h.path("config")),
        ("XDG_STATE_HOME", h.path("state")),
        ("XDG_CACHE_HOME", h.path("cache")),
    ]
    .iter()
    .map(|(k, v)| format!("export {k}='{}'\n", v.display()))
    .collect();
    std::fs::write(
        &script,
        format!(
            // The shell survives Ctrl-C (a trap, reset to default for moat by exec) to report the code.
            "{}export MOAT_API_KEY={KEY} MOAT_KEYRING=off MOAT_SESSION=tty LANG=C.UTF-8\ntrap true INT\n\
             '{}' --base-url '{}' --cacert '{}' {args}\necho \"[exit $?]\"\nsleep 120\n",
            env.concat(),
            env!("CARGO_BIN_EXE_moat"),
            h.emu.base_url(),
            h.ca_file.display()
        ),
    )
    .unwrap();
    let tmux = Tmux {
        socket: format!("moat-test-{}-{delay_ms}", std::process::id()),
    };
    let started = tmux
        .cmd()
        .args(["new-session", "-d", "-s", "moat", "-x", "120", "-y", "20", "sh"])
        .arg(&script)
        .status()
        .unwrap();
    assert!(started.success());
    tmux
}

#[test]
fn the_spinner_is_replaced_by_the_answer_and_stats() {
    let h = Harness::tls();
    // The emulator holds its headers back, so the spinner is on screen for a while.
    let tmux = start(&h, 1500, "-m tiny 'hi there'");

    let spinning = tmux.wait_for("the spinner", |s| s.contains("tiny…") && s.contains(FRAMES));
    assert!(!spinning.contains("You said"), "{spinning}");

    let done = tmux.wait_for("the answer and exit", |s| s.contains("[exit 0]"));
    assert!(done.contains("You said: hi there"), "{done}");
    assert!(
        !done.contains("tiny…") && !done.contains(FRAMES),
        "spinner left behind:\n{done}"
    );
    let lines: Vec<&str> = done.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines[0], "You said: hi there", "{done}");
    assert!(
        lines[1].starts_with("tiny · Emu · $") && lines[1].contains("first token"),
        "{done}"
    );
    assert_eq!(lines[2], "[exit 0]");
}

#[test]
fn ctrl_c_stops_cleanly_and_saves_nothing() {
    let h = Harness::tls();
    let tmux = start(&h, 60_000, "-m tiny 'never answered'");
    tmux.wait_for("the spinner", |s| s.contains("tiny…"));
    let sent = tmux
        .cmd()
        .args(["send-keys", "-t", "moat", "C-c"])
        .status()
        .unwrap();
    assert!(sent.success());
    let done = tmux.wait_for("the exit", |s| s.contains("[exit 130]"));
    let lines: Vec<&str> = done.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines, ["moat: interrupted", "[exit 130]"], "{done}");
    assert!(
        crate::files_under(&h.path("state")).is_empty(),
        "no half turn is saved"
    );
}
