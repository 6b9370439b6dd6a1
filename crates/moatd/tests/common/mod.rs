//! Shared helpers for the binary's tests: a real `moatd` process with its stderr collected.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub const MOATD: &str = env!("CARGO_BIN_EXE_moatd");

/// A running moatd whose stderr is collected.
pub struct Daemon {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
    /// The daemon's own data directory (store and secret) when the test did not give one.
    _data: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Starts moatd with a private data directory.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let data = tempfile::tempdir().unwrap();
        let mut d = Daemon::start_in(data.path(), args, env);
        d._data = Some(data);
        d
    }

    /// Starts moatd with `data` as its data directory (`XDG_DATA_HOME`), e.g. to share it with
    /// `moatd keys` commands or a restart.
    pub fn start_in(data: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(MOATD);
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        cmd.env_remove("OPENROUTER_API_KEY")
            .env_remove("MOATD_CONFIG")
            .env_remove("MOATD_LISTEN")
            .env_remove("MOAT_SECRET")
            .env("XDG_DATA_HOME", data);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    // The address ends the text line; in a JSON line a quote follows it.
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                        .collect();
                    let _ = tx.send(addr);
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("moatd did not start: {}", log.lock().unwrap());
            }
        };
        Daemon {
            child,
            addr,
            log,
            _data: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The daemon's process id (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        let log = self.log.lock().unwrap().clone();
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    let tls = moat_testkit::TestCa::new("unused")
        .unwrap()
        .client_config()
        .unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

pub fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("moatd.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a `moatd` admin command with `data` as the data directory; returns (stdout, stderr, success).
pub fn moatd_cmd(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (String, String, bool) {
    use std::io::Write;
    let mut cmd = Command::new(MOATD);
    cmd.args(args)
        .env("XDG_DATA_HOME", data)
        .env_remove("MOAT_SECRET")
        .env_remove("MOATD_CONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        // A command that refuses its input may exit before reading it; the exit status tells.
        if let Err(e) = child.stdin.take().unwrap().write_all(text.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing stdin: {e}");
        }
    }
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}
