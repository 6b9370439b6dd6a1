//! Per-target request and token caps (`rpm`, `tpm` on a provider, per model): the quota a deployment
//! has (an Azure deployment's TPM, a Bedrock model's RPM), kept by moatd so a target at its cap is
//! skipped instead of being sent requests it will refuse with 429.
//!
//! Windows are clock minutes, as for keys' rate limits ([`crate::budget`]): a request counts in the
//! minute it was sent; its tokens are held at the request's estimate when it is sent and corrected
//! to what the provider reported when it settles.
//!
//! ```
//! use moat_policy::caps::{Cap, TargetUse};
//!
//! let cap = Cap { rpm: Some(2), tpm: None };
//! let mut used = TargetUse::default();
//! assert!(used.has_room(&cap, 0, 10));
//! used.start(0, 10);
//! used.start(0, 10);
//! assert!(!used.has_room(&cap, 30, 10)); // two requests this minute: at the cap
//! assert!(used.has_room(&cap, 60, 10)); // a new minute
//! ```

use crate::budget::UnixSecs;

/// A target's caps; `None` is no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cap {
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
}

impl Cap {
    pub fn is_none(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none()
    }
}

/// What one target has used in the current minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetUse {
    minute: i64,
    requests: u32,
    tokens: u64,
}

impl TargetUse {
    fn roll(&mut self, now: UnixSecs) {
        let minute = now.div_euclid(60);
        if minute != self.minute {
            *self = TargetUse {
                minute,
                requests: 0,
                tokens: 0,
            };
        }
    }

    /// True when one more request of `tokens` (estimated) fits under `cap` in the minute of `now`.
    /// A request bigger than a whole minute's `tpm` fits only into an empty minute, so a cap never
    /// makes a target unusable for a large request forever.
    pub fn has_room(&mut self, cap: &Cap, now: UnixSecs, tokens: u64) -> bool {
        self.roll(now);
        let rpm_ok = cap.rpm.is_none_or(|rpm| self.requests < rpm);
        let tpm_ok = cap
            .tpm
            .is_none_or(|tpm| self.tokens == 0 || self.tokens.saturating_add(tokens) <= tpm);
        rpm_ok && tpm_ok
    }

    /// Counts a request sent at `now`, holding its estimated tokens.
    pub fn start(&mut self, now: UnixSecs, estimated_tokens: u64) {
        self.roll(now);
        self.requests = self.requests.saturating_add(1);
        self.tokens = self.tokens.saturating_add(estimated_tokens);
    }

    /// Replaces a request's estimate with its real token count, if its minute is still current.
    pub fn settle(&mut self, started: UnixSecs, now: UnixSecs, estimated: u64, actual: u64) {
        self.roll(now);
        if started.div_euclid(60) == self.minute {
            self.tokens = self.tokens.saturating_sub(estimated).saturating_add(actual);
        }
    }

    /// Requests and tokens counted in the minute of `now`.
    pub fn used(&mut self, now: UnixSecs) -> (u32, u64) {
        self.roll(now);
        (self.requests, self.tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tokens_are_held_then_settled() {
        let cap = Cap {
            rpm: None,
            tpm: Some(100),
        };
        let mut u = TargetUse::default();
        assert!(u.has_room(&cap, 5, 80));
        u.start(5, 80);
        assert!(!u.has_room(&cap, 6, 30), "80 held + 30 > 100");
        u.settle(5, 7, 80, 20);
        assert!(u.has_room(&cap, 8, 30), "settled at 20: 50 fits");
        // A settle from an earlier minute changes nothing in this one.
        u.start(61, 50);
        u.settle(5, 62, 80, 1000);
        assert_eq!(u.used(62), (1, 50));
    }

    #[test]
    fn an_oversized_request_fits_an_empty_minute_only() {
        let cap = Cap {
            rpm: None,
            tpm: Some(100),
        };
        let mut u = TargetUse::default();
        assert!(u.has_room(&cap, 0, 500));
        u.start(0, 500);
        assert!(!u.has_room(&cap, 1, 1));
        assert!(u.has_room(&cap, 60, 500));
    }

    proptest! {
        /// However requests arrive, no minute ever starts more than `rpm` requests when every start
        /// is preceded by a successful `has_room`.
        #[test]
        fn rpm_is_never_exceeded(rpm in 1u32..20, times in proptest::collection::vec(0i64..600, 0..300)) {
            let cap = Cap { rpm: Some(rpm), tpm: None };
            let mut u = TargetUse::default();
            let mut times = times;
            times.sort_unstable();
            let mut per_minute = std::collections::HashMap::<i64, u32>::new();
            for t in times {
                if u.has_room(&cap, t, 1) {
                    u.start(t, 1);
                    *per_minute.entry(t.div_euclid(60)).or_default() += 1;
                }
            }
            prop_assert!(per_minute.values().all(|&n| n <= rpm));
        }

        /// Held tokens never exceed `tpm` except for a single oversized request in an empty minute.
        #[test]
        fn tpm_is_never_exceeded(tpm in 1u64..1000, reqs in proptest::collection::vec((0i64..300, 1u64..400), 0..200)) {
            let cap = Cap { rpm: None, tpm: Some(tpm) };
            let mut u = TargetUse::default();
            let mut reqs = reqs;
            reqs.sort_unstable();
            for (t, n) in reqs {
                if u.has_room(&cap, t, n) {
                    let before = u.used(t).1;
                    u.start(t, n);
                    prop_assert!(before == 0 || u.used(t).1 <= tpm);
                }
            }
        }
    }
}
