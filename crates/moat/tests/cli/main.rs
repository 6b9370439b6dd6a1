//! Runs the real `moat` binary as a subprocess against the upstream emulator on loopback (HTTPS with
//! a throwaway CA unless a test says otherwise), with HOME and every XDG directory in a temporary
//! directory and the environment otherwise cleared, so nothing of the machine leaks in or out.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail the test by panicking"
)]

mod ask;
mod audit_cache;
mod doctor;
mod keys;
mod moatd;
mod tls;
mod tty;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use moat_testkit::{Emulator, EmulatorOptions, RecordedRequest, TestCa};
use serde_json::Value;

pub const KEY: &str = "sk-test-123";

/// One emulator, one CA and one fake home; dropped in field order (emulator before its runtime).
pub struct Harness {
    pub emu: Emulator,
    pub ca: TestCa,
    pub ca_file: PathBuf,
    pub dir: tempfile::TempDir,
    pub rt: tokio::runtime::Runtime,
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl Harness {
    /// An HTTPS emulator (certificate for localhost and 127.0.0.1) that requires [`KEY`].
    pub fn tls() -> Harness {
        Harness::with(EmulatorOptions::default(), true)
    }

    /// `opts` with TLS (if `tls`) and the API key filled in.
    pub fn with(mut opts: EmulatorOptions, tls: bool) -> Harness {
        let ca = TestCa::new("moat test CA").unwrap();
        if tls && opts.tls.is_none() {
            opts.tls = Some(ca.issue(&["localhost", "127.0.0.1"]).unwrap());
        }
        if opts.api_key.is_none() {
            opts.api_key = Some(KEY.to_owned());
        }
        let rt = runtime();
        let emu = rt.block_on(Emulator::start(opts)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        ca.write_cert_pem(&ca_file).unwrap();
        for sub in ["home", "config", "state", "cache", "data"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Harness {
            emu,
            ca,
            ca_file,
            dir,
            rt,
        }
    }

    pub fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// The directories moat may write to; `--private` must leave them all empty.
    pub fn xdg_dirs(&self) -> Vec<PathBuf> {
        ["home", "config", "state", "cache", "data"]
            .iter()
            .map(|s| self.path(s))
            .collect()
    }

    /// `moat` with a cleared environment: fake home and XDG dirs, the key in MOAT_API_KEY, no keyring,
    /// a fixed terminal id, and the emulator as base URL with the test CA trusted.
    pub fn moat(&self) -> Command {
        let mut cmd = self.bare();
        cmd.env("MOAT_API_KEY", KEY)
            .arg("--base-url")
            .arg(self.emu.base_url())
            .arg("--cacert")
            .arg(&self.ca_file);
        cmd
    }

    /// `moat` with the cleared environment only: no key, no base URL, no CA.
    pub fn bare(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_moat"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("MOAT_KEYRING", "off")
            .env("MOAT_SESSION", "test");
        cmd
    }

    /// Writes `$XDG_CONFIG_HOME/moat/config.toml`.
    pub fn config(&self, toml: &str) {
        let dir = self.path("config").join("moat");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), toml).unwrap();
    }

    /// The chat requests the emulator received, bodies parsed.
    pub fn chats(&self) -> Vec<Value> {
        self.emu
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .map(|r| r.json().unwrap())
            .collect()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.emu.requests()
    }
}

/// A finished run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "moat failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `cmd` with `args`, feeding `stdin` (or nothing: stdin is then /dev/null, not a terminal).
pub fn run(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> Run {
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A command that refuses its input may exit before reading it all: a broken pipe here is
        // that refusal, which the assertions on the exit status and stderr below check.
        if let Err(e) = pipe.write_all(text.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing stdin: {e}");
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The messages of a chat request as (role, content text) pairs.
pub fn turns(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
