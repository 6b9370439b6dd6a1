//! Metric names, their Prometheus recorder (histogram buckets from the GenAI semantic conventions),
//! and the label guard that keeps every label's set of values bounded.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// `gen_ai.client.operation.duration`: arrival to the last byte sent, in seconds.
pub const OPERATION_DURATION: &str = "gen_ai_client_operation_duration_seconds";
/// `gen_ai.client.token.usage`, with `gen_ai_token_type` = `input` | `output`.
pub const TOKEN_USAGE: &str = "gen_ai_client_token_usage";
/// `gen_ai.server.time_to_first_token`: arrival to the first byte of a successful answer.
pub const TIME_TO_FIRST_TOKEN: &str = "gen_ai_server_time_to_first_token_seconds";
/// `gen_ai.server.time_per_output_token`: after the first, per output token, for streamed answers.
pub const TIME_PER_OUTPUT_TOKEN: &str = "gen_ai_server_time_per_output_token_seconds";

pub const REQUESTS: &str = "moat_requests_total";
pub const REQUESTS_IN_FLIGHT: &str = "moat_requests_in_flight";
pub const STREAMS_IN_FLIGHT: &str = "moat_streams_in_flight";
pub const SPEND: &str = "moat_spend_usd_total";
pub const BUDGET_REMAINING: &str = "moat_budget_remaining_usd";
pub const RETRIES: &str = "moat_upstream_retries_total";
pub const FALLBACKS: &str = "moat_fallbacks_total";
pub const BREAKER_TRANSITIONS: &str = "moat_breaker_transitions_total";
pub const RESPONSE_CACHE: &str = "moat_response_cache_total";
pub const POLICY_DECISIONS: &str = "moat_policy_decisions_total";
pub const PROVIDER_STATE: &str = "moat_provider_state";

/// The label for requests without a team (static keys, open gateways, keys outside any team).
pub const NO_TEAM: &str = "none";
/// The label a value gets once its label already has [`MAX_VALUES`] others.
pub const OTHER: &str = "other";
/// Distinct values one label may take (models and teams) before new ones are folded into `other`.
pub const MAX_VALUES: usize = 200;
/// Longest label value kept; longer ones are folded into `other`.
pub const MAX_VALUE_BYTES: usize = 128;

const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const TOKEN_BUCKETS: [f64; 14] = [
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
const TTFT_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
const TPOT_BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];

/// The process-wide Prometheus recorder, installed on first use (a second gateway in the same process,
/// as in tests, shares it).
pub(crate) fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets: [(&str, &[f64]); 4] = [
                (OPERATION_DURATION, &DURATION_BUCKETS),
                (TOKEN_USAGE, &TOKEN_BUCKETS),
                (TIME_TO_FIRST_TOKEN, &TTFT_BUCKETS),
                (TIME_PER_OUTPUT_TOKEN, &TPOT_BUCKETS),
            ];
            let mut builder = PrometheusBuilder::new();
            for (name, values) in buckets {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(name.to_string()), values)
                    .ok()?;
            }
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// The Prometheus text of every metric.
pub(crate) fn render() -> String {
    let text = prometheus().map(PrometheusHandle::render).unwrap_or_default();
    text.replace(
        &format!("# TYPE {SPEND} gauge"),
        &format!("# TYPE {SPEND} counter"),
    )
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "GenAI operation duration, arrival to last byte"
    );
    describe_histogram!(
        TOKEN_USAGE,
        Unit::Count,
        "Tokens per GenAI request, by gen_ai_token_type"
    );
    describe_histogram!(
        TIME_TO_FIRST_TOKEN,
        Unit::Seconds,
        "Arrival to the first byte of a successful answer"
    );
    describe_histogram!(
        TIME_PER_OUTPUT_TOKEN,
        Unit::Seconds,
        "Per output token after the first, streamed answers"
    );
    describe_counter!(REQUESTS, "HTTP requests by endpoint and status");
    describe_gauge!(
        REQUESTS_IN_FLIGHT,
        "Requests being served (until their last byte)"
    );
    describe_gauge!(STREAMS_IN_FLIGHT, "Streamed answers being relayed");
    describe_counter!(SPEND, "Settled spend in USD by team");
    describe_gauge!(
        BUDGET_REMAINING,
        "What is left of a team's budget in its current window, USD"
    );
    describe_counter!(RETRIES, "Retries of an upstream request, by provider");
    describe_counter!(
        FALLBACKS,
        "Requests that fell back from a provider to the next target"
    );
    describe_counter!(BREAKER_TRANSITIONS, "Circuit breaker state changes, by provider");
    describe_counter!(RESPONSE_CACHE, "Response cache outcomes (hit, miss, bypass)");
}

/// Folds label values into a bounded set: the first [`MAX_VALUES`] distinct values are kept as they
/// are, later ones (and over-long ones) become `other`. One per label that clients can vary.
pub(crate) struct Bounded {
    seen: Mutex<BTreeSet<String>>,
}

impl Bounded {
    pub(crate) const fn new() -> Bounded {
        Bounded {
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    pub(crate) fn label(&self, value: &str) -> String {
        if value.len() > MAX_VALUE_BYTES {
            return OTHER.to_string();
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(value) {
            return value.to_string();
        }
        if seen.len() >= MAX_VALUES {
            return OTHER.to_string();
        }
        seen.insert(value.to_string());
        value.to_string()
    }
}

/// Model names come from clients (with a default provider, any name is forwarded), so they are
/// bounded; teams are made by admins but bounded all the same.
pub(crate) static MODELS: Bounded = Bounded::new();
pub(crate) static TEAMS: Bounded = Bounded::new();

/// The team label for an optional team name.
pub(crate) fn team_label(team: Option<&str>) -> String {
    team.map_or_else(|| NO_TEAM.to_string(), |t| TEAMS.label(t))
}

/// Adds settled spend to `moat_spend_usd_total{team}`.
pub(crate) fn spend(team: Option<&str>, cost_nanos: u64) {
    if cost_nanos == 0 {
        return;
    }
    let usd = cost_nanos as f64 / moat_policy::budget::NANOS_PER_USD as f64;
    // Counters are integers in the `metrics` facade and spend is fractional, so it is kept as a gauge
    // that only ever grows; `render` declares it a counter, which is what it is.
    metrics::gauge!(SPEND, "team" => team_label(team)).increment(usd);
}

/// Sets `moat_budget_remaining_usd{team}`.
pub(crate) fn budget_remaining(team: Option<&str>, remaining_nanos: u64) {
    let usd = remaining_nanos as f64 / moat_policy::budget::NANOS_PER_USD as f64;
    metrics::gauge!(BUDGET_REMAINING, "team" => team_label(team)).set(usd);
}

pub(crate) fn fallback(provider: &str) {
    metrics::counter!(FALLBACKS, "provider" => provider.to_string()).increment(1);
}

pub(crate) fn breaker_transition(provider: &str, from: &'static str, to: &'static str) {
    metrics::counter!(BREAKER_TRANSITIONS, "provider" => provider.to_string(), "from" => from, "to" => to)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_takes_at_most_max_values_and_then_other() {
        let b = Bounded::new();
        for i in 0..MAX_VALUES {
            assert_eq!(b.label(&format!("m{i}")), format!("m{i}"));
        }
        assert_eq!(b.label("one-too-many"), OTHER);
        assert_eq!(b.label("m7"), "m7", "known values keep their label");
        assert_eq!(b.label(&"x".repeat(MAX_VALUE_BYTES + 1)), OTHER);
    }
}
