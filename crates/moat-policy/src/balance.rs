//! Load balancing over a `[[models]]` route: which of its targets to try first and in what order to
//! fall back, by the route's `strategy`.
//!
//! - `order`: the route as written (moatd's behaviour before strategies existed; the default);
//! - `weighted`: a weighted random draw (`weights`, one per target), then the rest drawn the same way;
//! - `least_busy`: fewest requests in flight first, ties broken at random;
//! - `latency`: the lowest exponentially weighted average time to first byte first; targets within a
//!   tolerance of the fastest are treated as equally fast and drawn at random, targets never measured
//!   go first (so each is measured once), and a small share of requests explores a random target so
//!   a target that has recovered is noticed;
//! - `cost`: the cheapest target for this request by configured prices; targets without a price last.
//!
//! Targets at their rpm/tpm cap ([`crate::caps`]) are left out whatever the strategy. The caller
//! passes one random `u64` per decision; nothing here reads a clock or a random source.
//!
//! ```
//! use moat_policy::balance::{rank, Candidate, Strategy, Tuning};
//!
//! let fast = Candidate { weight: 3, ..Candidate::default() };
//! let slow = Candidate { weight: 1, ..Candidate::default() };
//! let order = rank(Strategy::Weighted, &[fast, slow], &Tuning::default(), 42);
//! assert_eq!(order.len(), 2);
//! // At its cap, a target is skipped.
//! let capped = Candidate { capped: true, ..Candidate::default() };
//! assert_eq!(rank(Strategy::Order, &[capped, slow], &Tuning::default(), 0), vec![1]);
//! ```

use crate::budget::Nanos;

/// A route's strategy (`strategy = "…"` in `[[models]]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    #[default]
    Order,
    Weighted,
    LeastBusy,
    Latency,
    Cost,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::Order,
        Strategy::Weighted,
        Strategy::LeastBusy,
        Strategy::Latency,
        Strategy::Cost,
    ];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Order => "order",
            Strategy::Weighted => "weighted",
            Strategy::LeastBusy => "least_busy",
            Strategy::Latency => "latency",
            Strategy::Cost => "cost",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// One line for `moatd check-config`: what the strategy does.
    pub fn explain(self) -> &'static str {
        match self {
            Strategy::Order => "tries the targets in the order written, falling back down the list",
            Strategy::Weighted => "draws the first target at random in proportion to `weights`",
            Strategy::LeastBusy => "sends to the target with the fewest requests in flight",
            Strategy::Latency => {
                "sends to the target with the lowest average time to first byte (a share explores)"
            }
            Strategy::Cost => "sends to the cheapest target for the request by configured prices",
        }
    }
}

/// What the balancer knows about one target of the route at the moment of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Candidate {
    /// `weighted`: this target's weight (0 = only as a fallback).
    pub weight: u32,
    /// `least_busy`: requests to this target in flight now.
    pub in_flight: u32,
    /// `latency`: the average time to first byte in milliseconds; `None` until measured.
    pub latency_ms: Option<f64>,
    /// `cost`: what this request would cost at this target's price; `None` when it has none.
    pub cost: Option<Nanos>,
    /// At its rpm or tpm cap: left out.
    pub capped: bool,
}

/// Knobs of the `latency` strategy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Share of requests (0..=1) that go to a random target first, so a target that slowed down and
    /// recovered gets measured again.
    pub exploration: f64,
    /// Targets whose average is within this fraction of the fastest count as equally fast...
    pub tolerance: f64,
    /// ...or within this many milliseconds of it (loopback and same-region differences are noise).
    pub tolerance_ms: f64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            exploration: 0.1,
            tolerance: 0.25,
            tolerance_ms: 5.0,
        }
    }
}

