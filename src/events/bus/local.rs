//! What a thread keeps for each bus it publishes on: its share of the `published` counter
//! and the subscription snapshot it last published with.
//!
//! Both spare `publish` atomic read-modify-writes, which cost about as much as a trivial
//! handler each: counting is a plain load and store on a share only this thread writes, and
//! the snapshot is taken from the thread's cache (a move, no reference count touched) when
//! the subscriptions did not change since — which one atomic load of the bus's generation
//! tells. Otherwise, and whenever the cache is out of reach (a publish inside a handler of
//! another publish on this thread, or the thread being torn down), `publish` falls back to
//! the shared atomics: correct, just slower.
//!
//! The price of the cache: a thread keeps the last snapshot it used, and with it the
//! handlers it lists, until it publishes on that bus again or ends. The thread that
//! changes the subscriptions or drops the bus forgets its own copy at once, and a publish
//! forgets the copies of buses that are gone.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{BusInner, Routes};

/// The bus's side of the `published` counter: every thread's share, for readers.
#[derive(Debug, Default)]
pub(super) struct PublishedCounter {
    /// Publishes counted while the thread's share was out of reach: rare, so an ordinary
    /// atomic add.
    fallback: AtomicU64,
    shares: Mutex<Shares>,
}

#[derive(Debug, Default)]
struct Shares {
    /// The counts of threads that have ended.
    retired: u64,
    /// The shares of the threads that are still running.
    live: Vec<Arc<AtomicU64>>,
}

