//! Figures for `compare`: per gateway and rate, medians over runs of what each phase measured, the
//! latency added over the direct path of the same run, and each gateway's sustainable rate.

use serde_json::{json, Value};

use crate::compare::{answering, med, rss_mib, sustained, Settings};
use crate::peers::Peer;
use crate::procstat::Memory;
use crate::report::PhaseStats;

/// Whole answers, or streamed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Stream,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Stream => "stream",
        }
    }
}

/// One measured phase: one path at one rate in one run.
#[derive(Debug, Clone)]
pub struct PhaseRecord {
    pub run: usize,
    pub mode: Mode,
    pub rate: u32,
    /// "direct" or the gateway's label.
    pub path: &'static str,
    pub stats: PhaseStats,
    /// The gateway's resident memory (all its processes) right after the phase.
    pub memory: Option<Memory>,
}

impl PhaseRecord {
    pub fn to_json(&self) -> Value {
        json!({
            "run": self.run, "mode": self.mode.label(), "rate": self.rate, "path": self.path,
            "stats": self.stats.to_json(), "rss_mib": rss_mib(&self.memory),
            "sustained": sustained(&self.stats),
        })
    }
}

/// Combined figures of one gateway at one rate.
#[derive(Debug, Clone)]
pub struct Row {
    pub mode: Mode,
    pub path: &'static str,
    pub rate: u32,
    pub runs: usize,
    pub added_p50: f64,
    pub added_p90: f64,
    pub added_p99: f64,
    pub added_ttfb_p50: f64,
    pub added_ttfb_p99: f64,
    pub added_per_chunk_p50: f64,
    pub errors: u64,
    pub requests: u64,
    pub cpu_cores: f64,
    pub cpu_us_per_request: f64,
    pub rss_mib: f64,
}

/// A gateway's sustainable rate in one mode: the median over runs of the highest rate passed.
#[derive(Debug, Clone)]
pub struct Sustainable {
    pub mode: Mode,
    pub path: &'static str,
    pub rate: f64,
    /// The median over runs of the highest rate answered with < 0.1% errors and p99 < 1 s.
    pub throughput: f64,
    /// True when, in some run, the gateway met the sustainable bar at the top of the ladder: the real
    /// limit is higher.
    pub at_ladder_top: bool,
    /// The same for the throughput limit.
    pub answered_at_top: bool,
}

pub struct Report {
    pub rows: Vec<Row>,
    pub sustainable: Vec<Sustainable>,
    pub unavailable: Vec<(&'static str, String)>,
    chunks: usize,
    duration_s: f64,
}

impl Report {
    pub fn new(settings: &Settings, records: &[PhaseRecord], unavailable: &[(Peer, String)]) -> Report {
        let chunks = settings.stream_chunks;
        let duration_s = settings.duration.as_secs_f64();
        let mut rows = Vec::new();
        let mut sustainable = Vec::new();
        let paths: Vec<&'static str> = std::iter::once("direct")
            .chain(settings.peers.iter().map(|p| p.label()))
            .collect();
        for mode in [Mode::Plain, Mode::Stream] {
            let rates = match mode {
                Mode::Plain => &settings.rates,
                Mode::Stream => &settings.stream_rates,
            };
            for &path in &paths {
                for &rate in rates {
                    if let Some(row) = row(records, mode, path, rate, chunks, duration_s) {
                        rows.push(row);
                    }
                }
                if let Some(s) = sustainable_rate(records, mode, path, rates, settings.runs) {
                    sustainable.push(s);
                }
            }
        }
        Report {
            rows,
            sustainable,
            unavailable: unavailable
                .iter()
                .map(|(p, why)| (p.label(), why.clone()))
                .collect(),
            chunks,
            duration_s,
        }
    }

