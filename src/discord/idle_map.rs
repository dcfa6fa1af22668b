//! A concurrent map that forgets entries nobody used for a while, so maps keyed by users or
//! channels stay as large as the activity of the last `idle` period, not of all time.

use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Entries untouched for `idle` are dropped; a sweep runs at most every `idle / 4` (and at
/// least every minute), from whichever call finds it due, so no background task is needed.
pub struct IdleMap<K, V> {
    idle: Duration,
    sweep_every: Duration,
    entries: DashMap<K, (V, Instant)>,
    last_sweep: Mutex<Instant>,
}

impl<K: Eq + Hash + Clone, V: Clone> IdleMap<K, V> {
    /// An empty map forgetting entries after `idle`.
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            sweep_every: (idle / 4).min(Duration::from_secs(60)),
            entries: DashMap::new(),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// Sets `key` to `value`, used at `now`.
    pub fn insert(&self, key: K, value: V, now: Instant) {
        self.entries.insert(key, (value, now));
        self.sweep_if_due(now);
    }

    /// The value of `key` unless it went idle; marks it used.
    pub fn get(&self, key: &K) -> Option<V> {
        let now = Instant::now();
        let mut entry = self.entries.get_mut(key)?;
        if now.saturating_duration_since(entry.1) >= self.idle {
            drop(entry);
            self.entries.remove_if(key, |_, (_, used)| {
                now.saturating_duration_since(*used) >= self.idle
            });
            return None;
        }
        entry.1 = now;
        Some(entry.0.clone())
    }

    /// Removes `key` if `predicate` holds for its value.
    pub fn remove_if(&self, key: &K, predicate: impl FnOnce(&V) -> bool) {
        self.entries
            .remove_if(key, |_, (value, _)| predicate(value));
    }

    /// Entries held (idle ones not yet swept included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every entry idle at `now`.
    pub fn sweep(&self, now: Instant) {
        self.entries
            .retain(|_, (_, used)| now.saturating_duration_since(*used) < self.idle);
    }

    fn sweep_if_due(&self, now: Instant) {
        let due = {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if now.saturating_duration_since(*last) >= self.sweep_every {
                *last = now;
                true
            } else {
                false
            }
        };
        // Swept outside the lock above: other callers go on meanwhile.
        if due {
            self.sweep(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_entries_are_forgotten_and_used_ones_kept() {
        let map = IdleMap::new(Duration::from_secs(60));
        let start = Instant::now();
        for user in 0..1000u64 {
            map.insert(user, user, start);
        }
        map.insert(5000, 5000, start + Duration::from_secs(59));
        map.sweep(start + Duration::from_secs(61));
        assert_eq!(
            map.len(),
            1,
            "only the entry used within the minute is left"
        );
        // Inserting after a sweep interval sweeps on its own.
        let later = start + Duration::from_secs(200);
        map.insert(1, 1, later);
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&1), Some(1));
    }
}
