//! `moat-bench`: the benchmark harness. `emulator` serves the upstream emulator as its own process;
//! `gateway` measures the latency moatd adds in front of it under open-loop load; `passthrough` is a
//! bare proxy that can stand in for moatd to show what the extra hop alone costs.

mod client;
mod cluster;
mod compare;
mod gateway;
mod load;
mod measure;
mod passthrough;
mod peers;
mod processes;
mod procstat;
mod report;
mod soak;
mod summary;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "moat-bench",
    about = "Benchmarks for moat: the latency moatd adds, under open-loop load against an upstream emulator.",
    after_help = "Example:
  cargo build --release -p moatd -p moat-bench
  target/release/moat-bench gateway --rates 1000,5000 --duration 10s --runs 3 --out bench.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the upstream emulator (OpenAI-compatible, deterministic answers) until killed.
    Emulator {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Serve a bare pass-through proxy to UPSTREAM (the floor for an extra hop) until killed.
    Passthrough {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Where to forward every request.
        #[arg(long)]
        upstream: SocketAddr,
    },
    /// Measure moatd's added latency: the same load directly to the emulator and through moatd.
    Gateway(GatewayArgs),
    /// Compare moatd with nginx, Portkey and LiteLLM in one run: added latency per rate, sustainable
    /// rate, CPU and memory, streaming first byte and per-chunk cost.
    #[command(
        after_help = "Example (what docs/BENCHMARKS.md reports; bench/run.sh runs it):
  cargo build --release -p moatd -p moat-bench
  target/release/moat-bench compare --install --runs 3 --out bench-compare.json
  python3 bench/plot.py bench-compare.json docs/bench-compare.png"
    )]
    Compare(CompareArgs),
    /// Hold many streams open through moatd at once: RSS per open stream, file descriptors before,
    /// during and after. Raise the descriptor limit first (`ulimit -n`); bench/soak.sh does.
    #[command(after_help = "Example (what docs/BENCHMARKS.md reports):
  cargo build --release -p moatd -p moat-bench
  bench/soak.sh --streams 10000")]
    Soak(SoakArgs),
    /// Measure what a two-node cluster (PostgreSQL + Valkey) adds over one node on SQLite, with a
    /// budgeted virtual key on every request: added latency, CPU and Valkey commands per request.
    #[command(after_help = "Example (what docs/BENCHMARKS.md reports):
  cargo build --release -p moatd -p moat-bench
  target/release/moat-bench cluster --rate 5000 --duration 5s --runs 3 --out bench-cluster.json")]
    Cluster(ClusterArgs),
}

#[derive(Debug, Args)]
struct SoakArgs {
    /// Streams held open at once, each on its own connection.
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Streams being opened at the same time.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// How long all streams stay open before moatd is measured.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    hold: Duration,
    /// Open-all-then-close-all rounds on the same moatd.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// The moatd binary to test.
    #[arg(long, default_value = "target/release/moatd")]
    moatd: PathBuf,
}

impl SoakArgs {
    fn settings(self) -> anyhow::Result<soak::Settings> {
        if self.streams == 0 || self.concurrency == 0 || self.rounds == 0 {
            bail!("--streams, --concurrency and --rounds must be positive");
        }
        // moatd and this process (client and emulator) need about one descriptor per stream (the
        // provider connections are few, over HTTP/2); both inherit this process's limit.
        let need = self.streams as u64 + 512;
        match soak::fd_limit() {
            Some(limit) if limit < need => bail!(
                "the open-file limit is {limit}; {} streams need about {need}: run `ulimit -n {need}` first (bench/soak.sh does)",
                self.streams
            ),
            _ => {}
        }
        Ok(soak::Settings {
            streams: self.streams,
            concurrency: self.concurrency,
            hold: self.hold,
            rounds: self.rounds,
            moatd: self.moatd,
        })
    }
}

#[derive(Debug, Args)]
struct ClusterArgs {
    /// Total requests per second (the cluster's two nodes take half each).
    #[arg(long, default_value_t = 5000)]
    rate: u32,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
    #[arg(long, default_value = "target/release/moatd")]
    moatd: PathBuf,
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

impl ClusterArgs {
    fn settings(self) -> anyhow::Result<cluster::Settings> {
        if self.rate == 0 || self.runs == 0 || self.duration.is_zero() || self.connections < 2 {
            bail!("--rate, --runs and --duration must be positive, --connections at least 2");
        }
        Ok(cluster::Settings {
            rate: self.rate,
            duration: self.duration,
            warmup: self.warmup,
            runs: self.runs,
            connections: self.connections,
            max_in_flight: self.max_in_flight,
            moatd: self.moatd,
            out: self.out,
        })
    }
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// Gateways to compare (each against the same direct path).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "moatd,nginx,portkey,litellm"
    )]
    gateways: Vec<peers::Peer>,
    /// The rate ladder for whole answers, requests per second, ascending.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10,20,50,100,200,500,1000,2000,5000,10000,15000"
    )]
    rates: Vec<u32>,
    /// The rate ladder for streamed answers.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    stream_rates: Vec<u32>,
    /// Chunks per streamed answer (0: skip streaming).
    #[arg(long, default_value_t = 20)]
    stream_chunks: usize,
    /// Measured time per phase.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Load applied before each measured window and not recorded.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Repetitions of the whole ladder; figures are medians over runs.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Keep-alive connections the generator opens per phase.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Requests scheduled while this many are outstanding are counted as "overload" errors instead.
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
    /// The moatd binary to test.
    #[arg(long, default_value = "target/release/moatd")]
    moatd: PathBuf,
    /// Another moatd binary, measured as the `moatd-base` gateway (add it to --gateways): a
    /// before/after pair under the same load, in the same run.
    #[arg(long, value_name = "PATH")]
    moatd_base: Option<PathBuf>,
    /// Where to write every phase's figures and the summary as JSON.
    #[arg(long, value_name = "FILE", default_value = "bench-compare.json")]
    out: PathBuf,
    /// Install missing peers from their registries (apt nginx-light, npm @portkey-ai/gateway, PyPI
    /// litellm[proxy]) into ~/.cache/moat-bench (or $MOAT_BENCH_PEERS).
    #[arg(long)]
    install: bool,
    /// A smoke run to check the harness: 1 s phases, 1 run, two rates.
    #[arg(long)]
    quick: bool,
}