    fn sustainable_of(&self, mode: Mode, path: &str) -> Option<&Sustainable> {
        self.sustainable.iter().find(|s| s.mode == mode && s.path == path)
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| rate/s | gateway | added p50 / p90 / p99 (µs) | errors / requests | CPU (cores) \
             | CPU per request (µs) | RSS (MiB) |\n|---:|---|---:|---:|---:|---:|---:|\n",
        );
        for r in self
            .rows
            .iter()
            .filter(|r| r.mode == Mode::Plain && r.path != "direct")
        {
            out.push_str(&format!(
                "| {} | {} | {:.0} / {:.0} / {:.0} | {} / {} | {:.2} | {:.0} | {:.1} |\n",
                r.rate,
                r.path,
                r.added_p50,
                r.added_p90,
                r.added_p99,
                r.errors,
                r.requests,
                r.cpu_cores,
                r.cpu_us_per_request,
                r.rss_mib
            ));
        }
        if self.chunks > 0 {
            out.push_str(&format!(
                "\nStreaming, {} chunks per answer:\n\n| rate/s | gateway | added time to first byte p50 / p99 (µs) \
                 | added per chunk p50 (µs) | added total p50 / p99 (µs) | errors / requests |\n\
                 |---:|---|---:|---:|---:|---:|\n",
                self.chunks
            ));
            for r in self
                .rows
                .iter()
                .filter(|r| r.mode == Mode::Stream && r.path != "direct")
            {
                out.push_str(&format!(
                    "| {} | {} | {:.0} / {:.0} | {:.1} | {:.0} / {:.0} | {} / {} |\n",
                    r.rate,
                    r.path,
                    r.added_ttfb_p50,
                    r.added_ttfb_p99,
                    r.added_per_chunk_p50,
                    r.added_p50,
                    r.added_p99,
                    r.errors,
                    r.requests
                ));
            }
        }
        let moatd = self.sustainable_of(Mode::Plain, "moatd").map(|s| s.rate);
        let moatd_most = self.sustainable_of(Mode::Plain, "moatd").map(|s| s.throughput);
        out.push_str(
            "\n| gateway | sustainable rate/s (< 0.1% errors, p99 < 50 ms) | moatd ÷ this \
             | throughput limit/s (< 0.1% errors, p99 < 1 s) | moatd ÷ this |\n\
             |---|---:|---:|---:|---:|\n",
        );
        let ratio = |m: Option<f64>, v: f64| match m {
            Some(m) if v > 0.0 => format!("{:.1}×", m / v),
            _ => String::from("–"),
        };
        for s in self.sustainable.iter().filter(|s| s.mode == Mode::Plain) {
            let top = if s.at_ladder_top { "≥ " } else { "" };
            let most = if s.answered_at_top { "≥ " } else { "" };
            out.push_str(&format!(
                "| {} | {top}{:.0} | {} | {most}{:.0} | {} |\n",
                s.path,
                s.rate,
                ratio(moatd, s.rate),
                s.throughput,
                ratio(moatd_most, s.throughput),
            ));
        }
        for (path, why) in &self.unavailable {
            out.push_str(&format!("| {path} | not measured: {why} | – | – | – |\n"));
        }
        out.push_str(&format!("\n(each phase: {:.0} s measured)\n", self.duration_s));
        out
    }

    pub fn to_json(&self) -> Value {
        json!({
            "rows": self.rows.iter().map(|r| json!({
                "mode": r.mode.label(), "gateway": r.path, "rate": r.rate, "runs": r.runs,
                "added_p50_us": r.added_p50, "added_p90_us": r.added_p90, "added_p99_us": r.added_p99,
                "added_ttfb_p50_us": r.added_ttfb_p50, "added_ttfb_p99_us": r.added_ttfb_p99,
                "added_per_chunk_p50_us": r.added_per_chunk_p50,
                "errors": r.errors, "requests": r.requests, "cpu_cores": r.cpu_cores,
                "cpu_us_per_request": r.cpu_us_per_request, "rss_mib": r.rss_mib,
            })).collect::<Vec<_>>(),
            "sustainable": self.sustainable.iter().map(|s| json!({
                "mode": s.mode.label(), "gateway": s.path, "rate": s.rate, "throughput": s.throughput,
                "at_ladder_top": s.at_ladder_top, "answered_at_top": s.answered_at_top,
            })).collect::<Vec<_>>(),
        })
    }
}

