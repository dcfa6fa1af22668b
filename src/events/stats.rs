//! Counters of what the bus did, kept in atomics so publishing never takes a lock for them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::FailureKind;

/// A snapshot of the bus's counters since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BusStats {
    /// Events handed to `publish`.
    pub published: u64,
    /// Handlers that returned an error.
    pub handler_errors: u64,
    /// Handlers that panicked.
    pub handler_panics: u64,
    /// Handlers stopped because they ran past the time-out.
    pub handler_timeouts: u64,
}

impl BusStats {
    /// Every handler failure, whatever its kind.
    pub fn handler_failures(&self) -> u64 {
        self.handler_errors + self.handler_panics + self.handler_timeouts
    }
}

/// The live counters behind [`BusStats`]. Relaxed ordering: they are statistics, not
/// synchronisation, and nothing reads one counter to decide about another.
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    published: AtomicU64,
    handler_errors: AtomicU64,
    handler_panics: AtomicU64,
    handler_timeouts: AtomicU64,
}

impl StatsCounters {
    /// Counts one published event.
    pub(crate) fn count_published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one handler failure under its kind.
    pub(crate) fn count_failure(&self, kind: &FailureKind) {
        let counter = match kind {
            FailureKind::Error(_) => &self.handler_errors,
            FailureKind::Panicked(_) => &self.handler_panics,
            FailureKind::TimedOut(_) => &self.handler_timeouts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub(crate) fn snapshot(&self) -> BusStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BusStats {
            published: read(&self.published),
            handler_errors: read(&self.handler_errors),
            handler_panics: read(&self.handler_panics),
            handler_timeouts: read(&self.handler_timeouts),
        }
    }
}
