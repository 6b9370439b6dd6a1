//! The gateways moatd is compared with, as child processes in front of the same emulator: nginx as a
//! bare reverse proxy (the floor for a proxy that adds nothing), Portkey's open-source gateway (node)
//! and LiteLLM's proxy (Python). Each is installed from its registry when missing — Debian's
//! `nginx-light`, npm's `@portkey-ai/gateway`, PyPI's `litellm[proxy]` — into a cache directory
//! outside the checkout, so a second run starts at once. A peer that cannot be installed or started
//! is reported with the reason, never dropped silently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::client::Target;
use crate::processes::{self, Scratch, Server};

/// What stands on the gateway path in a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// moatd (the binary given by --moatd), with a virtual key that has a budget.
    Moatd,
    /// A second moatd binary (--moatd-base), set up the same way: a before/after pair in one run.
    MoatdBase,
    /// nginx (Debian's nginx-light) with `proxy_pass` and upstream keep-alive.
    Nginx,
    /// Portkey's AI gateway (npm `@portkey-ai/gateway`) on node.
    Portkey,
    /// LiteLLM's proxy (PyPI `litellm[proxy]`), one worker.
    Litellm,
    /// `moat-bench passthrough`: a bare hyper proxy.
    Passthrough,
}

impl Peer {
    pub fn label(self) -> &'static str {
        match self {
            Peer::Moatd => "moatd",
            Peer::MoatdBase => "moatd-base",
            Peer::Nginx => "nginx",
            Peer::Portkey => "portkey",
            Peer::Litellm => "litellm",
            Peer::Passthrough => "passthrough",
        }
    }

    /// The model name each gateway expects for the emulator's model.
    pub fn model(self) -> &'static str {
        match self {
            Peer::Moatd | Peer::MoatdBase => "emu/tiny",
            _ => "tiny",
        }
    }

    /// How long the peer may take to answer its first request (LiteLLM imports a lot of Python).
    fn startup_limit(self) -> Duration {
        match self {
            Peer::Litellm => Duration::from_secs(180),
            Peer::Portkey => Duration::from_secs(60),
            _ => Duration::from_secs(20),
        }
    }
}

/// Where installed peers live between runs: `$MOAT_BENCH_PEERS`, else `~/.cache/moat-bench`.
pub fn peers_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MOAT_BENCH_PEERS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("moat-bench")
}

