//! Strategy behaviour: shares, ties, exploration, caps, and property tests over any input.

use super::Strategy;
use super::*;
use proptest::prelude::*;
use proptest::strategy::Strategy as Gen;

fn first_counts(strategy: Strategy, c: &[Candidate], tuning: &Tuning, n: u64) -> Vec<u64> {
    let mut counts = vec![0; c.len()];
    let mut seed = SplitMix(7);
    for _ in 0..n {
        if let Some(&first) = rank(strategy, c, tuning, seed.next()).first() {
            counts[first] += 1;
        }
    }
    counts
}

fn weighted(w: &[u32]) -> Vec<Candidate> {
    w.iter()
        .map(|&weight| Candidate {
            weight,
            ..Candidate::default()
        })
        .collect()
}

#[test]
fn names_round_trip() {
    for s in Strategy::ALL {
        assert_eq!(Strategy::parse(s.as_str()), Some(s));
    }
    assert_eq!(Strategy::parse("round_robin"), None);
    assert_eq!(Strategy::default(), Strategy::Order);
}

#[test]
fn order_keeps_the_route() {
    let c = weighted(&[1, 1, 1]);
    assert_eq!(rank(Strategy::Order, &c, &Tuning::default(), 99), vec![0, 1, 2]);
}

#[test]
fn weighted_shares_follow_the_weights() {
    let counts = first_counts(Strategy::Weighted, &weighted(&[3, 1]), &Tuning::default(), 20_000);
    let share = counts[0] as f64 / 20_000.0;
    assert!((share - 0.75).abs() < 0.02, "{counts:?}");
}

#[test]
fn a_zero_weight_is_a_fallback_only() {
    let c = weighted(&[0, 5]);
    for r in 0..200 {
        assert_eq!(rank(Strategy::Weighted, &c, &Tuning::default(), r), vec![1, 0]);
    }
}

#[test]
fn least_busy_picks_the_idlest_and_shares_ties() {
    let mut c = weighted(&[1, 1, 1]);
    c[0].in_flight = 4;
    c[1].in_flight = 0;
    c[2].in_flight = 2;
    assert_eq!(
        rank(Strategy::LeastBusy, &c, &Tuning::default(), 5),
        vec![1, 2, 0]
    );
    c[0].in_flight = 0;
    let counts = first_counts(Strategy::LeastBusy, &c, &Tuning::default(), 2000);
    assert_eq!(counts[2], 0);
    assert!(counts[0] > 800 && counts[1] > 800, "{counts:?}");
}

#[test]
fn latency_prefers_the_fast_explores_a_little_and_measures_the_unmeasured() {
    let mut c = weighted(&[1, 1]);
    c[0].latency_ms = Some(200.0);
    c[1].latency_ms = Some(10.0);
    let tuning = Tuning::default();
    let counts = first_counts(Strategy::Latency, &c, &tuning, 10_000);
    // Exploration sends ~10% to a random target: about 5% land on the slow one.
    let slow = counts[0] as f64 / 10_000.0;
    assert!(slow > 0.02 && slow < 0.09, "{counts:?}");
    // No exploration: never the slow one.
    let none = Tuning {
        exploration: 0.0,
        ..tuning
    };
    assert_eq!(first_counts(Strategy::Latency, &c, &none, 1000)[0], 0);
    // Within the tolerance (5 ms absolute here): shared.
    c[0].latency_ms = Some(12.0);
    let counts = first_counts(Strategy::Latency, &c, &none, 2000);
    assert!(counts[0] > 800 && counts[1] > 800, "{counts:?}");
    // A target never measured goes first.
    c[0].latency_ms = None;
    assert_eq!(first_counts(Strategy::Latency, &c, &none, 100)[0], 100);
}

#[test]
fn cost_picks_the_cheapest_and_puts_unpriced_last() {
    let mut c = weighted(&[1, 1, 1, 1]);
    c[0].cost = None;
    c[1].cost = Some(300);
    c[2].cost = Some(100);
    c[3].cost = Some(100);
    assert_eq!(rank(Strategy::Cost, &c, &Tuning::default(), 1), vec![2, 3, 1, 0]);
}