fn row(
    records: &[PhaseRecord],
    mode: Mode,
    path: &'static str,
    rate: u32,
    chunks: usize,
    duration_s: f64,
) -> Option<Row> {
    let mine: Vec<&PhaseRecord> = records
        .iter()
        .filter(|r| r.mode == mode && r.path == path && r.rate == rate)
        .collect();
    if mine.is_empty() {
        return None;
    }
    // Each run's phase minus the direct phase of the same run, rate and mode.
    let pairs: Vec<(&PhaseStats, &PhaseStats)> = mine
        .iter()
        .filter_map(|r| {
            records
                .iter()
                .find(|d| d.mode == mode && d.path == "direct" && d.rate == rate && d.run == r.run)
                .map(|d| (&r.stats, &d.stats))
        })
        // A phase in which nothing succeeded has no latencies to compare.
        .filter(|(g, d)| g.ok > 0 && d.ok > 0)
        .collect();
    let added = |f: fn(&PhaseStats) -> f64| med(pairs.iter().map(|(g, d)| f(g) - f(d)));
    let per_chunk = if chunks > 1 {
        med(pairs
            .iter()
            .map(|(g, d)| ((g.p50 - g.ttfb_p50) - (d.p50 - d.ttfb_p50)) / (chunks - 1) as f64))
    } else {
        f64::NAN
    };
    let errors: u64 = mine.iter().map(|r| r.stats.errors.total()).sum();
    let requests: u64 = mine.iter().map(|r| r.stats.ok + r.stats.errors.total()).sum();
    Some(Row {
        mode,
        path,
        rate,
        runs: mine.len(),
        added_p50: added(|s| s.p50),
        added_p90: added(|s| s.p90),
        added_p99: added(|s| s.p99),
        added_ttfb_p50: added(|s| s.ttfb_p50),
        added_ttfb_p99: added(|s| s.ttfb_p99),
        added_per_chunk_p50: per_chunk,
        errors,
        requests,
        cpu_cores: med(mine.iter().map(|r| r.stats.cpu.gateway / duration_s)),
        cpu_us_per_request: med(mine
            .iter()
            .filter(|r| r.stats.ok > 0)
            .map(|r| r.stats.cpu.gateway / r.stats.ok as f64 * 1e6)),
        rss_mib: med(mine.iter().map(|r| rss_mib(&r.memory))),
    })
}

/// The median over runs of the highest rate a path passed before its first failure in that run.
fn sustainable_rate(
    records: &[PhaseRecord],
    mode: Mode,
    path: &'static str,
    rates: &[u32],
    runs: usize,
) -> Option<Sustainable> {
    let top = rates.iter().copied().max()?;
    let mut best = Vec::new();
    let mut most = Vec::new();
    let (mut at_top, mut answered_at_top) = (false, false);
    for run in 1..=runs {
        let highest = |pass: fn(&PhaseStats) -> bool| {
            let mut passed = 0;
            for &rate in rates {
                let rec = records
                    .iter()
                    .find(|r| r.run == run && r.mode == mode && r.path == path && r.rate == rate);
                match rec {
                    Some(r) if pass(&r.stats) => passed = rate,
                    _ => break,
                }
            }
            passed
        };
        let (passed, answered) = (highest(sustained), highest(answering));
        at_top |= passed == top;
        answered_at_top |= answered == top;
        if records
            .iter()
            .any(|r| r.run == run && r.mode == mode && r.path == path)
        {
            best.push(f64::from(passed));
            most.push(f64::from(answered));
        }
    }
    if best.is_empty() {
        return None;
    }
    Some(Sustainable {
        mode,
        path,
        rate: med(best),
        throughput: med(most),
        at_ladder_top: at_top,
        answered_at_top,
    })
}