fn run_quiet(what: &str, cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("moat-bench: installing {what} …");
    let out = cmd
        .output()
        .with_context(|| format!("running the installer for {what}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        bail!(
            "installing {what} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        );
    }
    Ok(())
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn portkey_entry(dir: &Path) -> PathBuf {
    dir.join("portkey/node_modules/@portkey-ai/gateway/build/start-server.js")
}

fn litellm_binary(dir: &Path) -> PathBuf {
    dir.join("litellm-venv/bin/litellm")
}

/// Makes sure `peer` can be started, installing it when `install` allows; the error says why not.
pub fn ensure_installed(peer: Peer, install: bool) -> anyhow::Result<()> {
    let dir = peers_dir();
    let present = match peer {
        Peer::Moatd | Peer::MoatdBase | Peer::Passthrough => true,
        Peer::Nginx => nginx_binary().is_some(),
        Peer::Portkey => portkey_entry(&dir).is_file(),
        Peer::Litellm => litellm_binary(&dir).is_file(),
    };
    if present {
        return Ok(());
    }
    if !install {
        bail!("not installed (run with --install, or see docs/BENCHMARKS.md)");
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    match peer {
        Peer::Moatd | Peer::MoatdBase | Peer::Passthrough => {}
        Peer::Nginx => {
            run_quiet("apt index", Command::new("apt-get").args(["update", "-qq"]))?;
            run_quiet(
                "nginx-light (apt)",
                Command::new("apt-get")
                    .args(["install", "-y", "-qq", "nginx-light"])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )?;
        }
        Peer::Portkey => {
            let prefix = dir.join("portkey");
            std::fs::create_dir_all(&prefix).with_context(|| format!("creating {}", prefix.display()))?;
            run_quiet(
                "@portkey-ai/gateway (npm)",
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--prefix"])
                    .arg(&prefix)
                    .arg("@portkey-ai/gateway"),
            )?;
        }
        Peer::Litellm => {
            let venv = dir.join("litellm-venv");
            run_quiet(
                "a Python venv for LiteLLM",
                Command::new("python3").args(["-m", "venv"]).arg(&venv),
            )?;
            run_quiet(
                "litellm[proxy] (PyPI)",
                Command::new(venv.join("bin/pip")).args(["install", "-q", "litellm[proxy]"]),
            )?;
        }
    }
    ensure_installed(peer, false)
}

/// The nginx configuration: one upstream with keep-alive, no access log, no buffering (so streams
/// pass chunk by chunk, as through moatd), everything else in the scratch directory.
fn nginx_config(scratch: &Path, listen: SocketAddr, upstream: SocketAddr) -> String {
    let d = scratch.display();
    format!(
        "worker_processes auto;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/nginx-error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {d}/nginx-body;\n\
           proxy_temp_path {d}/nginx-proxy;\n\
           fastcgi_temp_path {d}/nginx-fastcgi;\n\
           uwsgi_temp_path {d}/nginx-uwsgi;\n\
           scgi_temp_path {d}/nginx-scgi;\n\
           upstream emulator {{ server {upstream}; keepalive 128; }}\n\
           server {{\n\
             listen {listen};\n\
             location / {{\n\
               proxy_pass http://emulator;\n\
               proxy_http_version 1.1;\n\
               proxy_set_header Connection \"\";\n\
               proxy_buffering off;\n\
             }}\n\
           }}\n\
         }}\n"
    )
}

/// LiteLLM's proxy configuration: the emulator as an OpenAI-compatible model named `tiny`.
fn litellm_config(upstream: SocketAddr) -> String {
    format!(
        "model_list:\n\
         \x20 - model_name: tiny\n\
         \x20   litellm_params:\n\
         \x20     model: openai/tiny\n\
         \x20     api_base: http://{upstream}/v1\n\
         \x20     api_key: bench\n"
    )
}

/// Starts `peer` in front of the emulator at `upstream` and returns it with the target to load.
pub async fn start(
    peer: Peer,
    scratch: &Scratch,
    upstream: SocketAddr,
    moatd: &Path,
    moatd_base: Option<&Path>,
    probe_body: bytes::Bytes,
) -> anyhow::Result<(Server, Target)> {
    const CHAT: &str = "/v1/chat/completions";
    let addr = processes::free_port()?;
    let dir = peers_dir();
    let log = scratch.dir.join(format!("{}.log", peer.label()));
    let mut target = Target::new(addr, CHAT);
    let server = match peer {
        Peer::Moatd | Peer::MoatdBase => {
            let binary = match peer {
                Peer::MoatdBase => moatd_base.context("moatd-base needs --moatd-base PATH")?,
                _ => moatd,
            };
            let dir = scratch.dir.join(peer.label());
            let server = processes::start_moatd(binary, &dir, upstream).await?;
            // Keys, budgets, the privacy scan and the audit log all on, as in production.
            let key = processes::create_virtual_key(binary, &dir)?;
            let mut target = Target::new(server.addr, CHAT);
            target.auth = Some(format!("Bearer {key}"));
            let mut server = server;
            server
                .wait_ready_for(&target, Some(probe_body), peer.startup_limit())
                .await?;
            return Ok((server, target));
        }
        Peer::Passthrough => {
            let server = processes::start_passthrough(scratch, upstream, probe_body).await?;
            let target = Target::new(server.addr, CHAT);
            return Ok((server, target));
        }
        Peer::Nginx => {
            let bin = nginx_binary().context("nginx is not installed")?;
            let conf = scratch.dir.join("nginx.conf");
            std::fs::write(&conf, nginx_config(&scratch.dir, addr, upstream))
                .with_context(|| format!("writing {}", conf.display()))?;
            let mut cmd = Command::new(bin);
            cmd.arg("-p")
                .arg(&scratch.dir)
                .arg("-c")
                .arg(&conf)
                .args(["-e", "stderr", "-g", "daemon off;"]);
            processes::spawn("nginx", cmd, log, addr)?
        }
        Peer::Portkey => {
            let entry = portkey_entry(&dir);
            let mut cmd = Command::new("node");
            cmd.arg(&entry)
                .arg(format!("--port={}", addr.port()))
                .arg("--headless");
            cmd.current_dir(dir.join("portkey"));
            target.headers = vec![
                ("x-portkey-provider", "openai".to_owned()),
                ("x-portkey-custom-host", format!("http://{upstream}/v1")),
            ];
            target.auth = Some("Bearer bench".to_owned());
            processes::spawn("portkey", cmd, log, addr)?
        }
        Peer::Litellm => {
            let conf = scratch.dir.join("litellm.yaml");
            std::fs::write(&conf, litellm_config(upstream))
                .with_context(|| format!("writing {}", conf.display()))?;
            let mut cmd = Command::new(litellm_binary(&dir));
            cmd.arg("--config")
                .arg(&conf)
                .args(["--host", "127.0.0.1", "--port"])
                .arg(addr.port().to_string())
                .args(["--num_workers", "1"]);
            // The model price map ships with the package; without this LiteLLM fetches it from the
            // internet at start, which this machine cannot reach.
            cmd.env("LITELLM_LOCAL_MODEL_COST_MAP", "True");
            // LiteLLM refuses to start without a master key; clients then present it, as in production.
            let key = format!("sk-bench-{}-{}", std::process::id(), addr.port());
            cmd.env("LITELLM_MASTER_KEY", &key);
            target.auth = Some(format!("Bearer {key}"));
            cmd.env("LITELLM_LOG", "ERROR");
            processes::spawn("litellm", cmd, log, addr)?
        }
    };
    let mut server = server;
    server
        .wait_ready_for(&target, Some(probe_body), peer.startup_limit())
        .await?;
    Ok((server, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_config_points_at_the_emulator() {
        let conf = nginx_config(
            Path::new("/tmp/x"),
            "127.0.0.1:1000".parse().unwrap(),
            "127.0.0.1:2000".parse().unwrap(),
        );
        assert!(conf.contains("listen 127.0.0.1:1000;"));
        assert!(conf.contains("server 127.0.0.1:2000; keepalive 128;"));
        assert!(conf.contains("proxy_buffering off;"));
    }

    #[test]
    fn litellm_config_is_yaml_for_the_emulator() {
        let conf = litellm_config("127.0.0.1:2000".parse().unwrap());
        assert!(conf.contains("  - model_name: tiny\n"));
        assert!(conf.contains("      api_base: http://127.0.0.1:2000/v1\n"));
    }

    #[test]
    fn models_per_peer() {
        assert_eq!(Peer::Moatd.model(), "emu/tiny");
        assert_eq!(Peer::Litellm.model(), "tiny");
    }
}
