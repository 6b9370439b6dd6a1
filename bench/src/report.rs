//! Turning load results into figures: per-run records, medians over runs, the markdown table printed
//! to stdout and the JSON written by `--out`.

use serde_json::{json, Map, Value};

use crate::load::{Errors, LoadResult};
use crate::procstat::Memory;

/// The moatd overhead this project aims for at 5,000 requests/s on the reference machine.
pub const TARGET_ADDED_P50_US: f64 = 50.0;
pub const TARGET_ADDED_P99_US: f64 = 1000.0;

/// CPU time the three processes on the box used during one phase's measured window, in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    /// The gateway under test (moatd, or the pass-through proxy).
    pub gateway: f64,
    pub emulator: f64,
    /// The load generator itself (this process).
    pub bench: f64,
    /// Every other process on the machine (builds, daemons): a check that the box was quiet.
    pub other: f64,
    /// Time the hypervisor took our CPUs away (other virtual machines on the host).
    pub steal: f64,
}

impl CpuUse {
    /// CPU time taken from the benchmark by anything else: other processes and the hypervisor.
    pub fn interference(&self) -> f64 {
        self.other + self.steal
    }
}

/// The figures of one load phase (direct or through the gateway), latencies in µs.
#[derive(Debug, Clone)]
pub struct PhaseStats {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    /// Time to the first response body bytes (the first chunk of a stream).
    pub ttfb_p50: f64,
    pub ttfb_p99: f64,
    pub lag_p50: f64,
    pub lag_p99: f64,
    pub achieved_rate: f64,
    pub ok: u64,
    pub errors: Errors,
    pub cpu: CpuUse,
}

impl PhaseStats {
    pub fn new(result: &LoadResult, cpu: CpuUse) -> PhaseStats {
        let q = |p: f64| result.latency.value_at_quantile(p) as f64;
        PhaseStats {
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: result.latency.max() as f64,
            ttfb_p50: result.ttfb.value_at_quantile(0.50) as f64,
            ttfb_p99: result.ttfb.value_at_quantile(0.99) as f64,
            lag_p50: result.lag.value_at_quantile(0.50) as f64,
            lag_p99: result.lag.value_at_quantile(0.99) as f64,
            achieved_rate: result.achieved_rate,
            ok: result.ok,
            errors: result.errors,
            cpu,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ttfb_p50_us": self.ttfb_p50, "ttfb_p99_us": self.ttfb_p99,
            "p50_us": self.p50, "p90_us": self.p90, "p99_us": self.p99, "max_us": self.max,
            "pacer_lag_p50_us": self.lag_p50, "pacer_lag_p99_us": self.lag_p99,
            "achieved_rate": self.achieved_rate, "ok": self.ok,
            "errors": {"status": self.errors.status, "transport": self.errors.transport,
                       "overload": self.errors.overload},
            "cpu_seconds": {"gateway": self.cpu.gateway, "emulator": self.cpu.emulator,
                            "bench": self.cpu.bench, "other": self.cpu.other, "steal": self.cpu.steal},
        })
    }
}

/// One run at one rate: the direct phase and the gateway phase that followed it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run: usize,
    pub rate: u32,
    pub direct: PhaseStats,
    pub gateway: PhaseStats,
    /// The gateway's memory, read right after its phase.
    pub gateway_memory: Memory,
}

impl RunRecord {
    fn to_json(&self) -> Value {
        json!({
            "run": self.run, "rate": self.rate,
            "direct": self.direct.to_json(), "gateway": self.gateway.to_json(),
            "added_us": {"p50": self.gateway.p50 - self.direct.p50, "p90": self.gateway.p90 - self.direct.p90,
                         "p99": self.gateway.p99 - self.direct.p99},
            "gateway_rss_kib": self.gateway_memory.rss_kib, "gateway_hwm_kib": self.gateway_memory.hwm_kib,
        })
    }
}

/// How a figure is combined over runs: latencies and rates by median, error counts by sum (a median
/// would hide errors that happened in one run only).
#[derive(Clone, Copy)]
enum Combine {
    Median,
    Sum,
}

