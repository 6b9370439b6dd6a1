#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const COOL: Duration = Duration::from_secs(10);

fn breaker(threshold: u32) -> Breaker {
    Breaker::new(BreakerPolicy {
        failure_threshold: threshold,
        cool_down: COOL,
    })
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

#[test]
fn starts_healthy_and_admits() {
    let mut b = breaker(3);
    assert_eq!(b.state(), State::Healthy);
    assert!(b.admit(Instant::now()));
    assert_eq!(b.state(), State::Healthy);
}

#[test]
fn opens_after_threshold_consecutive_failures_only() {
    let t0 = Instant::now();
    let mut b = breaker(3);
    b.request_failed(t0);
    b.request_failed(t0);
    assert_eq!(b.state(), State::Healthy);
    b.request_succeeded();
    assert_eq!(b.consecutive_failures(), 0);
    b.request_failed(t0);
    b.request_failed(t0);
    assert_eq!(b.state(), State::Healthy);
    b.request_failed(t0);
    assert_eq!(b.state(), State::Unhealthy);
    assert_eq!(b.consecutive_failures(), 3);
}

#[test]
fn open_rejects_until_cool_down_then_one_probe() {
    let t0 = Instant::now();
    let mut b = breaker(1);
    b.request_failed(t0);
    assert!(!b.usable(secs(t0, 9)));
    assert!(!b.admit(secs(t0, 9)));
    assert!(b.usable(secs(t0, 10)));
    assert!(b.admit(secs(t0, 10)));
    assert_eq!(b.state(), State::HalfOpen);
    // The probe is out: nobody else goes.
    assert!(!b.admit(secs(t0, 11)));
    assert!(!b.usable(secs(t0, 11)));
}

#[test]
fn probe_success_closes_and_failure_reopens() {
    let t0 = Instant::now();
    let mut b = breaker(1);
    b.request_failed(t0);
    assert!(b.admit(secs(t0, 10)));
    b.request_succeeded();
    assert_eq!(b.state(), State::Healthy);

    b.request_failed(secs(t0, 20));
    assert!(b.admit(secs(t0, 30)));
    b.request_failed(secs(t0, 31));
    assert_eq!(b.state(), State::Unhealthy);
    assert!(!b.admit(secs(t0, 40)));
    assert!(b.admit(secs(t0, 41)));
}

#[test]
fn a_probe_that_never_reports_expires() {
    let t0 = Instant::now();
    let mut b = breaker(1);
    b.request_failed(t0);
    assert!(b.admit(secs(t0, 10)));
    assert!(!b.admit(secs(t0, 19)));
    assert!(b.admit(secs(t0, 20)));
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn failed_check_opens_at_once_and_successful_check_closes_it() {
    let t0 = Instant::now();
    let mut b = breaker(3);
    b.check_failed(t0);
    assert_eq!(b.state(), State::Unhealthy);
    assert!(!b.admit(secs(t0, 1)));
    b.check_succeeded(secs(t0, 1));
    assert_eq!(b.state(), State::Healthy);
    assert_eq!(b.consecutive_failures(), 0);
}

#[test]
fn successful_check_waits_out_the_cool_down_of_request_failures() {
    let t0 = Instant::now();
    let mut b = breaker(1);
    b.request_failed(t0);
    b.check_succeeded(secs(t0, 5));
    assert_eq!(b.state(), State::Unhealthy);
    b.check_succeeded(secs(t0, 10));
    assert_eq!(b.state(), State::Healthy);
}

#[test]
fn successful_check_closes_half_open() {
    let t0 = Instant::now();
    let mut b = breaker(1);
    b.request_failed(t0);
    assert!(b.admit(secs(t0, 10)));
    b.check_succeeded(secs(t0, 11));
    assert_eq!(b.state(), State::Healthy);
}

#[test]
fn successful_check_does_not_reset_request_failures_while_closed() {
    let t0 = Instant::now();
    let mut b = breaker(2);
    b.request_failed(t0);
    b.check_succeeded(t0);
    b.request_failed(t0);
    assert_eq!(b.state(), State::Unhealthy);
}

#[test]
fn last_resort_failure_while_open_extends_it() {
    let t0 = Instant::now();
    let mut b = breaker(1);
    b.check_failed(t0);
    b.request_failed(secs(t0, 8));
    assert!(!b.usable(secs(t0, 12)));
    assert!(b.usable(secs(t0, 18)));
    // Still opened by a check: the next good check closes it.
    b.check_succeeded(secs(t0, 13));
    assert_eq!(b.state(), State::Healthy);
}

#[test]
fn zero_threshold_acts_as_one() {
    let mut b = breaker(0);
    b.request_failed(Instant::now());
    assert_eq!(b.state(), State::Unhealthy);
}

#[test]
fn state_names() {
    let names: Vec<_> = State::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["healthy", "unhealthy", "half_open"]);
}

#[derive(Debug, Clone)]
enum Event {
    Admit,
    Ok,
    Fail,
    CheckOk,
    CheckFail,
}

fn event() -> impl Strategy<Value = (u64, Event)> {
    (
        0u64..4000,
        prop_oneof![
            Just(Event::Admit),
            Just(Event::Ok),
            Just(Event::Fail),
            Just(Event::CheckOk),
            Just(Event::CheckFail)
        ],
    )
}

proptest! {
    /// Whatever happens, `usable` predicts `admit`, a closed breaker always admits, and while the
    /// breaker is not closed at most one request is admitted per cool-down (no probe stampede).
    #[test]
    fn admission_invariants(threshold in 1u32..5, steps in proptest::collection::vec(event(), 0..200)) {
        let t0 = Instant::now();
        let mut b = breaker(threshold);
        let mut now = t0;
        let mut last_probe: Option<Instant> = None;
        for (advance_ms, ev) in steps {
            now += Duration::from_millis(advance_ms);
            match ev {
                Event::Admit => {
                    let was = b.state();
                    let predicted = b.usable(now);
                    let admitted = b.admit(now);
                    prop_assert_eq!(predicted, admitted);
                    if was == State::Healthy {
                        prop_assert!(admitted);
                    } else if admitted {
                        if let Some(p) = last_probe {
                            prop_assert!(now >= p + COOL);
                        }
                        last_probe = Some(now);
                        prop_assert_eq!(b.state(), State::HalfOpen);
                    }
                }
                Event::Ok => { b.request_succeeded(); last_probe = None; }
                Event::Fail => b.request_failed(now),
                Event::CheckOk => {
                    b.check_succeeded(now);
                    if b.state() == State::Healthy { last_probe = None; }
                }
                Event::CheckFail => b.check_failed(now),
            }
            if b.state() == State::Healthy {
                prop_assert!(b.consecutive_failures() < threshold);
            }
        }
    }
}
