//! Counters of what the bus did, kept in atomics so publishing never takes a lock for them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// A snapshot of the bus's counters since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BusStats {
    /// Events handed to `publish`.
    pub published: u64,
    /// Events a middleware dropped (live handlers did not see them).
    pub dropped: u64,
    /// Handlers that returned an error.
    pub handler_errors: u64,
    /// Handlers that panicked.
    pub handler_panics: u64,
    /// Handlers stopped because they ran past the time-out.
    pub handler_timeouts: u64,
    /// Middleware that panicked (the event went on unchanged).
    pub middleware_panics: u64,
}

impl BusStats {
    /// Every handler failure, whatever its kind.
    pub fn handler_failures(&self) -> u64 {
        self.handler_errors + self.handler_panics + self.handler_timeouts
    }
}

/// The live counters behind [`BusStats`]. Relaxed ordering: they are statistics, not
/// synchronisation, and nothing reads one counter to decide about another.
/// (Events published are counted per thread by the bus itself: see `bus/local.rs`.)
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    pub(crate) dropped: AtomicU64,
    pub(crate) handler_errors: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    pub(crate) handler_timeouts: AtomicU64,
    pub(crate) middleware_panics: AtomicU64,
}

impl StatsCounters {
    /// Adds `n` to a counter.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads every counter; `published` is left at 0 for the bus to fill in.
    pub(crate) fn snapshot(&self) -> BusStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BusStats {
            published: 0,
            dropped: read(&self.dropped),
            handler_errors: read(&self.handler_errors),
            handler_panics: read(&self.handler_panics),
            handler_timeouts: read(&self.handler_timeouts),
            middleware_panics: read(&self.middleware_panics),
        }
    }
}
