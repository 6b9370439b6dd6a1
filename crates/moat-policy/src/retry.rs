//! Retry arithmetic: which upstream answers are worth another try, and how long to wait first.
//!
//! The caller supplies the randomness (a `u64`) so the jitter is testable; the upstream crate feeds it
//! from a cheap per-request source.

use std::time::Duration;

/// How a provider's retries behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Extra attempts on the same target after the first one fails with a retryable error.
    pub max_retries: u32,
    /// First back-off step; each later step doubles, up to `max_delay`.
    pub base_delay: Duration,
    /// Cap for one computed back-off step.
    pub max_delay: Duration,
    /// The longest `Retry-After` we are willing to sit out. A provider asking for longer is skipped in
    /// favour of the next fallback, since the client is waiting on us.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try the same target again.
    RetryAfter(Duration),
    /// Give up on this target; try the next fallback (if any).
    NextTarget,
}

/// True for upstream statuses that say "try again later" rather than "your request is wrong":
/// 408, 429 and the transient 5xx family (501 and 505 are permanent, so they are not retried).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..=599).contains(&status) && !matches!(status, 501 | 505)
}

impl RetryPolicy {
    /// Decides after failed attempt number `attempt` (0 = the first try) whether to retry and when.
    ///
    /// `retry_after` is the upstream's `Retry-After`, honoured when present (and not too long);
    /// otherwise exponential back-off with "equal jitter": half the step fixed, half random.
    pub fn decide(&self, attempt: u32, retry_after: Option<Duration>, random: u64) -> RetryDecision {
        if attempt >= self.max_retries {
            return RetryDecision::NextTarget;
        }
        if let Some(wait) = retry_after {
            return if wait <= self.max_retry_after {
                RetryDecision::RetryAfter(wait)
            } else {
                RetryDecision::NextTarget
            };
        }
        let step = self
            .base_delay
            .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let half = step / 2;
        let half_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if half_nanos == 0 {
            0
        } else {
            random % (half_nanos + 1)
        };
        RetryDecision::RetryAfter(half + Duration::from_nanos(jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retryable_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 529] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 413, 422, 501, 505] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn retry_after_is_honoured_or_skipped() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.decide(0, Some(Duration::from_secs(1)), 7),
            RetryDecision::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            p.decide(0, Some(Duration::from_secs(60)), 7),
            RetryDecision::NextTarget
        );
    }

    #[test]
    fn attempts_run_out() {
        let p = RetryPolicy {
            max_retries: 1,
            ..RetryPolicy::default()
        };
        assert!(matches!(p.decide(0, None, 0), RetryDecision::RetryAfter(_)));
        assert_eq!(p.decide(1, None, 0), RetryDecision::NextTarget);
        let none = RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(none.decide(0, None, 0), RetryDecision::NextTarget);
    }

    proptest! {
        #[test]
        fn backoff_stays_within_its_step(attempt in 0u32..64, random: u64, base_ms in 0u64..2000, max_ms in 0u64..20000) {
            let p = RetryPolicy {
                max_retries: u32::MAX,
                base_delay: Duration::from_millis(base_ms),
                max_delay: Duration::from_millis(max_ms),
                max_retry_after: Duration::from_secs(1),
            };
            let RetryDecision::RetryAfter(d) = p.decide(attempt, None, random) else {
                return Err(TestCaseError::fail("expected a retry"));
            };
            let step = Duration::from_millis(base_ms).saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX)).min(Duration::from_millis(max_ms));
            prop_assert!(d <= step);
            prop_assert!(d >= step / 2);
        }
    }
}
