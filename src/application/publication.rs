//! Publishing committed events on the bus in the order of their sequence numbers, whoever
//! committed them.
//!
//! Commits run one at a time on the database thread. Right after its commit, each unit of
//! work *claims* its events there, together with any that another process (the command
//! line) committed since the last claim, so that the claims form an unbroken chain of
//! sequences. A claim is published in its turn: once the claim before it is. No lock is
//! held across a transaction and its handlers, so the next command's transaction runs
//! while this one's handlers do, and the bus still sees every event once, in order.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use rusqlite::Connection;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::events::{EventBus, EventEnvelope};
use crate::store::{event_rows, EventFilter, StoreError};

/// Hands committed events to the bus in sequence order.
pub(crate) struct Publisher {
    bus: EventBus,
    /// The last sequence claimed. Moved only by claims, which run on the database thread,
    /// one at a time.
    claimed: AtomicI64,
    /// How far publication has come, and the claims waiting for their turn.
    chain: Mutex<Chain>,
}

/// The published end of the chain of claims.
#[derive(Default)]
struct Chain {
    /// The last sequence published.
    published: i64,
    /// Claims waiting for their turn, by the sequence they follow. Each is woken alone when
    /// publication reaches it: with many commands in flight, waking every waiting claim at
    /// each step (as a watch channel does) would cost a wake-up per claim per publication.
    waiting: BTreeMap<i64, Vec<oneshot::Sender<()>>>,
}

impl Chain {
    /// Publication has reached `to`: wakes the claims that follow it or anything before.
    fn advance(&mut self, to: i64) {
        if to <= self.published {
            return;
        }
        self.published = to;
        let later = self.waiting.split_off(&to.saturating_add(1));
        for turn in std::mem::replace(&mut self.waiting, later)
            .into_values()
            .flatten()
        {
            // Fails only for a publication dropped with the runtime at shutdown: nobody
            // waits for it any more. (One dropped while the runtime runs goes on in a task
            // of its own, still waiting here.)
            let _ = turn.send(());
        }
    }
}

/// Events claimed for publication, and the sequence of the claim before them.
struct Batch {
    after: i64,
    events: Vec<EventEnvelope>,
}

/// A claim on the chain. [`Claim::publish`] publishes it in its turn; a claim dropped
/// unpublished (its command was abandoned between its commit and its publication) is
/// published by a task of its own, so that the chain never breaks.
pub(crate) struct Claim {
    batch: Option<Batch>,
    publisher: Arc<Publisher>,
    runtime: Option<Handle>,
}

impl Publisher {
    pub(crate) fn new(bus: EventBus) -> Self {
        Self {
            bus,
            claimed: AtomicI64::new(0),
            chain: Mutex::default(),
        }
    }

    fn chain(&self) -> MutexGuard<'_, Chain> {
        // Nothing in `Chain` is left half-changed by a panic.
        self.chain.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sequence of the last event published.
    pub(crate) fn published(&self) -> i64 {
        self.chain().published
    }

    /// On the database thread: starts the chain after the last stored event. What came
    /// before is already in the caches, which were loaded from the state it produced.
    pub(crate) fn start_at_end(&self, conn: &Connection) -> Result<(), StoreError> {
        let last = event_rows::last_sequence(conn)?;
        self.claimed.fetch_max(last, Ordering::AcqRel);
        self.chain().advance(last);
        Ok(())
    }

    /// On the database thread, right after a commit: claims `committed` (the events just
    /// committed, in order) and, first, any event another process committed since the last
    /// claim.
    pub(crate) fn claim(
        self: &Arc<Self>,
        conn: &Connection,
        committed: Vec<EventEnvelope>,
        runtime: Option<Handle>,
    ) -> Claim {
        let after = self.claimed.load(Ordering::Acquire);
        let (Some(first), Some(last)) = (committed.first(), committed.last()) else {
            return self.claim_of(after, Vec::new(), runtime);
        };
        let (first, last) = (first.sequence, last.sequence);
        let events = if first == after + 1 {
            committed
        } else {
            let between = EventFilter {
                after,
                before: Some(first),
                ..Default::default()
            };
            match event_rows::list(conn, &between) {
                Ok(mut events) => {
                    events.extend(committed);
                    events
                }
                Err(error) => {
                    // The commit stands. Leaving the chain where it is, the next claim (the
                    // next command, or the poll for other processes' events within a
                    // second) reads these events and ours from the log.
                    tracing::warn!(%error, "could not read events another process committed; they are published with the next ones");
                    return self.claim_of(after, Vec::new(), runtime);
                }
            }
        };
        self.claimed.store(last, Ordering::Release);
        self.claim_of(after, events, runtime)
    }

