//! The `compare` benchmark: moatd side by side with the gateways people use today (see `peers`), in
//! one run, against one emulator. Every rate of a ladder is loaded open-loop directly and then
//! through each gateway in turn. The highest rate a gateway passes with < 0.1% errors and p99 < 50 ms
//! is its sustainable rate; the highest with < 0.1% errors and p99 < 1 s its throughput limit. A
//! gateway past its throughput limit is not loaded at higher rates in that run. The
//! same is done for streamed answers of N chunks, where time to first byte and time per chunk count.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::client::Target;
use crate::load::LoadSpec;
use crate::measure::{self, Pids};
use crate::peers::{self, Peer};
use crate::processes::{self, Scratch, Server};
use crate::procstat::{self, Memory};
use crate::report::{median, PhaseStats};
use crate::summary::{self, Mode, PhaseRecord};

/// A rate is sustained when fewer than this share of its requests fail…
pub const MAX_ERROR_RATE: f64 = 0.001;
/// …and its p99 stays under this (µs).
pub const MAX_P99_US: f64 = 50_000.0;
/// A gateway keeps being loaded at higher rates while it answers (errors under [`MAX_ERROR_RATE`])
/// with a p99 under this (µs), so its throughput limit is measured even when its latency already
/// misses the sustainable bar.
pub const LOADED_P99_US: f64 = 1_000_000.0;
const CHAT: &str = "/v1/chat/completions";

/// Everything `compare` was asked to do, already validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub peers: Vec<Peer>,
    pub rates: Vec<u32>,
    pub stream_rates: Vec<u32>,
    pub stream_chunks: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub runs: usize,
    pub connections: usize,
    pub max_in_flight: usize,
    pub moatd: PathBuf,
    /// The `moatd-base` gateway's binary (a before/after pair in one run).
    pub moatd_base: Option<PathBuf>,
    pub out: PathBuf,
    pub install: bool,
}

/// A gateway that is up, with what to send it.
struct Subject {
    peer: Peer,
    server: Server,
    target: Target,
    plain: Bytes,
    stream: Bytes,
}

