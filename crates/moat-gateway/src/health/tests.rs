#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use moat_policy::breaker::BreakerPolicy;
use moat_policy::route::Target;
use moat_upstream::{UpstreamError, UpstreamSettings};

use super::*;

const COOL: Duration = Duration::from_secs(10);

fn health(names: &[&str]) -> Health {
    let settings: Vec<(UpstreamSettings, HealthSettings)> = names
        .iter()
        .map(|n| {
            (
                UpstreamSettings::new(*n, "http://127.0.0.1:9/v1"),
                HealthSettings {
                    check: false,
                    interval: Duration::from_secs(5),
                    check_url: "http://127.0.0.1:9/v1/models".into(),
                    breaker: BreakerPolicy {
                        failure_threshold: 2,
                        cool_down: COOL,
                    },
                },
            )
        })
        .collect();
    Health::new(settings.iter().map(|(u, h)| (u, h))).unwrap()
}

fn refused(name: &str) -> UpstreamError {
    UpstreamError::Connect {
        provider: name.into(),
        detail: "connection refused".into(),
    }
}

fn targets(ids: &[usize]) -> Vec<Target> {
    ids.iter()
        .map(|&provider| Target {
            provider,
            model: "m".into(),
        })
        .collect()
}

fn providers_of(t: &[Target]) -> Vec<usize> {
    t.iter().map(|t| t.provider).collect()
}

fn fail(h: &Health, id: usize, now: Instant) {
    let err = refused("x");
    h.request_outcome(id, Some(&err), now);
    h.request_outcome(id, Some(&err), now);
}

fn json(h: &Health, now: Instant) -> serde_json::Value {
    serde_json::to_value(h.report(now)).unwrap()
}

#[test]
fn ready_when_every_provider_is_healthy() {
    let h = health(&["a", "b"]);
    let v = json(&h, Instant::now());
    assert_eq!(v["status"], "ready");
    assert_eq!(v["providers"][0]["name"], "a");
    assert_eq!(v["providers"][0]["state"], "healthy");
    assert_eq!(v["providers"][0]["usable"], true);
    assert_eq!(v["providers"][0]["health_check"], false);
    assert!(v["providers"][0]["last_check"].is_null());
    assert!(v["providers"][0]["last_error"].is_null());
}

#[test]
fn degraded_then_unavailable_then_half_open() {
    let t0 = Instant::now();
    let h = health(&["a", "b"]);
    fail(&h, 0, t0);
    let v = json(&h, t0);
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["providers"][0]["state"], "unhealthy");
    assert_eq!(v["providers"][0]["consecutive_failures"], 2);
    assert_eq!(
        v["providers"][0]["last_error"],
        "provider `x` unreachable: connection refused"
    );
    assert_eq!(v["providers"][1]["state"], "healthy");

    fail(&h, 1, t0);
    assert_eq!(h.report(t0).status, "unavailable");

    // After the cool-down both are usable again (a probe may go), so the gateway is ready...
    let later = t0 + COOL;
    assert_eq!(h.report(later).status, "ready");
    // ...and a request claims the probe of each: half-open, and no longer usable by others.
    let mut plan = targets(&[0, 1]);
    h.filter(&mut plan, later);
    assert_eq!(providers_of(&plan), [0, 1]);
    let v = json(&h, later);
    assert_eq!(v["providers"][0]["state"], "half_open");
    assert_eq!(v["providers"][0]["usable"], false);
    assert_eq!(v["status"], "unavailable");

    h.request_outcome(0, None, later);
    let v = json(&h, later);
    assert_eq!(v["providers"][0]["state"], "healthy");
    assert!(v["providers"][0]["last_error"].is_null());
    assert_eq!(v["status"], "degraded");
}

#[test]
fn no_providers_is_unavailable() {
    assert_eq!(health(&[]).report(Instant::now()).status, "unavailable");
}

#[test]
fn filter_drops_unhealthy_targets_and_keeps_order() {
    let t0 = Instant::now();
    let h = health(&["a", "b", "c"]);
    fail(&h, 1, t0);
    let mut plan = targets(&[0, 1, 2]);
    h.filter(&mut plan, t0);
    assert_eq!(providers_of(&plan), [0, 2]);
    let mut plan = targets(&[1, 2]);
    h.filter(&mut plan, t0);
    assert_eq!(providers_of(&plan), [2]);
}

#[test]
fn filter_keeps_everything_when_nothing_is_usable() {
    let t0 = Instant::now();
    let h = health(&["a", "b"]);
    fail(&h, 0, t0);
    fail(&h, 1, t0);
    let mut plan = targets(&[1, 0]);
    h.filter(&mut plan, t0);
    assert_eq!(providers_of(&plan), [1, 0]);
}

#[test]
fn a_provider_answering_4xx_counts_as_up() {
    let t0 = Instant::now();
    let h = health(&["a"]);
    let err = refused("a");
    h.request_outcome(0, Some(&err), t0);
    h.request_outcome(0, None, t0);
    h.request_outcome(0, Some(&err), t0);
    assert_eq!(json(&h, t0)["providers"][0]["state"], "healthy");
}

#[test]
fn check_outcomes_set_last_check_and_error() {
    let t0 = Instant::now();
    let h = health(&["a"]);
    h.check_outcome(0, Some("provider `a` answered 503".into()), t0);
    let v = json(&h, t0);
    assert_eq!(v["providers"][0]["state"], "unhealthy");
    assert_eq!(
        v["providers"][0]["last_error"],
        "health check: provider `a` answered 503"
    );
    let when = v["providers"][0]["last_check"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(when, &time::format_description::well_known::Rfc3339).is_ok(),
        "{when}"
    );
    h.check_outcome(0, None, t0 + Duration::from_millis(1));
    let v = json(&h, t0);
    assert_eq!(v["providers"][0]["state"], "healthy");
    assert!(v["providers"][0]["last_error"].is_null());
}

#[test]
fn behind_a_healthy_target_a_cooled_down_provider_stays_in_without_claiming_its_probe() {
    let t0 = Instant::now();
    let h = health(&["a", "b"]);
    fail(&h, 1, t0);
    let later = t0 + COOL;
    for _ in 0..3 {
        let mut plan = targets(&[0, 1]);
        h.filter(&mut plan, later);
        assert_eq!(providers_of(&plan), [0, 1]);
    }
    let v = json(&h, later);
    assert_eq!(v["providers"][1]["state"], "unhealthy");
    assert_eq!(v["providers"][1]["usable"], true);
    // Still cooling down: left out.
    let mut plan = targets(&[0, 1]);
    h.filter(&mut plan, t0);
    assert_eq!(providers_of(&plan), [0]);
    // First in the plan: the request claims the probe.
    let mut plan = targets(&[1, 0]);
    h.filter(&mut plan, later);
    assert_eq!(providers_of(&plan), [1, 0]);
    assert_eq!(json(&h, later)["providers"][1]["state"], "half_open");
}
