//! The `cluster` benchmark: what running moatd as a cluster costs per request. At one total rate it
//! measures three paths in turn, each run after run:
//!
//! - direct: the load straight to the emulator (the floor every "added" figure is taken from);
//! - single: one moatd on SQLite with in-memory limits (today's default);
//! - cluster: two moatd nodes on PostgreSQL and Valkey, the load split evenly between them.
//!
//! Every gateway request carries a virtual key with a budget, so each is authenticated, reserved
//! and settled. Reported: added p50/p99 over direct, the cluster's extra p99 over single, moatd CPU
//! per request (and Valkey's and PostgreSQL's), and Valkey round trips per request: the nodes' own
//! `moat_cluster_round_trips_total`, cross-checked against the scripts Valkey ran (`EVALSHA` in
//! `INFO commandstats`; the commands inside a script are counted there too, so they are not used).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde_json::json;

use crate::client::{chat_body, Target};
use crate::load::{self, LoadSpec};
use crate::processes::{self, free_port, spawn, Scratch, Server};
use crate::procstat;

/// What the `cluster` subcommand was asked to do.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Total requests per second (split evenly over the two cluster nodes).
    pub rate: u32,
    pub duration: Duration,
    pub warmup: Duration,
    pub runs: usize,
    pub connections: usize,
    pub max_in_flight: usize,
    pub moatd: PathBuf,
    pub out: Option<PathBuf>,
}

/// One path's figures in one run.
#[derive(Debug, Clone)]
struct Phase {
    p50: f64,
    p99: f64,
    ok: u64,
    errors: u64,
    /// CPU seconds in the measured window: moatd (all nodes), Valkey, PostgreSQL.
    moatd_cpu: f64,
    valkey_cpu: f64,
    postgres_cpu: f64,
    /// Scripts Valkey ran (EVALSHA/EVAL) in the measured window.
    valkey_calls: u64,
    /// Round trips the nodes report (`moat_cluster_round_trips_total`) in the measured window.
    round_trips: f64,
}

impl Phase {
    fn per_request(&self, v: f64) -> f64 {
        if self.ok == 0 {
            0.0
        } else {
            v / self.ok as f64
        }
    }
}

const CHAT: &str = "/v1/chat/completions";
const SECRET: &str = "moat-bench cluster secret";

pub fn run(settings: &Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(crate::measure::until_interrupted(run_async(settings)))
}

fn config(upstream: std::net::SocketAddr, store: &str, cluster: Option<&str>, secret: &Path) -> String {
    let mut text = processes::moatd_config(upstream);
    text.push_str(&format!(
        "[store]\nurl = \"{store}\"\nsecret_file = \"{}\"\n[audit]\nenabled = false\n",
        secret.display()
    ));
    if let Some(url) = cluster {
        text.push_str(&format!("[cluster]\nurl = \"{url}\"\n"));
    }
    text
}

async fn start_node(
    moatd: &Path,
    scratch: &Scratch,
    name: &str,
    config_text: &str,
) -> anyhow::Result<Server> {
    let config = scratch.dir.join(format!("{name}.toml"));
    std::fs::write(&config, config_text).with_context(|| format!("writing {}", config.display()))?;
    let addr = free_port()?;
    let mut cmd = Command::new(moatd);
    cmd.args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", &addr.to_string()])
        .env("MOAT_LOG", "warn")
        .env("MOAT_SECRET", SECRET)
        .env("XDG_DATA_HOME", scratch.dir.join(format!("data-{name}")));
    let mut server = spawn("moatd", cmd, scratch.dir.join(format!("{name}.log")), addr)?;
    server.wait_ready(&Target::new(addr, "/health"), None).await?;
    Ok(server)
}

