//! The `gateway` benchmark: start the emulator and moatd, then load the direct path and the moatd path
//! in turn at each rate, run after run, and report moatd's added latency.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use hyper::StatusCode;
use serde_json::json;

use crate::client::{chat_body, probe, Target};
use crate::load::{self, LoadSpec};
use crate::processes::{self, Scratch, Server};
use crate::procstat;
use crate::report::{self, CpuUse, PhaseStats, RunRecord};

/// Everything the `gateway` subcommand was asked to do, already validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rates: Vec<u32>,
    pub duration: Duration,
    pub warmup: Duration,
    pub runs: usize,
    pub connections: usize,
    pub max_in_flight: usize,
    pub moatd: PathBuf,
    pub out: Option<PathBuf>,
}

/// Lets the machine settle between phases (sockets in TIME_WAIT, the previous phase's stragglers).
const PAUSE: Duration = Duration::from_millis(300);
const CHAT_PATH: &str = "/v1/chat/completions";
/// Above this much CPU (in cores) used by processes other than ours, a run is flagged as disturbed.
const BUSY_CORES: f64 = 0.1;

/// Runs the whole benchmark on a single-threaded runtime, so the generator uses one core at most
/// (plus its pacing thread) and leaves the rest to the emulator and moatd.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(run_async(settings))
}

/// The processes whose CPU time is sampled around each phase.
struct Pids {
    moatd: u32,
    emulator: u32,
    bench: u32,
}

async fn run_async(settings: &Settings) -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let direct_body = chat_body("tiny");
    let gateway_body = chat_body("emu/tiny");
    let emulator = processes::start_emulator(&scratch, direct_body.clone()).await?;
    let moatd = processes::start_moatd(&settings.moatd, &scratch, emulator.addr).await?;
    let direct = Target::new(emulator.addr, CHAT_PATH);
    let gateway = Target::new(moatd.addr, CHAT_PATH);
    check_route(&gateway, gateway_body.clone()).await?;
    eprintln!(
        "moat-bench: emulator on {} (pid {}), moatd on {} (pid {}); {} run(s) × rates {:?}, {:?} warm-up + {:?} each",
        emulator.addr,
        emulator.pid(),
        moatd.addr,
        moatd.pid(),
        settings.runs,
        settings.rates,
        settings.warmup,
        settings.duration,
    );

    let pids = Pids {
        moatd: moatd.pid(),
        emulator: emulator.pid(),
        bench: std::process::id(),
    };
    let mut records = Vec::new();
    for run in 1..=settings.runs {
        for &rate in &settings.rates {
            let direct_stats = phase(settings, &direct, &direct_body, rate, &pids).await?;
            let gateway_stats = phase(settings, &gateway, &gateway_body, rate, &pids).await?;
            let moatd_memory = procstat::memory(pids.moatd)?;
            eprintln!(
                "run {run} at {rate}/s: direct p50 {:.0} p99 {:.0} µs; moatd p50 {:.0} p99 {:.0} µs; errors {} / {}",
                direct_stats.p50,
                direct_stats.p99,
                gateway_stats.p50,
                gateway_stats.p99,
                direct_stats.errors.total(),
                gateway_stats.errors.total(),
            );
            records.push(RunRecord {
                run,
                rate,
                direct: direct_stats,
                gateway: gateway_stats,
                moatd_memory,
            });
        }
    }
    check_alive(&moatd, &emulator)?;

    let summaries = report::summarize(&records, &settings.rates);
    println!("{}", report::markdown(&summaries));
    print!("{}", report::verdicts(&summaries));
    warn_if_busy(settings, &records);
    if let Some(path) = &settings.out {
        let doc = report::to_json(settings_json(settings), &records, &summaries);
        let text = serde_json::to_string_pretty(&doc).context("encoding the results")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("moat-bench: per-run results written to {}", path.display());
    }
    Ok(())
}

/// Other work on the machine competes with the three processes for its cores and skews the results.
fn warn_if_busy(settings: &Settings, records: &[RunRecord]) {
    let window = settings.duration.as_secs_f64();
    let busiest = records
        .iter()
        .flat_map(|r| [r.direct.cpu.other, r.gateway.cpu.other])
        .fold(0.0_f64, f64::max);
    if busiest / window > BUSY_CORES {
        println!(
            "warning: other processes used up to {:.2} cores during a measured window; \
             the figures include their interference",
            busiest / window
        );
    }
}

/// Fails early, with moatd's own words, if a chat request through moatd does not work at all.
async fn check_route(gateway: &Target, body: bytes::Bytes) -> anyhow::Result<()> {
    let (status, bytes) = probe(gateway, Some(body))
        .await
        .context("a first request through moatd")?;
    if status != StatusCode::OK {
        bail!(
            "a first request through moatd answered HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(())
}

/// Both servers must have lived through every phase; a crash would make the numbers meaningless.
fn check_alive(moatd: &Server, emulator: &Server) -> anyhow::Result<()> {
    for (name, pid) in [("moatd", moatd.pid()), ("the emulator", emulator.pid())] {
        procstat::cpu_seconds(pid).with_context(|| format!("{name} is no longer running"))?;
    }
    Ok(())
}

/// One load phase at `rate` against `target`, with the CPU time each process used in its measured
/// window sampled alongside.
async fn phase(
    settings: &Settings,
    target: &Target,
    body: &bytes::Bytes,
    rate: u32,
    pids: &Pids,
) -> anyhow::Result<PhaseStats> {
    tokio::time::sleep(PAUSE).await;
    let spec = LoadSpec {
        target: target.clone(),
        body: body.clone(),
        rate,
        warmup: settings.warmup,
        duration: settings.duration,
        connections: settings.connections,
        max_in_flight: settings.max_in_flight,
    };
    let (result, cpu) = tokio::join!(load::run(&spec), sample_cpu(settings, pids));
    Ok(PhaseStats::new(&result?, cpu?))
}

/// CPU seconds used by each process between the end of the warm-up and the end of the window. The
/// boundaries follow the load generator's to within a millisecond or two.
async fn sample_cpu(settings: &Settings, pids: &Pids) -> anyhow::Result<CpuUse> {
    let read = || -> anyhow::Result<(CpuUse, f64)> {
        let own = CpuUse {
            moatd: procstat::cpu_seconds(pids.moatd)?,
            emulator: procstat::cpu_seconds(pids.emulator)?,
            bench: procstat::cpu_seconds(pids.bench)?,
            other: 0.0,
        };
        Ok((own, procstat::machine_busy_seconds()?))
    };
    // load::run starts its clock 20 ms after opening its connections.
    tokio::time::sleep(settings.warmup + Duration::from_millis(20)).await;
    let (before, busy_before) = read()?;
    tokio::time::sleep(settings.duration).await;
    let (after, busy_after) = read()?;
    let moatd = after.moatd - before.moatd;
    let emulator = after.emulator - before.emulator;
    let bench = after.bench - before.bench;
    // Tick rounding can make this slightly negative on a quiet machine.
    let other = (busy_after - busy_before - moatd - emulator - bench).max(0.0);
    Ok(CpuUse { moatd, emulator, bench, other })
}

fn settings_json(settings: &Settings) -> serde_json::Value {
    json!({
        "rates": settings.rates,
        "duration_s": settings.duration.as_secs_f64(),
        "warmup_s": settings.warmup.as_secs_f64(),
        "runs": settings.runs,
        "connections": settings.connections,
        "max_in_flight": settings.max_in_flight,
        "moatd": settings.moatd.display().to_string(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    })
}
