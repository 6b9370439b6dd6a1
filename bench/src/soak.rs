//! `moat-bench soak`: many streams held open through moatd at once. Measures moatd's resident memory
//! per open stream and its file descriptors before, during and after, to show that a stream costs a
//! bounded amount and that closing every stream gives every descriptor back.
//!
//! Each stream is a chat completion over its own HTTP/1.1 connection from the client; the provider is
//! the emulator over HTTPS, which moatd reaches over HTTP/2 as it would a cloud provider (a few
//! connections carry every stream, so moatd's descriptors are about one per client). The emulator
//! sends the first chunk, then pauses (with a keep-alive comment now and then) until the client
//! leaves. The client reads the response head and the first chunk, so every stream is known to be
//! relaying.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::processes::{self, Scratch};
use crate::procstat;

pub struct Settings {
    pub streams: usize,
    /// Streams being opened at once.
    pub concurrency: usize,
    /// How long to keep them all open before measuring (lets allocator and kernel settle).
    pub hold: Duration,
    /// Times to open every stream and close them again on the same moatd: a later round that needs
    /// no more memory than the first shows that closed streams' memory is reused, not leaked.
    pub rounds: usize,
    pub moatd: PathBuf,
}

/// moatd's resources at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kib: u64,
    fds: usize,
}

fn sample(pid: u32) -> anyhow::Result<Sample> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .context("listing moatd's file descriptors")?
        .count();
    Ok(Sample {
        rss_kib: procstat::memory(pid)?.rss_kib,
        fds,
    })
}

/// The soak's moatd configuration: room for every stream, the streams' pause well inside the idle
/// time-out (keep-alive comments keep it fed).
fn config(base_url: &str, ca_file: &std::path::Path, streams: usize) -> String {
    format!(
        "# Written by moat-bench soak.\n[server]\nmax_connections = {}\n[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{base_url}\"\nca_file = \"{}\"\nhealth_check = false\n",
        streams + 64,
        ca_file.display()
    )
}

fn request(addr: std::net::SocketAddr) -> Vec<u8> {
    let body = r#"{"model":"emu/tiny","stream":true,"messages":[{"role":"user","content":"soak"}],"emulate":{"pause_after_chunks":1,"pause_ms":3600000,"keepalive_every_ms":20000}}"#;
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Opens one stream and returns its connection once the first content chunk has arrived.
async fn open(addr: std::net::SocketAddr, request: &[u8]) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await.context("connecting to moatd")?;
    s.write_all(request).await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(9).any(|w| w == b"\"content\"") {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            bail!("moatd closed the stream: {}", String::from_utf8_lossy(&seen));
        }
        seen.extend_from_slice(&buf[..n]);
        if !seen.starts_with(b"HTTP/1.1 200") && seen.len() >= 12 {
            bail!("moatd answered {}", String::from_utf8_lossy(&seen));
        }
    }
    Ok(s)
}

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(soak(settings))
}

async fn soak(s: &Settings) -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let ca = moat_testkit::TestCa::new("moat-bench soak CA").context("making a test CA")?;
    let ca_file = scratch.dir.join("ca.pem");
    ca.write_cert_pem(&ca_file).context("writing the test CA")?;
    let emulator = moat_testkit::Emulator::start(moat_testkit::EmulatorOptions {
        tls: Some(
            ca.issue(&["localhost"])
                .context("issuing the emulator's certificate")?,
        ),
        ..Default::default()
    })
    .await
    .context("starting the emulator")?;
    let config = config(&emulator.base_url(), &ca_file, s.streams);
    let moatd = processes::start_moatd_with(&s.moatd, &scratch.dir.join("moatd"), &config).await?;
    let pid = moatd.pid();
    let addr = moatd.addr;
    let request = Arc::new(request(addr));
    // Warm-up: one stream opened and closed, so pools and lazy state exist before the baseline.
    drop(open(addr, &request).await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = sample(pid)?;
    eprintln!("idle: RSS {} KiB, {} fds", idle.rss_kib, idle.fds);

    let mut failures = 0;
    for round in 1..=s.rounds {
        let r = round_trip(s, pid, addr, &request, idle).await?;
        failures += r.failures;
        println!(
            "soak round {round}: {} concurrent streams through moatd ({} failed to open, all opened in {:.1} s)",
            r.opened,
            r.failures,
            r.open_time.as_secs_f64()
        );
        let line = |what: &str, x: Sample| {
            println!(
                "  {what:<12} RSS {:>8.1} MiB, {:>6} fds",
                x.rss_kib as f64 / 1024.0,
                x.fds
            );
        };
        line("idle:", idle);
        line("all open:", r.held);
        println!(
            "  {:<12} {:.1} KiB of RSS per open stream over idle",
            "",
            r.held.rss_kib.saturating_sub(idle.rss_kib) as f64 / r.opened.max(1) as f64
        );
        line("after close:", r.after);
    }
    if failures > 0 {
        bail!("{failures} streams failed to open");
    }
    Ok(())
}

/// What one round of opening every stream and closing them again saw.
struct Round {
    opened: usize,
    failures: usize,
    open_time: Duration,
    held: Sample,
    after: Sample,
}

async fn round_trip(
    s: &Settings,
    pid: u32,
    addr: std::net::SocketAddr,
    request: &Arc<Vec<u8>>,
    idle: Sample,
) -> anyhow::Result<Round> {
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(s.concurrency));
    let mut tasks = Vec::with_capacity(s.streams);
    for _ in 0..s.streams {
        let (gate, request) = (gate.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let stream = open(addr, &request).await;
            drop(permit);
            stream
        }));
    }
    let mut streams = Vec::with_capacity(s.streams);
    let mut failures = 0usize;
    for t in tasks {
        match t.await.context("joining an opener")? {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                if failures == 0 {
                    eprintln!("first failure: {e:#}");
                }
                failures += 1;
            }
        }
    }
    let open_time = started.elapsed();
    tokio::time::sleep(s.hold).await;
    let held = sample(pid)?;
    let opened = streams.len();
    drop(streams);
    // Closing is asynchronous on moatd's side: wait until its descriptors stop falling.
    let closing = Instant::now();
    let mut after = sample(pid)?;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = sample(pid)?;
        let settled = now.fds == after.fds;
        after = now;
        if (settled && after.fds <= idle.fds + 8) || closing.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    Ok(Round {
        opened,
        failures,
        open_time,
        held,
        after,
    })
}

/// The fd limit this process (and the children it starts) may use.
pub fn fd_limit() -> Option<u64> {
    let out = Command::new("sh").arg("-c").arg("ulimit -n").output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