/// The targets to try, as indices into `candidates`: the first is the choice, the rest the fallback
/// order. Capped targets are not in it (an empty answer means every target is at its cap).
pub fn rank(strategy: Strategy, candidates: &[Candidate], tuning: &Tuning, random: u64) -> Vec<usize> {
    let mut rng = SplitMix(random);
    let open: Vec<usize> = (0..candidates.len()).filter(|&i| !candidates[i].capped).collect();
    match strategy {
        Strategy::Order => open,
        Strategy::Weighted => weighted(candidates, open, &mut rng),
        Strategy::LeastBusy => sorted_with_random_ties(open, &mut rng, |i| candidates[i].in_flight),
        Strategy::Latency => latency(candidates, open, tuning, &mut rng),
        Strategy::Cost => {
            // Stable sort: equal prices keep the route's order; unpriced targets go last.
            let mut out = open;
            out.sort_by_key(|&i| candidates[i].cost.map_or((1, 0), |c| (0, c)));
            out
        }
    }
}

/// Draws without replacement, each draw in proportion to weight; zero weights come last, in order.
fn weighted(candidates: &[Candidate], mut open: Vec<usize>, rng: &mut SplitMix) -> Vec<usize> {
    let mut out = Vec::with_capacity(open.len());
    loop {
        let total: u64 = open.iter().map(|&i| u64::from(candidates[i].weight)).sum();
        if total == 0 {
            out.extend(open);
            return out;
        }
        let mut pick = rng.below(total);
        let pos = open
            .iter()
            .position(|&i| {
                let w = u64::from(candidates[i].weight);
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .unwrap_or(0);
        out.push(open.remove(pos));
    }
}

/// Ascending by `key`, equal keys in random order (so equally idle targets share the load).
fn sorted_with_random_ties<K: Ord>(
    mut open: Vec<usize>,
    rng: &mut SplitMix,
    key: impl Fn(usize) -> K,
) -> Vec<usize> {
    shuffle(&mut open, rng);
    open.sort_by_key(|&i| key(i));
    open
}

fn latency(
    candidates: &[Candidate],
    mut open: Vec<usize>,
    tuning: &Tuning,
    rng: &mut SplitMix,
) -> Vec<usize> {
    shuffle(&mut open, rng);
    // Never measured first (each gets one sample), then fastest first.
    let key = |i: usize| candidates[i].latency_ms.unwrap_or(-1.0);
    open.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
    let Some(&best) = open.first() else {
        return open;
    };
    if rng.chance(tuning.exploration) && open.len() > 1 {
        let pick = rng.below(open.len() as u64) as usize;
        let chosen = open.remove(pick);
        open.insert(0, chosen);
        return open;
    }
    // Equally fast: every target within the tolerance of the best, drawn at random.
    if let Some(best_ms) = candidates[best].latency_ms {
        let limit = (best_ms * (1.0 + tuning.tolerance)).max(best_ms + tuning.tolerance_ms);
        let near = open
            .iter()
            .take_while(|&&i| candidates[i].latency_ms.is_some_and(|l| l <= limit))
            .count();
        if near > 1 {
            let pick = rng.below(near as u64) as usize;
            let chosen = open.remove(pick);
            open.insert(0, chosen);
        }
    }
    open
}

fn shuffle(v: &mut [usize], rng: &mut SplitMix) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// An exponentially weighted moving average of a latency, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Ewma {
    value: Option<f64>,
}

impl Ewma {
    /// Weight of each new sample: 0.3 forgets a slow spell within about ten requests, yet one odd
    /// sample moves the average by less than a third.
    pub const ALPHA: f64 = 0.3;

    /// Adds one sample (negative or non-finite samples are ignored).
    pub fn observe(&mut self, sample_ms: f64) {
        if !sample_ms.is_finite() || sample_ms < 0.0 {
            return;
        }
        self.value = Some(match self.value {
            None => sample_ms,
            Some(v) => v + Self::ALPHA * (sample_ms - v),
        });
    }

    /// The average, `None` before the first sample.
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

/// A small deterministic generator seeded by the caller's random word (SplitMix64), enough for the
/// few draws one decision needs.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by widening multiplication (bias below 2^-32 for our sizes).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n.max(1))) >> 64) as u64
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

#[cfg(test)]
mod tests;
