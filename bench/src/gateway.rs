//! The `gateway` benchmark: start the emulator and the gateway under test (moatd, or the pass-through
//! proxy as a floor), then load the direct path and the gateway path in turn at each rate, run after
//! run, and report the latency the gateway adds.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use hyper::StatusCode;
use serde_json::json;

use crate::client::{chat_body, probe, Target};
use crate::load::LoadSpec;
use crate::measure::{self, Pids, Sample};
use crate::processes::{self, Scratch, Server};
use crate::procstat;
use crate::report::{self, PhaseStats, RunRecord};

/// Everything the `gateway` subcommand was asked to do, already validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub rates: Vec<u32>,
    pub duration: Duration,
    pub warmup: Duration,
    pub runs: usize,
    pub connections: usize,
    pub max_in_flight: usize,
    pub subject: Subject,
    /// Before each run, wait up to this long for other processes to leave the machine idle, and
    /// repeat runs they disturbed.
    pub wait_quiet: Option<Duration>,
    pub moatd: PathBuf,
    pub out: Option<PathBuf>,
    /// Send moatd requests with a virtual key that has a budget, so each one is authenticated,
    /// reserved and settled (moatd only).
    pub virtual_key: bool,
}

/// What sits between the load generator and the emulator on the gateway path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Subject {
    /// The moatd binary given by --moatd.
    Moatd,
    /// `moat-bench passthrough`: a bare hyper proxy, the cost of the extra hop alone.
    Passthrough,
}

impl Subject {
    pub fn label(self) -> &'static str {
        match self {
            Subject::Moatd => "moatd",
            Subject::Passthrough => "passthrough",
        }
    }

    /// moatd addresses models as `provider/model`; the pass-through proxy forwards names untouched.
    fn model(self) -> &'static str {
        match self {
            Subject::Moatd => "emu/tiny",
            Subject::Passthrough => "tiny",
        }
    }
}

const CHAT_PATH: &str = "/v1/chat/completions";
/// Above this much CPU (in cores) used by processes other than ours, a run is flagged as disturbed.
const BUSY_CORES: f64 = 0.1;
/// How long the machine must stay quiet before a run starts (builds pause between crates).
const QUIET_WINDOW: Duration = Duration::from_secs(3);
/// With --wait-quiet, a run disturbed by other processes is repeated up to this many times.
const BUSY_RETRIES: u32 = 3;

/// Runs the whole benchmark on a single-threaded runtime, so the generator uses one core at most
/// (plus its pacing thread) and leaves the rest to the emulator and the gateway.
pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(measure::until_interrupted(run_async(settings)))
}

