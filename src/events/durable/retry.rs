//! How often and how patiently a durable subscriber retries an event before parking it.

use std::time::Duration;

/// Retries with exponential back-off: after the n-th failed attempt the subscriber waits
/// `base_delay * 2^(n-1)`, at most `max_delay`; after `attempts` attempts the event is parked
/// as a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (default 5; 0 counts as 1).
    pub attempts: u32,
    /// The wait after the first failure (default 100 ms).
    pub base_delay: Duration,
    /// The longest wait between two attempts (default 5 s).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Attempts in all, at least one.
    pub fn max_attempts(&self) -> u32 {
        self.attempts.max(1)
    }

    /// How long to wait after the `failed_attempts`-th failure before the next attempt.
    pub fn delay_after(&self, failed_attempts: u32) -> Duration {
        let doublings = failed_attempts.saturating_sub(1).min(31);
        self.base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_up_to_the_maximum() {
        let policy = RetryPolicy::default();
        let delays: Vec<u128> = (1..=8).map(|n| policy.delay_after(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay_after(u32::MAX), policy.max_delay);
    }

    #[test]
    fn zero_attempts_still_tries_once() {
        let policy = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(policy.max_attempts(), 1);
    }
}