fn create_key(moatd: &Path, scratch: &Scratch, node: &str) -> anyhow::Result<String> {
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
        .arg(scratch.dir.join(format!("{node}.toml")))
        .env("MOAT_SECRET", SECRET)
        .env("XDG_DATA_HOME", scratch.dir.join(format!("data-{node}")))
        .output()
        .context("running moatd keys create")?;
    if !out.status.success() {
        bail!("moatd keys create: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Scripts Valkey has run (`calls=` of EVALSHA and EVAL in `INFO commandstats`).
fn valkey_calls(valkey: &moat_testkit::Valkey) -> u64 {
    valkey
        .cli(&["INFO", "commandstats"])
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum()
}

/// The round trips to Valkey a node has counted, all operations together.
async fn round_trips(node: std::net::SocketAddr) -> f64 {
    let Ok((_, body)) = crate::client::probe(&Target::new(node, "/metrics"), None).await else {
        return 0.0;
    };
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with("moat_cluster_round_trips_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Rig<'a> {
    settings: &'a Settings,
    valkey: &'a moat_testkit::Valkey,
    postgres: Option<u32>,
}

impl Rig<'_> {
    /// Loads `targets` together (the rate split evenly) and samples CPU and Valkey around the
    /// measured window.
    async fn phase(&self, targets: &[Target], moatd_pids: &[u32]) -> anyhow::Result<Phase> {
        let nodes: Vec<std::net::SocketAddr> = targets
            .iter()
            .filter(|t| t.auth.is_some())
            .map(|t| t.addr)
            .collect();
        let trips = || async {
            let mut sum = 0.0;
            for n in &nodes {
                sum += round_trips(*n).await;
            }
            sum
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let share = (self.settings.rate / targets.len() as u32).max(1);
        let specs: Vec<LoadSpec> = targets
            .iter()
            .map(|t| LoadSpec {
                target: t.clone(),
                body: chat_body(if t.auth.is_some() { "emu/tiny" } else { "tiny" }),
                rate: share,
                warmup: self.settings.warmup,
                duration: self.settings.duration,
                connections: (self.settings.connections / targets.len()).max(1),
                max_in_flight: self.settings.max_in_flight,
            })
            .collect();
        let cpu = |pids: &[u32]| -> f64 {
            pids.iter()
                .filter_map(|p| procstat::tree_cpu_seconds(*p).ok())
                .sum()
        };
        let pg = self.postgres.into_iter().collect::<Vec<_>>();
        let vk = self.valkey.pid().into_iter().collect::<Vec<_>>();
        let sample = async {
            tokio::time::sleep(self.settings.warmup + Duration::from_millis(20)).await;
            let before = (
                cpu(moatd_pids),
                cpu(&vk),
                cpu(&pg),
                valkey_calls(self.valkey),
                trips().await,
            );
            tokio::time::sleep(self.settings.duration).await;
            let after = (
                cpu(moatd_pids),
                cpu(&vk),
                cpu(&pg),
                valkey_calls(self.valkey),
                trips().await,
            );
            (
                after.0 - before.0,
                after.1 - before.1,
                after.2 - before.2,
                after.3 - before.3,
                after.4 - before.4,
            )
        };
        let (loads, (moatd_cpu, valkey_cpu, postgres_cpu, valkey_calls, round_trips)) = tokio::join!(
            futures_util::future::join_all(specs.iter().map(load::run)),
            sample
        );
        let mut latency: Histogram<u64> = load::new_histogram()?;
        let (mut ok, mut errors) = (0, 0);
        for r in loads {
            let r = r?;
            latency.add(&r.latency).context("merging histograms")?;
            ok += r.ok;
            errors += r.errors.total();
        }
        Ok(Phase {
            p50: latency.value_at_quantile(0.5) as f64,
            p99: latency.value_at_quantile(0.99) as f64,
            ok,
            errors,
            moatd_cpu,
            valkey_cpu,
            postgres_cpu,
            valkey_calls,
            round_trips,
        })
    }
}

async fn run_async(settings: &Settings) -> anyhow::Result<()> {
    if !settings.moatd.is_file() {
        bail!(
            "moatd not found at {}; build it with `cargo build --release -p moatd -p moat-bench`",
            settings.moatd.display()
        );
    }
    let scratch = Scratch::new()?;
    let emulator = processes::start_emulator(&scratch, chat_body("tiny")).await?;
    let postgres = tokio::task::spawn_blocking(moat_testkit::Postgres::start)
        .await?
        .context("starting PostgreSQL (Debian's postgresql package)")?;
    let valkey = moat_testkit::Valkey::start().context("starting Valkey or Redis")?;
    let secret = scratch.dir.join("secret");
    let sqlite = format!("sqlite://{}", scratch.dir.join("single.db").display());
    let single_cfg = config(emulator.addr, &sqlite, None, &secret);
    let cluster_cfg = config(emulator.addr, &postgres.url(), Some(&valkey.url()), &secret);
    let single = start_node(&settings.moatd, &scratch, "single", &single_cfg).await?;
    let a = start_node(&settings.moatd, &scratch, "a", &cluster_cfg).await?;
    let b = start_node(&settings.moatd, &scratch, "b", &cluster_cfg).await?;
    let single_key = create_key(&settings.moatd, &scratch, "single")?;
    let cluster_key = create_key(&settings.moatd, &scratch, "a")?;
    let with_key = |server: &Server, key: &str| {
        let mut t = Target::new(server.addr, CHAT);
        t.auth = Some(format!("Bearer {key}"));
        t
    };
    let rig = Rig {
        settings,
        valkey: &valkey,
        postgres: postgres.pid(),
    };
    eprintln!(
        "moat-bench cluster: {}/s total, {} run(s), {:?} warm-up + {:?} each",
        settings.rate, settings.runs, settings.warmup, settings.duration
    );
    let mut rows = Vec::new();
    for run in 1..=settings.runs {
        let direct = rig.phase(&[Target::new(emulator.addr, CHAT)], &[]).await?;
        let one = rig
            .phase(&[with_key(&single, &single_key)], &[single.pid()])
            .await?;
        let two = rig
            .phase(
                &[with_key(&a, &cluster_key), with_key(&b, &cluster_key)],
                &[a.pid(), b.pid()],
            )
            .await?;
        eprintln!(
            "run {run}: direct p50 {:.0} p99 {:.0}; single p50 {:.0} p99 {:.0}; cluster p50 {:.0} p99 {:.0} µs; \
             errors {}/{}/{}; Valkey round trips per request {:.2} (scripts run {:.2})",
            direct.p50, direct.p99, one.p50, one.p99, two.p50, two.p99, direct.errors, one.errors, two.errors,
            two.per_request(two.round_trips),
            two.per_request(two.valkey_calls as f64)
        );
        rows.push((direct, one, two));
    }
    let med = |f: &dyn Fn(&(Phase, Phase, Phase)) -> f64| crate::report::median(rows.iter().map(f).collect());
    let added_single_p50 = med(&|r| r.1.p50 - r.0.p50);
    let added_single_p99 = med(&|r| r.1.p99 - r.0.p99);
    let added_cluster_p50 = med(&|r| r.2.p50 - r.0.p50);
    let added_cluster_p99 = med(&|r| r.2.p99 - r.0.p99);
    let extra_p99 = med(&|r| r.2.p99 - r.1.p99);
    let cpu_single = med(&|r| r.1.per_request(r.1.moatd_cpu) * 1e6);
    let cpu_cluster = med(&|r| r.2.per_request(r.2.moatd_cpu) * 1e6);
    let cpu_valkey = med(&|r| r.2.per_request(r.2.valkey_cpu) * 1e6);
    let cpu_pg = med(&|r| r.2.per_request(r.2.postgres_cpu) * 1e6);
    let trips = med(&|r| r.2.per_request(r.2.round_trips));
    let scripts = med(&|r| r.2.per_request(r.2.valkey_calls as f64));
    println!("| path ({}/s total) | added p50 | added p99 | moatd CPU / request | Valkey CPU / request | PostgreSQL CPU / request | Valkey round trips / request |", settings.rate);
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!("| one node, SQLite, limits in memory | {added_single_p50:.0} µs | {added_single_p99:.0} µs | {cpu_single:.0} µs | – | – | 0 |");
    println!("| two nodes, PostgreSQL + Valkey | {added_cluster_p50:.0} µs | {added_cluster_p99:.0} µs | {cpu_cluster:.0} µs | {cpu_valkey:.0} µs | {cpu_pg:.0} µs | {trips:.2} (scripts run: {scripts:.2}) |");
    println!(
        "cluster path vs single node: {extra_p99:+.0} µs at p99 (target ≤ 300 µs): {}",
        if extra_p99 <= 300.0 { "met" } else { "NOT met" }
    );
    if let Some(path) = &settings.out {
        let phase = |p: &Phase| {
            json!({"p50_us": p.p50, "p99_us": p.p99, "ok": p.ok, "errors": p.errors,
            "moatd_cpu_s": p.moatd_cpu, "valkey_cpu_s": p.valkey_cpu, "postgres_cpu_s": p.postgres_cpu,
            "valkey_scripts": p.valkey_calls, "round_trips": p.round_trips})
        };
        let doc = json!({
            "settings": {"rate": settings.rate, "duration_s": settings.duration.as_secs_f64(),
                         "warmup_s": settings.warmup.as_secs_f64(), "runs": settings.runs,
                         "connections": settings.connections,
                         "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
            "runs": rows.iter().map(|(d, s, c)| json!({"direct": phase(d), "single": phase(s), "cluster": phase(c)})).collect::<Vec<_>>(),
            "medians": {"added_p50_us": {"single": added_single_p50, "cluster": added_cluster_p50},
                        "added_p99_us": {"single": added_single_p99, "cluster": added_cluster_p99},
                        "cluster_extra_p99_us": extra_p99,
                        "moatd_cpu_us_per_request": {"single": cpu_single, "cluster": cpu_cluster},
                        "valkey_cpu_us_per_request": cpu_valkey, "postgres_cpu_us_per_request": cpu_pg,
                        "valkey_round_trips_per_request": trips, "valkey_scripts_per_request": scripts},
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    drop((single, a, b, emulator));
    Ok(())
}
