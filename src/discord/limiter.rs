//! A per-user limit on LLM calls, so one member can't run up the host's bill.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// At most `limit` calls per user in any sliding window of `window`.
pub struct CallLimiter {
    limit: usize,
    window: Duration,
    calls: DashMap<u64, VecDeque<Instant>>,
}

impl CallLimiter {
    /// `limit` calls per `window` per user.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            window,
            calls: DashMap::new(),
        }
    }

    /// Counts a call for `user` if allowed; otherwise says how long until the next is.
    pub fn try_acquire(&self, user: u64, now: Instant) -> Result<(), Duration> {
        let mut calls = self.calls.entry(user).or_default();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            calls.pop_front();
        }
        if calls.len() < self.limit {
            calls.push_back(now);
            return Ok(());
        }
        let oldest = calls.front().copied().unwrap_or(now);
        Err(self.window.saturating_sub(now.duration_since(oldest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_call_in_a_minute_waits_until_the_first_expires() {
        let limiter = CallLimiter::new(10, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..10 {
            assert!(limiter
                .try_acquire(1, start + Duration::from_secs(i))
                .is_ok());
        }
        let wait = limiter
            .try_acquire(1, start + Duration::from_secs(30))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(30));
        assert!(
            limiter.try_acquire(2, start).is_ok(),
            "other users are not affected"
        );
        assert!(limiter
            .try_acquire(1, start + Duration::from_secs(60))
            .is_ok());
    }
}