async fn run_async(settings: &Settings) -> anyhow::Result<()> {
    let scratch = Scratch::new()?;
    let direct_body = chat_body("tiny");
    let gateway_body = chat_body(settings.subject.model());
    let label = settings.subject.label();
    let emulator = processes::start_emulator(&scratch, direct_body.clone()).await?;
    let server = match settings.subject {
        Subject::Moatd => processes::start_moatd(&settings.moatd, &scratch.dir, emulator.addr).await?,
        Subject::Passthrough => {
            processes::start_passthrough(&scratch, emulator.addr, gateway_body.clone()).await?
        }
    };
    let direct = Target::new(emulator.addr, CHAT_PATH);
    let mut gateway = Target::new(server.addr, CHAT_PATH);
    if settings.virtual_key && settings.subject == Subject::Moatd {
        let key = processes::create_virtual_key(&settings.moatd, &scratch.dir)?;
        gateway.auth = Some(format!("Bearer {key}"));
    }
    check_route(&gateway, gateway_body.clone(), label).await?;
    eprintln!(
        "moat-bench: emulator on {} (pid {}), {label} on {} (pid {}); \
         {} run(s) × rates {:?}, {:?} warm-up + {:?} each",
        emulator.addr,
        emulator.pid(),
        server.addr,
        server.pid(),
        settings.runs,
        settings.rates,
        settings.warmup,
        settings.duration,
    );

    let pids = Pids {
        gateway: server.pid(),
        emulator: emulator.pid(),
        bench: std::process::id(),
    };
    let mut records = Vec::new();
    for run in 1..=settings.runs {
        for &rate in &settings.rates {
            let mut retries = 0;
            let record = loop {
                if let Some(limit) = settings.wait_quiet {
                    if !wait_quiet(&pids, limit).await? {
                        eprintln!("moat-bench: the machine is still busy after {limit:?}; measuring anyway");
                    }
                }
                let direct_stats = phase(settings, &direct, &direct_body, rate, &pids).await?;
                let gateway_stats = phase(settings, &gateway, &gateway_body, rate, &pids).await?;
                let gateway_memory = procstat::memory(pids.gateway)?;
                eprintln!(
                    "run {run} at {rate}/s: direct p50 {:.0} p99 {:.0} µs; {label} p50 {:.0} p99 {:.0} µs; \
                     errors {} / {}; interference {:.2} / {:.2} cores",
                    direct_stats.p50,
                    direct_stats.p99,
                    gateway_stats.p50,
                    gateway_stats.p99,
                    direct_stats.errors.total(),
                    gateway_stats.errors.total(),
                    direct_stats.cpu.interference() / settings.duration.as_secs_f64(),
                    gateway_stats.cpu.interference() / settings.duration.as_secs_f64(),
                );
                let record = RunRecord {
                    run,
                    rate,
                    direct: direct_stats,
                    gateway: gateway_stats,
                    gateway_memory,
                };
                let disturbed = interference_cores(settings, &record) > BUSY_CORES;
                if disturbed && settings.wait_quiet.is_some() && retries < BUSY_RETRIES {
                    retries += 1;
                    eprintln!("moat-bench: other work disturbed run {run} at {rate}/s; repeating it");
                    continue;
                }
                break record;
            };
            records.push(record);
        }
    }
    check_alive(&server, &emulator)?;

    let summaries = report::summarize(&records, &settings.rates);
    println!("{}", report::markdown(&summaries, label));
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

/// The most CPU, in cores, that other processes and the hypervisor took during either phase.
fn interference_cores(settings: &Settings, record: &RunRecord) -> f64 {
    let direct = record.direct.cpu.interference();
    direct.max(record.gateway.cpu.interference()) / settings.duration.as_secs_f64()
}

/// Other work on the machine competes with the three processes for its cores and skews the results.
fn warn_if_busy(settings: &Settings, records: &[RunRecord]) {
    let busiest = records
        .iter()
        .map(|r| interference_cores(settings, r))
        .fold(0.0_f64, f64::max);
    if busiest > BUSY_CORES {
        println!(
            "warning: other processes or the hypervisor took up to {busiest:.2} cores during a measured \
             window; the figures include their interference"
        );
    }
}

/// Waits until other processes and the hypervisor take less than [`BUSY_CORES`] over
/// [`QUIET_WINDOW`], or until `limit` has passed (then returns false).
async fn wait_quiet(pids: &Pids, limit: Duration) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut announced = false;
    loop {
        let before = Sample::read(*pids)?;
        tokio::time::sleep(QUIET_WINDOW).await;
        let busy = Sample::read(*pids)?.since(&before).interference() / QUIET_WINDOW.as_secs_f64();
        if busy < BUSY_CORES {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        if !announced {
            eprintln!("moat-bench: waiting for other work to finish ({busy:.2} cores busy)");
            announced = true;
        }
    }
}

/// Fails early, with the gateway's own words, if a chat request through it does not work at all.
async fn check_route(gateway: &Target, body: bytes::Bytes, label: &str) -> anyhow::Result<()> {
    let (status, bytes) = probe(gateway, Some(body))
        .await
        .with_context(|| format!("a first request through {label}"))?;
    if status != StatusCode::OK {
        bail!(
            "a first request through {label} answered HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(())
}

/// Both servers must have lived through every phase; a crash would make the numbers meaningless.
fn check_alive(gateway: &Server, emulator: &Server) -> anyhow::Result<()> {
    for (name, pid) in [("the gateway", gateway.pid()), ("the emulator", emulator.pid())] {
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
    let spec = LoadSpec {
        target: target.clone(),
        body: body.clone(),
        rate,
        warmup: settings.warmup,
        duration: settings.duration,
        connections: settings.connections,
        max_in_flight: settings.max_in_flight,
    };
    measure::phase(&spec, *pids).await
}

fn settings_json(settings: &Settings) -> serde_json::Value {
    json!({
        "rates": settings.rates,
        "duration_s": settings.duration.as_secs_f64(),
        "warmup_s": settings.warmup.as_secs_f64(),
        "runs": settings.runs,
        "connections": settings.connections,
        "max_in_flight": settings.max_in_flight,
        "subject": settings.subject.label(),
        "wait_quiet_s": settings.wait_quiet.map(|d| d.as_secs_f64()),
        "moatd": settings.moatd.display().to_string(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    })
}