impl CompareArgs {
    fn settings(self) -> anyhow::Result<compare::Settings> {
        let mut s = compare::Settings {
            peers: self.gateways,
            rates: self.rates,
            stream_rates: self.stream_rates,
            stream_chunks: self.stream_chunks,
            duration: self.duration,
            warmup: self.warmup,
            runs: self.runs,
            connections: self.connections,
            max_in_flight: self.max_in_flight,
            moatd: self.moatd,
            moatd_base: self.moatd_base,
            out: self.out,
            install: self.install,
        };
        if self.quick {
            s.duration = Duration::from_secs(1);
            s.warmup = Duration::from_millis(500);
            s.runs = 1;
            s.rates.truncate(2);
            s.stream_rates.truncate(1);
        }
        for ladder in [&s.rates, &s.stream_rates] {
            if ladder.contains(&0) || ladder.windows(2).any(|w| w[0] >= w[1]) {
                bail!("rate ladders must be positive and ascending");
            }
        }
        if s.rates.is_empty() || s.peers.is_empty() {
            bail!("--rates and --gateways need at least one entry");
        }
        if s.duration.is_zero() || s.runs == 0 || s.connections == 0 || s.max_in_flight == 0 {
            bail!("--duration, --runs, --connections and --max-in-flight must be positive");
        }
        Ok(s)
    }
}

#[derive(Debug, Args)]
struct GatewayArgs {
    /// Request rates to test, in requests per second.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    rates: Vec<u32>,
    /// Measured time per phase (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Load applied before each measured window and not recorded.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// How many times to repeat every rate; figures are medians over runs.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Keep-alive connections the generator opens per phase.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Requests scheduled while this many are outstanding are counted as "overload" errors instead.
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
    /// What to put on the gateway path: moatd, or the bare pass-through proxy for comparison.
    #[arg(long, value_enum, default_value = "moatd")]
    subject: gateway::Subject,
    /// On a shared machine: before each run wait up to this long (e.g. 10m) for other processes to go
    /// quiet, and repeat runs that they disturbed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    wait_quiet: Option<Duration>,
    /// The moatd binary to test.
    #[arg(long, default_value = "target/release/moatd")]
    moatd: PathBuf,
    /// Write every run's figures and the medians as JSON to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// A smoke run to check the harness: 2 s per phase, 1 run (overrides --duration and --runs).
    #[arg(long)]
    quick: bool,
    /// Through moatd, authenticate with a virtual key that has a budget (auth + reserve + settle on
    /// every request) instead of the open loopback default.
    #[arg(long)]
    virtual_key: bool,
}

impl GatewayArgs {
    /// Checks what was typed and turns it into settings; touches nothing outside.
    fn settings(self) -> anyhow::Result<gateway::Settings> {
        let (duration, runs) = if self.quick {
            (Duration::from_secs(2), 1)
        } else {
            (self.duration, self.runs)
        };
        let warmup = if self.quick {
            self.warmup.min(Duration::from_secs(1))
        } else {
            self.warmup
        };
        if self.rates.is_empty() || self.rates.contains(&0) {
            bail!("--rates needs one or more positive rates");
        }
        if duration.is_zero() {
            bail!("--duration must be positive");
        }
        if runs == 0 || self.connections == 0 || self.max_in_flight == 0 {
            bail!("--runs, --connections and --max-in-flight must be at least 1");
        }
        Ok(gateway::Settings {
            rates: self.rates,
            duration,
            warmup,
            runs,
            connections: self.connections,
            max_in_flight: self.max_in_flight,
            subject: self.subject,
            wait_quiet: self.wait_quiet,
            moatd: self.moatd,
            out: self.out,
            virtual_key: self.virtual_key,
        })
    }
}

/// Parses "10s", "500ms", "1m" or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("not a duration: {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {text:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("bad duration {text:?}: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Emulator { listen } => emulator(listen),
        Command::Passthrough { listen, upstream } => passthrough::run(listen, upstream),
        Command::Gateway(args) => args.settings().and_then(|s| gateway::run(&s)),
        Command::Compare(args) => args.settings().and_then(|s| compare::run(&s)),
        Command::Soak(args) => args.settings().and_then(|s| soak::run(&s)),
        Command::Cluster(args) => args.settings().and_then(|s| cluster::run(&s)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("moat-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The emulator on a single-threaded runtime: on a small box it should take one core at most, like
/// the generator, and the answers are tiny.
fn emulator(listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime
        .block_on(moat_testkit::serve_forever(
            moat_testkit::EmulatorOptions::default(),
            listen,
        ))
        .with_context(|| format!("serving the emulator on {listen}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn quick_overrides_duration_and_runs() {
        let cli = Cli::try_parse_from(["moat-bench", "gateway", "--quick", "--runs", "5"]).unwrap();
        let Command::Gateway(args) = cli.command else {
            unreachable!()
        };
        let s = args.settings().unwrap();
        assert_eq!(
            (s.duration, s.runs, s.rates.clone()),
            (Duration::from_secs(2), 1, vec![1000, 5000])
        );
    }
}