    /// On the database thread: claims up to `limit` events that other processes committed
    /// since the last claim.
    pub(crate) fn claim_external(
        self: &Arc<Self>,
        conn: &Connection,
        limit: usize,
        runtime: Option<Handle>,
    ) -> Result<Claim, StoreError> {
        let after = self.claimed.load(Ordering::Acquire);
        let filter = EventFilter {
            after,
            limit: Some(limit),
            ..Default::default()
        };
        let events = event_rows::list(conn, &filter)?;
        if let Some(last) = events.last() {
            self.claimed.store(last.sequence, Ordering::Release);
        }
        Ok(self.claim_of(after, events, runtime))
    }

    fn claim_of(
        self: &Arc<Self>,
        after: i64,
        events: Vec<EventEnvelope>,
        runtime: Option<Handle>,
    ) -> Claim {
        Claim {
            batch: (!events.is_empty()).then_some(Batch { after, events }),
            publisher: Arc::clone(self),
            runtime,
        }
    }

    /// Waits until every earlier claim is published, then publishes this one.
    async fn publish_in_turn(self: Arc<Self>, batch: Batch) {
        let turn = {
            let mut chain = self.chain();
            (chain.published < batch.after).then(|| {
                let (wake, turn) = oneshot::channel();
                chain.waiting.entry(batch.after).or_default().push(wake);
                turn
            })
        };
        if let Some(turn) = turn {
            // Fails only if the sender is gone, and `self` holds the chain that holds it.
            let _ = turn.await;
        }
        let last = batch.events.last().map_or(batch.after, |e| e.sequence);
        // Moves the chain on even if a publication panics or its task is cancelled at
        // shutdown: later claims must not wait forever.
        let _advance = Advance {
            publisher: &self,
            to: last,
        };
        for event in batch.events {
            self.bus.publish(Arc::new(event)).await;
        }
    }
}

/// Marks a batch published when dropped.
struct Advance<'a> {
    publisher: &'a Publisher,
    to: i64,
}

impl Drop for Advance<'_> {
    fn drop(&mut self) {
        self.publisher.chain().advance(self.to);
    }
}

impl Claim {
    /// Publishes the claimed events once every earlier claim is published, and returns how
    /// many there were. The publication runs in the caller's task; if the caller stops
    /// waiting, what is left of it is finished by a task of its own.
    pub(crate) async fn publish(mut self) -> usize {
        let Some(batch) = self.batch.take() else {
            return 0;
        };
        let count = batch.events.len();
        let mut publication = Unfinished::new(&self.publisher, batch, self.runtime.take());
        std::future::poll_fn(|cx| publication.poll(cx)).await;
        count
    }
}

/// A publication in progress, finished in a task of its own if dropped before it is done.
struct Unfinished {
    publication: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    runtime: Option<Handle>,
}

impl Unfinished {
    fn new(publisher: &Arc<Publisher>, batch: Batch, runtime: Option<Handle>) -> Self {
        Self {
            publication: Some(Box::pin(Arc::clone(publisher).publish_in_turn(batch))),
            runtime,
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(publication) = self.publication.as_mut() else {
            return Poll::Ready(());
        };
        let done = publication.as_mut().poll(cx);
        if done.is_ready() {
            self.publication = None;
        }
        done
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(publication) = self.publication.take() else {
            return;
        };
        match self.runtime.take().or_else(|| Handle::try_current().ok()) {
            Some(runtime) => drop(runtime.spawn(publication)),
            // No runtime left: the process is stopping. Durable subscribers catch up from
            // the log at the next start and the caches are loaded from the stored state.
            None => tracing::warn!("events committed during shutdown were not published"),
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(batch) = self.batch.take() {
            // Dropped unstarted: the whole publication is left to a task.
            drop(Unfinished::new(&self.publisher, batch, self.runtime.take()));
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot::error::TryRecvError;

    use super::*;

    fn wait(chain: &mut Chain, after: i64) -> oneshot::Receiver<()> {
        let (wake, turn) = oneshot::channel();
        chain.waiting.entry(after).or_default().push(wake);
        turn
    }

    #[test]
    fn each_step_of_publication_wakes_only_the_claims_it_reaches() {
        let mut chain = Chain::default();
        let mut first = wait(&mut chain, 10);
        let mut second = wait(&mut chain, 20);
        let mut third = wait(&mut chain, 30);
        chain.advance(10);
        assert_eq!(first.try_recv(), Ok(()));
        assert_eq!(second.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(third.try_recv(), Err(TryRecvError::Empty));
        // A jump (the chain started at the end of the log) reaches every claim before it.
        chain.advance(30);
        assert_eq!(second.try_recv(), Ok(()));
        assert_eq!(third.try_recv(), Ok(()));
        assert!(chain.waiting.is_empty());
        // It never goes back.
        chain.advance(5);
        assert_eq!(chain.published, 30);
    }
}