impl PublishedCounter {
    /// The number of publishes counted so far, on every thread.
    pub(super) fn total(&self) -> u64 {
        let shares = self.lock();
        let live: u64 = shares.live.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        shares.retired + live + self.fallback.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Shares> {
        // A poisoned lock only means a thread panicked while holding it; the counts it
        // guards are plain numbers, always consistent.
        self.shares.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The subscriptions one publish runs with, and the generation of the bus they belong to.
pub(super) struct Snapshot {
    pub(super) routes: Arc<Routes>,
    generation: u64,
}

/// What [`BusInner::checkout`] takes out of the thread's state.
#[derive(Default)]
struct Taken {
    /// The cached snapshot, when it is still the bus's current one.
    fresh: Option<Snapshot>,
    /// The cached snapshot, when it is not: to drop.
    outdated: Option<Snapshot>,
    /// The entries of buses that are gone: to drop.
    gone: Vec<Local>,
}

/// This thread's state for one bus.
struct Local {
    /// Which bus: `Weak` so that a thread never keeps a bus alive, and so that its address
    /// can't be reused by another bus while this entry exists.
    bus: Weak<BusInner>,
    /// This thread's share of the bus's `published` counter; only this thread writes it.
    count: Arc<AtomicU64>,
    /// The snapshot this thread last published with, while no publish has it checked out.
    cached: Option<Snapshot>,
}

impl Drop for Local {
    /// The thread ends (or forgets a bus): hand the count over to the bus, if it is alive.
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            let mut shares = bus.published.lock();
            shares.retired += self.count.load(Ordering::Relaxed);
            shares.live.retain(|c| !Arc::ptr_eq(c, &self.count));
        }
    }
}

thread_local! {
    /// The state of every bus this thread published on; usually one.
    static LOCALS: RefCell<Vec<Local>> = const { RefCell::new(Vec::new()) };
}

/// Whether `local` belongs to `bus`.
fn is_for(local: &Local, bus: *const BusInner) -> bool {
    local.bus.as_ptr() == bus
}

impl BusInner {
    /// Counts one publish and returns the snapshot to run it with.
    pub(super) fn checkout(self: &Arc<Self>) -> Snapshot {
        let generation = self.generation.load(Ordering::Acquire);
        let taken = LOCALS
            .try_with(|locals| {
                let mut locals = locals.try_borrow_mut().ok()?;
                Some(self.checkout_local(&mut locals, generation))
            })
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                self.published.fallback.fetch_add(1, Ordering::Relaxed);
                Taken::default()
            });
        let Taken {
            fresh,
            outdated,
            gone,
        } = taken;
        // Dropped out of the thread-local borrow: the last reference to a handler may go
        // with them, and its `Drop` may publish.
        drop((outdated, gone));
        fresh.unwrap_or_else(|| Snapshot {
            // Loaded after the generation: at least as new as the generation says.
            routes: self.routes.load_full(),
            generation,
        })
    }

    /// The thread-local half of [`BusInner::checkout`].
    fn checkout_local(self: &Arc<Self>, locals: &mut Vec<Local>, generation: u64) -> Taken {
        let mut taken = Taken::default();
        let this = Arc::as_ptr(self);
        let local = match locals.iter().position(|l| is_for(l, this)) {
            Some(i) => &mut locals[i],
            None => {
                // The first publish of this bus on this thread. Forget the buses that are
                // gone while at it.
                let (gone, alive) = std::mem::take(locals)
                    .into_iter()
                    .partition(|l| l.bus.strong_count() == 0);
                *locals = alive;
                taken.gone = gone;
                let count = Arc::new(AtomicU64::new(0));
                self.published.lock().live.push(Arc::clone(&count));
                let at = locals.len();
                locals.push(Local {
                    bus: Arc::downgrade(self),
                    count,
                    cached: None,
                });
                &mut locals[at]
            }
        };
        // Only this thread writes its share: no read-modify-write needed.
        let count = &local.count;
        count.store(count.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        match local.cached.take() {
            Some(snapshot) if snapshot.generation == generation => taken.fresh = Some(snapshot),
            outdated => taken.outdated = outdated,
        }
        taken
    }

    /// Gives a snapshot back to this thread's cache after a publish, unless the
    /// subscriptions changed meanwhile or the cache is taken.
    pub(super) fn check_in(&self, snapshot: Snapshot) {
        if snapshot.generation != self.generation.load(Ordering::Relaxed) {
            return;
        }
        let this: *const BusInner = self;
        let refused = LOCALS.try_with(|locals| {
            let Ok(mut locals) = locals.try_borrow_mut() else {
                return Some(snapshot);
            };
            match locals.iter_mut().find(|l| is_for(l, this)) {
                Some(local) if local.cached.is_none() => {
                    local.cached = Some(snapshot);
                    None
                }
                _ => Some(snapshot),
            }
        });
        drop(refused);
    }

    /// Drops this thread's cached snapshot of this bus (after the subscriptions changed).
    pub(super) fn forget_cached(&self) {
        let this: *const BusInner = self;
        let forgotten = LOCALS.try_with(|locals| {
            let mut locals = locals.try_borrow_mut().ok()?;
            locals.iter_mut().find(|l| is_for(l, this))?.cached.take()
        });
        drop(forgotten);
    }

    /// Removes this thread's entry for this bus (the bus is being dropped).
    pub(super) fn forget_local(&self) {
        let this: *const BusInner = self;
        let forgotten = LOCALS.try_with(|locals| {
            let mut locals = locals.try_borrow_mut().ok()?;
            let i = locals.iter().position(|l| is_for(l, this))?;
            Some(locals.swap_remove(i))
        });
        drop(forgotten);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{BusConfig, EventBus};

    fn cached_on_this_thread(bus: &EventBus) -> bool {
        let this = Arc::as_ptr(&bus.inner);
        LOCALS.with(|l| {
            l.borrow()
                .iter()
                .any(|l| is_for(l, this) && l.cached.is_some())
        })
    }

    #[test]
    fn publishes_on_one_thread_are_counted_in_its_share() {
        let bus = EventBus::new(BusConfig::default());
        for _ in 0..5 {
            let snapshot = bus.inner.checkout();
            bus.inner.check_in(snapshot);
        }
        assert_eq!(bus.inner.published.total(), 5);
        assert!(cached_on_this_thread(&bus));
    }

    #[test]
    fn counts_of_threads_that_ended_are_kept() {
        let bus = EventBus::new(BusConfig::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let bus = bus.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let snapshot = bus.inner.checkout();
                        bus.inner.check_in(snapshot);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("the thread ran");
        }
        assert_eq!(bus.inner.published.total(), 4000);
        // Every thread ended, so their shares were folded into the total.
        assert!(bus.inner.published.lock().live.is_empty());
    }

    #[test]
    fn a_snapshot_checked_out_twice_on_one_thread_is_loaded_the_second_time() {
        let bus = EventBus::new(BusConfig::default());
        let warm = bus.inner.checkout();
        bus.inner.check_in(warm);
        let outer = bus.inner.checkout();
        // What a publish inside a handler of another publish does.
        let inner = bus.inner.checkout();
        assert!(Arc::ptr_eq(&outer.routes, &inner.routes));
        bus.inner.check_in(inner);
        bus.inner.check_in(outer);
        assert_eq!(bus.inner.published.total(), 3);
    }

    #[test]
    fn changing_the_subscriptions_outdates_and_forgets_the_cached_snapshot() {
        let bus = EventBus::new(BusConfig::default());
        let before = bus.inner.checkout();
        let old = Arc::clone(&before.routes);
        bus.inner.check_in(before);
        assert!(cached_on_this_thread(&bus));

        let handler = crate::events::handler_fn("h", |_| async { Ok(()) });
        bus.subscribe(crate::events::Topic::All, handler);
        assert!(!cached_on_this_thread(&bus));
        let after = bus.inner.checkout();
        assert!(!Arc::ptr_eq(&old, &after.routes));
        assert_eq!(after.routes.entries.len(), 1);
    }

    #[test]
    fn dropping_a_bus_forgets_its_entry_on_this_thread() {
        let bus = EventBus::new(BusConfig::default());
        let snapshot = bus.inner.checkout();
        bus.inner.check_in(snapshot);
        let this = Arc::as_ptr(&bus.inner);
        drop(bus);
        let left = LOCALS.with(|l| l.borrow().iter().any(|l| is_for(l, this)));
        assert!(!left);
    }
}