#[test]
fn capped_targets_are_skipped_by_every_strategy() {
    let mut c = weighted(&[5, 1]);
    c[0].capped = true;
    for s in Strategy::ALL {
        assert_eq!(rank(s, &c, &Tuning::default(), 3), vec![1], "{s:?}");
    }
    c[1].capped = true;
    assert!(rank(Strategy::Weighted, &c, &Tuning::default(), 3).is_empty());
}

#[test]
fn ewma_moves_toward_samples_and_ignores_nonsense() {
    let mut e = Ewma::default();
    assert_eq!(e.value(), None);
    e.observe(100.0);
    assert_eq!(e.value(), Some(100.0));
    e.observe(f64::NAN);
    e.observe(-1.0);
    assert_eq!(e.value(), Some(100.0));
    for _ in 0..20 {
        e.observe(10.0);
    }
    assert!(e.value().is_some_and(|v| v < 11.0));
}

fn candidate() -> impl Gen<Value = Candidate> {
    (
        0u32..10,
        0u32..8,
        proptest::option::of(0.0f64..1000.0),
        proptest::option::of(0u64..1000),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(weight, in_flight, latency_ms, cost, capped)| Candidate {
            weight,
            in_flight,
            latency_ms,
            cost,
            capped,
        })
}

proptest! {
    /// Every strategy answers a permutation of exactly the uncapped targets.
    #[test]
    fn the_answer_is_the_uncapped_targets_once_each(
        c in proptest::collection::vec(candidate(), 0..12),
        random in any::<u64>(),
        explore in 0.0f64..1.0,
    ) {
        let tuning = Tuning { exploration: explore, ..Tuning::default() };
        for s in Strategy::ALL {
            let mut got = rank(s, &c, &tuning, random);
            got.sort_unstable();
            let want: Vec<usize> = (0..c.len()).filter(|&i| !c[i].capped).collect();
            prop_assert_eq!(got, want);
        }
    }

    /// `least_busy` never puts a busier target before an idler one; `cost` never puts a dearer one
    /// before a cheaper one.
    #[test]
    fn least_busy_and_cost_are_monotonic(c in proptest::collection::vec(candidate(), 0..12), random in any::<u64>()) {
        let got = rank(Strategy::LeastBusy, &c, &Tuning::default(), random);
        for w in got.windows(2) {
            prop_assert!(c[w[0]].in_flight <= c[w[1]].in_flight);
        }
        let got = rank(Strategy::Cost, &c, &Tuning::default(), random);
        for w in got.windows(2) {
            if let (Some(a), Some(b)) = (c[w[0]].cost, c[w[1]].cost) {
                prop_assert!(a <= b);
            }
            if c[w[0]].cost.is_none() {
                prop_assert!(c[w[1]].cost.is_none());
            }
        }
    }

    /// Without exploration, the first `latency` choice is never slower than the fastest measured
    /// target by more than the tolerance, and an unmeasured target always wins.
    #[test]
    fn latency_choice_is_near_the_fastest(c in proptest::collection::vec(candidate(), 1..12), random in any::<u64>()) {
        let tuning = Tuning { exploration: 0.0, ..Tuning::default() };
        let got = rank(Strategy::Latency, &c, &tuning, random);
        let open: Vec<&Candidate> = c.iter().filter(|x| !x.capped).collect();
        if let Some(&first) = got.first() {
            if open.iter().any(|x| x.latency_ms.is_none()) {
                prop_assert!(c[first].latency_ms.is_none());
            } else {
                let best = open.iter().filter_map(|x| x.latency_ms).fold(f64::INFINITY, f64::min);
                let limit = (best * (1.0 + tuning.tolerance)).max(best + tuning.tolerance_ms);
                prop_assert!(c[first].latency_ms.is_some_and(|l| l <= limit));
            }
        }
    }

    /// A positive weight is chosen first with a share close to its weight's share.
    #[test]
    fn weighted_first_choice_tracks_weights(w in proptest::collection::vec(1u32..10, 2..5)) {
        let c = weighted(&w);
        let n = 4000u64;
        let counts = first_counts(Strategy::Weighted, &c, &Tuning::default(), n);
        let total: u32 = w.iter().sum();
        for (i, &wi) in w.iter().enumerate() {
            let expect = f64::from(wi) / f64::from(total);
            let got = counts[i] as f64 / n as f64;
            prop_assert!((got - expect).abs() < 0.05, "{:?} {:?}", w, counts);
        }
    }
}