type Figure = (&'static str, Combine, fn(&RunRecord) -> f64);

/// Every figure reported per rate. "added" is taken per run (gateway − direct of the same run) before
/// the median, so drift between runs cancels.
const FIGURES: &[Figure] = &[
    ("direct_p50_us", Combine::Median, |r| r.direct.p50),
    ("direct_p90_us", Combine::Median, |r| r.direct.p90),
    ("direct_p99_us", Combine::Median, |r| r.direct.p99),
    ("direct_max_us", Combine::Median, |r| r.direct.max),
    ("gateway_p50_us", Combine::Median, |r| r.gateway.p50),
    ("gateway_p90_us", Combine::Median, |r| r.gateway.p90),
    ("gateway_p99_us", Combine::Median, |r| r.gateway.p99),
    ("gateway_max_us", Combine::Median, |r| r.gateway.max),
    ("added_p50_us", Combine::Median, |r| r.gateway.p50 - r.direct.p50),
    ("added_p90_us", Combine::Median, |r| r.gateway.p90 - r.direct.p90),
    ("added_p99_us", Combine::Median, |r| r.gateway.p99 - r.direct.p99),
    ("direct_achieved_rate", Combine::Median, |r| {
        r.direct.achieved_rate
    }),
    ("gateway_achieved_rate", Combine::Median, |r| {
        r.gateway.achieved_rate
    }),
    ("direct_errors", Combine::Sum, |r| r.direct.errors.total() as f64),
    ("gateway_errors", Combine::Sum, |r| {
        r.gateway.errors.total() as f64
    }),
    ("gateway_cpu_s", Combine::Median, |r| r.gateway.cpu.gateway),
    ("gateway_rss_mib", Combine::Median, |r| {
        r.gateway_memory.rss_kib as f64 / 1024.0
    }),
    ("gateway_hwm_mib", Combine::Median, |r| {
        r.gateway_memory.hwm_kib as f64 / 1024.0
    }),
    ("direct_pacer_lag_p50_us", Combine::Median, |r| r.direct.lag_p50),
    ("direct_pacer_lag_p99_us", Combine::Median, |r| r.direct.lag_p99),
    ("gateway_pacer_lag_p50_us", Combine::Median, |r| r.gateway.lag_p50),
    ("gateway_pacer_lag_p99_us", Combine::Median, |r| r.gateway.lag_p99),
    ("emulator_cpu_direct_s", Combine::Median, |r| {
        r.direct.cpu.emulator
    }),
    ("emulator_cpu_gateway_s", Combine::Median, |r| {
        r.gateway.cpu.emulator
    }),
    ("bench_cpu_direct_s", Combine::Median, |r| r.direct.cpu.bench),
    ("bench_cpu_gateway_s", Combine::Median, |r| r.gateway.cpu.bench),
    ("other_cpu_direct_s", Combine::Median, |r| r.direct.cpu.other),
    ("other_cpu_gateway_s", Combine::Median, |r| r.gateway.cpu.other),
    ("steal_direct_s", Combine::Median, |r| r.direct.cpu.steal),
    ("steal_gateway_s", Combine::Median, |r| r.gateway.cpu.steal),
];

pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The combined figures of one rate.
pub struct Summary {
    pub rate: u32,
    pub runs: usize,
    values: Vec<(&'static str, f64)>,
}

impl Summary {
    pub fn get(&self, name: &str) -> f64 {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(f64::NAN, |(_, v)| *v)
    }
}

/// Groups the records by rate (in the order rates were given) and combines each figure.
pub fn summarize(records: &[RunRecord], rates: &[u32]) -> Vec<Summary> {
    rates
        .iter()
        .map(|&rate| {
            let of_rate: Vec<&RunRecord> = records.iter().filter(|r| r.rate == rate).collect();
            let values = FIGURES
                .iter()
                .map(|(name, combine, get)| {
                    let each: Vec<f64> = of_rate.iter().map(|r| get(r)).collect();
                    let v = match combine {
                        Combine::Median => median(each),
                        Combine::Sum => each.iter().sum(),
                    };
                    (*name, v)
                })
                .collect();
            Summary {
                rate,
                runs: of_rate.len(),
                values,
            }
        })
        .collect()
}

fn us(v: f64) -> String {
    format!("{v:.0}")
}

/// The markdown tables printed at the end of a run.
pub fn markdown(summaries: &[Summary], gw: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "| rate/s | achieved direct / {gw} | direct p50 / p90 / p99 / max (µs) \
         | {gw} p50 / p90 / p99 / max (µs) | added p50 / p90 / p99 (µs) | errors direct / {gw} \
         | {gw} CPU (s) | {gw} RSS / peak (MiB) |\n",
    ));
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in summaries {
        out.push_str(&format!(
            "| {} | {:.0} / {:.0} | {} / {} / {} / {} | {} / {} / {} / {} | {} / {} / {} | {} / {} \
             | {:.2} | {:.1} / {:.1} |\n",
            s.rate,
            s.get("direct_achieved_rate"),
            s.get("gateway_achieved_rate"),
            us(s.get("direct_p50_us")),
            us(s.get("direct_p90_us")),
            us(s.get("direct_p99_us")),
            us(s.get("direct_max_us")),
            us(s.get("gateway_p50_us")),
            us(s.get("gateway_p90_us")),
            us(s.get("gateway_p99_us")),
            us(s.get("gateway_max_us")),
            us(s.get("added_p50_us")),
            us(s.get("added_p90_us")),
            us(s.get("added_p99_us")),
            s.get("direct_errors"),
            s.get("gateway_errors"),
            s.get("gateway_cpu_s"),
            s.get("gateway_rss_mib"),
            s.get("gateway_hwm_mib"),
        ));
    }
    out.push_str(&format!(
        "\n| rate/s | pacer lag p50 / p99, direct (µs) | pacer lag p50 / p99, {gw} (µs) \
         | emulator CPU direct / {gw} (s) | generator CPU direct / {gw} (s) \
         | other processes' CPU direct / {gw} (s) | steal direct / {gw} (s) |\n",
    ));
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|\n");
    for s in summaries {
        out.push_str(&format!(
            "| {} | {} / {} | {} / {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |\n",
            s.rate,
            us(s.get("direct_pacer_lag_p50_us")),
            us(s.get("direct_pacer_lag_p99_us")),
            us(s.get("gateway_pacer_lag_p50_us")),
            us(s.get("gateway_pacer_lag_p99_us")),
            s.get("emulator_cpu_direct_s"),
            s.get("emulator_cpu_gateway_s"),
            s.get("bench_cpu_direct_s"),
            s.get("bench_cpu_gateway_s"),
            s.get("other_cpu_direct_s"),
            s.get("other_cpu_gateway_s"),
            s.get("steal_direct_s"),
            s.get("steal_gateway_s"),
        ));
    }
    out
}