/// A chat request for `model`; `stream_chunks` > 0 asks for a streamed answer of that many chunks
/// (the emulator answers one chunk per word of the prompt).
pub fn body(model: &str, stream_chunks: usize) -> Bytes {
    let body = if stream_chunks == 0 {
        json!({"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8})
    } else {
        let words: Vec<String> = (0..stream_chunks).map(|i| format!("w{i}")).collect();
        json!({
            "model": model,
            "messages": [{"role": "user", "content": words.join(" ")}],
            "max_tokens": stream_chunks + 8,
            "stream": true,
        })
    };
    Bytes::from(body.to_string())
}

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(measure::until_interrupted(run_async(settings)))
}

async fn run_async(settings: &Settings) -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let emulator = processes::start_emulator(&scratch, body("tiny", 0)).await?;
    let direct = Target::new(emulator.addr, CHAT);

    let mut subjects = Vec::new();
    let mut unavailable: Vec<(Peer, String)> = Vec::new();
    for &peer in &settings.peers {
        if let Err(e) = peers::ensure_installed(peer, settings.install) {
            eprintln!("moat-bench: {} unavailable: {e:#}", peer.label());
            unavailable.push((peer, format!("{e:#}")));
            continue;
        }
        match peers::start(
            peer,
            &scratch,
            emulator.addr,
            &settings.moatd,
            settings.moatd_base.as_deref(),
            body(peer.model(), 0),
        )
        .await
        {
            Ok((server, target)) => {
                eprintln!(
                    "moat-bench: {} on {} (pid {})",
                    peer.label(),
                    target.addr,
                    server.pid()
                );
                subjects.push(Subject {
                    peer,
                    server,
                    target,
                    plain: body(peer.model(), 0),
                    stream: body(peer.model(), settings.stream_chunks),
                });
            }
            Err(e) => {
                eprintln!("moat-bench: {} did not start: {e:#}", peer.label());
                unavailable.push((peer, format!("did not start: {e:#}")));
            }
        }
    }

    let mut records = Vec::new();
    for run in 1..=settings.runs {
        for mode in [Mode::Plain, Mode::Stream] {
            let rates = match mode {
                Mode::Plain => &settings.rates,
                Mode::Stream if settings.stream_chunks > 0 => &settings.stream_rates,
                Mode::Stream => continue,
            };
            ladder(
                settings,
                run,
                mode,
                rates,
                &emulator,
                &direct,
                &subjects,
                &mut records,
            )
            .await?;
        }
    }

    let report = summary::Report::new(settings, &records, &unavailable);
    println!("{}", report.markdown());
    let doc = json!({
        "settings": settings_json(settings),
        "unavailable": unavailable.iter().map(|(p, why)| json!({"gateway": p.label(), "reason": why})).collect::<Vec<_>>(),
        "summary": report.to_json(),
        "phases": records.iter().map(PhaseRecord::to_json).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&doc).context("encoding the results")?;
    std::fs::write(&settings.out, text + "\n")
        .with_context(|| format!("writing {}", settings.out.display()))?;
    eprintln!("moat-bench: results written to {}", settings.out.display());
    Ok(())
}

/// One run of one mode: every rate directly, then through each gateway still standing.
#[allow(clippy::too_many_arguments)]
async fn ladder(
    settings: &Settings,
    run: usize,
    mode: Mode,
    rates: &[u32],
    emulator: &Server,
    direct: &Target,
    subjects: &[Subject],
    records: &mut Vec<PhaseRecord>,
) -> anyhow::Result<()> {
    let mut standing = vec![true; subjects.len()];
    let direct_body = body(
        "tiny",
        if mode == Mode::Stream {
            settings.stream_chunks
        } else {
            0
        },
    );
    for &rate in rates {
        let stats = phase(
            settings,
            direct,
            &direct_body,
            rate,
            emulator.pid(),
            emulator.pid(),
        )
        .await?;
        let ok = sustained(&stats);
        log(run, mode, rate, "direct", &stats);
        records.push(PhaseRecord {
            run,
            mode,
            rate,
            path: "direct",
            stats,
            memory: None,
        });
        if !ok {
            eprintln!("moat-bench: the direct path itself fails at {rate}/s: the harness is the limit here");
            break;
        }
        for (i, s) in subjects.iter().enumerate() {
            if !standing[i] {
                continue;
            }
            let b = if mode == Mode::Stream { &s.stream } else { &s.plain };
            let measured = phase(settings, &s.target, b, rate, s.server.pid(), emulator.pid()).await;
            let memory = procstat::tree_memory(s.server.pid());
            let (stats, memory) = match (measured, memory) {
                (Ok(stats), Ok(memory)) => (stats, memory),
                (Err(e), _) | (_, Err(e)) => {
                    // A gateway that crashed or stopped answering is out of this run, not the benchmark.
                    eprintln!("moat-bench: {} failed at {rate}/s: {e:#}", s.peer.label());
                    standing[i] = false;
                    continue;
                }
            };
            log(run, mode, rate, s.peer.label(), &stats);
            if !answering(&stats) {
                standing[i] = false;
                settle(s.server.pid()).await;
            }
            records.push(PhaseRecord {
                run,
                mode,
                rate,
                path: s.peer.label(),
                stats,
                memory: Some(memory),
            });
        }
        if !standing.iter().any(|s| *s) && !subjects.is_empty() {
            break;
        }
    }
    Ok(())
}

fn log(run: usize, mode: Mode, rate: u32, path: &str, s: &PhaseStats) {
    eprintln!(
        "run {run} {} {rate}/s {path}: p50 {:.0} p99 {:.0} µs, ttfb p50 {:.0} µs, ok {}, errors {}, cpu {:.2} s",
        mode.label(),
        s.p50,
        s.p99,
        s.ttfb_p50,
        s.ok,
        s.errors.total(),
        s.cpu.gateway,
    );
}

/// True while a gateway still answers: few errors and a p99 under a second.
pub fn answering(s: &PhaseStats) -> bool {
    let total = s.ok + s.errors.total();
    total > 0 && (s.errors.total() as f64) < MAX_ERROR_RATE * total as f64 && s.p99 < LOADED_P99_US
}

/// True when the phase meets the sustainable-rate bar.
pub fn sustained(s: &PhaseStats) -> bool {
    let total = s.ok + s.errors.total();
    total > 0 && (s.errors.total() as f64) < MAX_ERROR_RATE * total as f64 && s.p99 < MAX_P99_US
}

/// After an overloaded phase, waits (up to a minute) until the gateway has worked off its backlog,
/// so the next phase measures the next gateway, not this one's stragglers.
async fn settle(pid: u32) {
    for _ in 0..60 {
        let before = procstat::tree_cpu_seconds(pid).unwrap_or(0.0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = procstat::tree_cpu_seconds(pid).unwrap_or(0.0);
        if after - before < 0.05 {
            return;
        }
    }
}

/// One load phase; `gateway` is the process (tree) on the path, `emulator` the upstream.
async fn phase(
    settings: &Settings,
    target: &Target,
    body: &Bytes,
    rate: u32,
    gateway: u32,
    emulator: u32,
) -> anyhow::Result<PhaseStats> {
    let spec = LoadSpec {
        target: target.clone(),
        body: body.clone(),
        rate,
        warmup: settings.warmup,
        duration: settings.duration,
        connections: settings.connections,
        max_in_flight: settings.max_in_flight,
    };
    let pids = Pids {
        gateway,
        emulator,
        bench: std::process::id(),
    };
    measure::phase(&spec, pids).await
}

fn settings_json(s: &Settings) -> Value {
    json!({
        "gateways": s.peers.iter().map(|p| p.label()).collect::<Vec<_>>(),
        "rates": s.rates, "stream_rates": s.stream_rates, "stream_chunks": s.stream_chunks,
        "duration_s": s.duration.as_secs_f64(), "warmup_s": s.warmup.as_secs_f64(), "runs": s.runs,
        "connections": s.connections, "max_in_flight": s.max_in_flight,
        "sustained_if": {"max_error_rate": MAX_ERROR_RATE, "max_p99_us": MAX_P99_US},
        "loaded_while": {"max_error_rate": MAX_ERROR_RATE, "max_p99_us": LOADED_P99_US},
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    })
}

/// The median of `values`, NaN when there are none.
pub fn med(values: impl IntoIterator<Item = f64>) -> f64 {
    median(values.into_iter().collect())
}

/// Memory figures of a phase record, in MiB.
pub fn rss_mib(m: &Option<Memory>) -> f64 {
    m.map_or(f64::NAN, |m| m.rss_kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_body_has_one_word_per_chunk() {
        let v: Value = serde_json::from_slice(&body("m", 5)).unwrap();
        assert_eq!(v["stream"], true);
        assert_eq!(
            v["messages"][0]["content"].as_str().unwrap().split(' ').count(),
            5
        );
        let plain: Value = serde_json::from_slice(&body("m", 0)).unwrap();
        assert!(plain.get("stream").is_none());
    }
}
