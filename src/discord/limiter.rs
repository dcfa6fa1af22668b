//! A per-user limit on LLM calls, so one member can't run up the host's bill.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// At most `limit` calls per user in any sliding window of `window`. Users with no call in
/// the last window are forgotten (a sweep at most once a window), so the map holds the
/// users of the last minute or two, not every user ever seen.
pub struct CallLimiter {
    limit: usize,
    window: Duration,
    calls: DashMap<u64, VecDeque<Instant>>,
    last_sweep: Mutex<Instant>,
}

impl CallLimiter {
    /// `limit` calls per `window` per user.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            window,
            calls: DashMap::new(),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Users currently remembered.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// True when no user is remembered.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Counts a call for `user` if allowed; otherwise says how long until the next is.
    pub fn try_acquire(&self, user: u64, now: Instant) -> Result<(), Duration> {
        let outcome = self.acquire(user, now);
        self.sweep_if_due(now);
        outcome
    }

    /// Forgets users whose calls are all older than the window, once a window at most.
    /// Takes back the call `user` was granted at `at`, when it was not made after all.
    pub fn give_back(&self, user: u64, at: Instant) {
        if let Some(mut calls) = self.calls.get_mut(&user) {
            if let Some(i) = calls.iter().rposition(|t| *t == at) {
                calls.remove(i);
            }
        }
    }

    fn sweep_if_due(&self, now: Instant) {
        {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if now.saturating_duration_since(*last) < self.window {
                return;
            }
            *last = now;
        }
        self.calls.retain(|_, calls| {
            calls
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < self.window)
        });
    }

    fn acquire(&self, user: u64, now: Instant) -> Result<(), Duration> {
        let mut calls = self.calls.entry(user).or_default();
        while calls
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            calls.pop_front();
        }
        if calls.len() < self.limit {
            calls.push_back(now);
            return Ok(());
        }
        let oldest = calls.front().copied().unwrap_or(now);
        Err(self
            .window
            .saturating_sub(now.saturating_duration_since(oldest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_without_a_call_in_the_last_window_are_forgotten() {
        let limiter = CallLimiter::new(10, Duration::from_secs(60));
        let start = Instant::now();
        for user in 0..10_000 {
            limiter.try_acquire(user, start).unwrap();
        }
        assert_eq!(limiter.len(), 10_000);
        limiter
            .try_acquire(1, start + Duration::from_secs(61))
            .unwrap();
        assert_eq!(limiter.len(), 1, "only the user of the last minute is left");
    }

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