/// One line per rate comparing the added latency with the target.
pub fn verdicts(summaries: &[Summary]) -> String {
    let mut out = String::new();
    for s in summaries {
        let (p50, p99) = (s.get("added_p50_us"), s.get("added_p99_us"));
        let mark = |v: f64, target: f64| if v <= target { "met" } else { "missed" };
        out.push_str(&format!(
            "{}/s: added p50 {p50:.0} µs (target ≤ {TARGET_ADDED_P50_US:.0}: {}), added p99 {p99:.0} µs \
             (target ≤ {TARGET_ADDED_P99_US:.0}: {}) — median of {} run(s)\n",
            s.rate,
            mark(p50, TARGET_ADDED_P50_US),
            mark(p99, TARGET_ADDED_P99_US),
            s.runs,
        ));
    }
    out
}

/// The `--out` document: the settings, every run, and the combined figures.
pub fn to_json(settings: Value, records: &[RunRecord], summaries: &[Summary]) -> Value {
    let combined: Vec<Value> = summaries
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("rate".into(), json!(s.rate));
            m.insert("runs".into(), json!(s.runs));
            for (name, v) in &s.values {
                m.insert((*name).into(), json!(v));
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "settings": settings,
        "target": {"rate": 5000, "added_p50_us": TARGET_ADDED_P50_US, "added_p99_us": TARGET_ADDED_P99_US},
        "summary": combined,
        "runs": records.iter().map(RunRecord::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
