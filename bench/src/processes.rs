//! The servers under test as child processes: the upstream emulator (this binary again) and moatd or
//! the pass-through proxy.
//! Each child is killed when its guard is dropped, so an error anywhere leaves nothing running.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

use crate::client::{self, Target};

/// How long a freshly started server gets to answer its first request.
const STARTUP_LIMIT: Duration = Duration::from_secs(20);

/// A running child process and the file its output goes to.
pub struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
    pub addr: SocketAddr,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if the process has already exited, quoting the end of its log.
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait().context("polling the child")? {
            bail!(
                "{} exited early ({status}); its log ends with:\n{}",
                self.name,
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// Waits until `target` on this server answers 200.
    pub async fn wait_ready(&mut self, target: &Target, body: Option<bytes::Bytes>) -> anyhow::Result<()> {
        self.wait_ready_for(target, body, STARTUP_LIMIT).await
    }

    /// Waits up to `limit` until `target` on this server answers 200.
    pub async fn wait_ready_for(
        &mut self,
        target: &Target,
        body: Option<bytes::Bytes>,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let name = self.name;
        let log = self.log.clone();
        client::wait_ready(target, body, limit, || self.check_alive())
            .await
            .with_context(|| format!("{name} did not come up; its log ends with:\n{}", log_tail(&log)))
    }
}

impl Drop for Server {
    /// Asks the server to stop (SIGTERM, through the `kill` command: no unsafe code for a signal), so
    /// multi-process gateways (nginx, LiteLLM, node) take their workers with them; kills it after 3 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory for the config and the logs, removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new() -> anyhow::Result<Scratch> {
        let dir = std::env::temp_dir().join(format!("moat-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that was free a moment ago (bound on port 0, then released for the child).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a probe port")?;
    listener.local_addr().context("reading the probe port")
}

pub fn spawn(name: &'static str, mut cmd: Command, log: PathBuf, addr: SocketAddr) -> anyhow::Result<Server> {
    let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone().context("duplicating the log file")?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    Ok(Server {
        name,
        child,
        log,
        addr,
    })
}

/// Starts `moat-bench emulator` on a free port and waits until it answers a chat request.
pub async fn start_emulator(scratch: &Scratch, body: bytes::Bytes) -> anyhow::Result<Server> {
    let exe = std::env::current_exe().context("locating the moat-bench binary")?;
    let addr = free_port()?;
    let mut cmd = Command::new(exe);
    cmd.arg("emulator").arg("--listen").arg(addr.to_string());
    let mut server = spawn("the emulator", cmd, scratch.dir.join("emulator.log"), addr)?;
    server
        .wait_ready(&Target::new(addr, "/v1/chat/completions"), Some(body))
        .await?;
    Ok(server)
}

/// Starts `moat-bench passthrough` in front of `upstream` and waits until a chat request gets through.
pub async fn start_passthrough(
    scratch: &Scratch,
    upstream: SocketAddr,
    body: bytes::Bytes,
) -> anyhow::Result<Server> {
    let exe = std::env::current_exe().context("locating the moat-bench binary")?;
    let addr = free_port()?;
    let mut cmd = Command::new(exe);
    cmd.arg("passthrough")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--upstream")
        .arg(upstream.to_string());
    let mut server = spawn(
        "the pass-through proxy",
        cmd,
        scratch.dir.join("passthrough.log"),
        addr,
    )?;
    server
        .wait_ready(&Target::new(addr, "/v1/chat/completions"), Some(body))
        .await?;
    Ok(server)
}

/// The moatd configuration: one OpenAI-compatible provider named `emu` pointing at the emulator.
pub fn moatd_config(upstream: SocketAddr) -> String {
    // Prices, so a keyed request's reservation and settlement do their real arithmetic.
    format!(
        "# Written by moat-bench for one benchmark run.\n\
         [[providers]]\n\
         name = \"emu\"\n\
         kind = \"openai\"\n\
         base_url = \"http://{upstream}/v1\"\n\
         prices = {{ \"*\" = [1.0, 2.0] }}\n"
    )
}

/// Starts `moatd serve` in front of `upstream` and waits until `/health` answers. `dir` holds its
/// config, log and data directory (one per moatd instance, so two never share a store).
pub async fn start_moatd(moatd: &Path, dir: &Path, upstream: SocketAddr) -> anyhow::Result<Server> {
    start_moatd_with(moatd, dir, &moatd_config(upstream)).await
}

/// Starts `moatd serve` with the configuration `config` in `dir` and waits until `/health` answers.
pub async fn start_moatd_with(moatd: &Path, dir: &Path, config: &str) -> anyhow::Result<Server> {
    if !moatd.is_file() {
        bail!(
            "moatd binary not found at {}; build it first with \
             `cargo build --release -p moatd -p moat-bench` \
             (or pass --moatd PATH)",
            moatd.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = config;
    let config = dir.join("moatd.toml");
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    let addr = free_port()?;
    let mut cmd = Command::new(moatd);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(addr.to_string());
    // Per-request info logging would be part of what we measure; production runs at warn or info.
    cmd.env("MOAT_LOG", "warn");
    // moatd keeps its store and server secret in the data directory; a fresh one per benchmark keeps
    // the user's own data out of it and every run starting from the same empty store.
    cmd.env("XDG_DATA_HOME", dir.join("data"));
    let mut server = spawn("moatd", cmd, dir.join("moatd.log"), addr)?;
    server.wait_ready(&Target::new(addr, "/health"), None).await?;
    Ok(server)
}

/// Creates a moatd virtual key with a (never reached) daily budget in the benchmark's data directory,
/// so requests go through authentication, reservation and settlement.
pub fn create_virtual_key(moatd: &Path, dir: &Path) -> anyhow::Result<String> {
    let out = Command::new(moatd)
        .args([
            "keys",
            "create",
            "--name",
            "bench",
            "--budget",
            "1000000/day",
            "--config",
        ])
        .arg(dir.join("moatd.toml"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .output()
        .context("running moatd keys create")?;
    if !out.status.success() {
        bail!(
            "moatd keys create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_upstream() {
        let addr: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        let text = moatd_config(addr);
        assert!(text.contains("base_url = \"http://127.0.0.1:4567/v1\""));
        assert!(text.contains("kind = \"openai\""));
    }
}
