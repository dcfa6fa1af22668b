//! Publishing committed events on the bus once each, in sequence order, whoever committed
//! them: this process's commands, or another process (the command line) on the same store.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tracing::Instrument;

use super::{EventFilter, PersonalityRepository, StoreError};
use crate::events::{EventBus, EventEnvelope};

/// Hands committed events to the bus in sequence order. One publication runs at a time;
/// each starts with whatever was committed before its own events and not yet published
/// (a command whose caller gave up, or another process's change), read from the store.
pub(crate) struct Publisher {
    bus: EventBus,
    repository: Arc<dyn PersonalityRepository>,
    /// The last sequence published. Held while publishing.
    published: tokio::sync::Mutex<i64>,
    /// A copy of `published` for readers that must not wait.
    last: AtomicI64,
}

impl Publisher {
    pub(crate) fn new(bus: EventBus, repository: Arc<dyn PersonalityRepository>) -> Self {
        Self {
            bus,
            repository,
            published: tokio::sync::Mutex::new(0),
            last: AtomicI64::new(0),
        }
    }

    /// The sequence of the last event published.
    pub(crate) fn published(&self) -> i64 {
        self.last.load(Ordering::Acquire)
    }

    /// Starts after the last stored event: what came before is already in the caches,
    /// which were loaded from the state it produced.
    pub(crate) async fn start_at_end(&self) -> Result<(), StoreError> {
        let end = self.repository.last_sequence().await?;
        let mut published = self.published.lock().await;
        *published = (*published).max(end);
        self.last.store(*published, Ordering::Release);
        Ok(())
    }

    /// Publishes `committed` (events just committed, in order), after any event committed
    /// before them that is not published yet. The publication runs in a task of its own:
    /// if the caller stops waiting (an abandoned interaction), it still finishes, so every
    /// handler sees each event once.
    pub(crate) async fn publish(self: &Arc<Self>, committed: Vec<EventEnvelope>) {
        let publisher = Arc::clone(self);
        let publication = tokio::spawn(
            async move { publisher.publish_after_earlier(committed).await }
                .instrument(tracing::Span::current()),
        );
        if let Err(error) = publication.await {
            tracing::error!(%error, "publishing committed events failed");
        }
    }

    async fn publish_after_earlier(&self, committed: Vec<EventEnvelope>) {
        let Some(first) = committed.first().map(|e| e.sequence) else {
            return;
        };
        let mut published = self.published.lock().await;
        if first > *published + 1 {
            let earlier = EventFilter {
                after: *published,
                before: Some(first),
                ..Default::default()
            };
            match self.repository.events(earlier).await {
                Ok(events) => self.publish_locked(&mut published, events).await,
                Err(error) => {
                    // The commit stands. Leaving `published` where it is, the next
                    // publication (or the poll for other processes' events) reads these
                    // events and ours from the store.
                    tracing::warn!(%error, "could not read earlier events; they are published with the next ones");
                    return;
                }
            }
        }
        self.publish_locked(&mut published, committed).await;
    }

    /// Publishes up to `limit` stored events that are not published yet (another process
    /// committed them) and returns how many.
    pub(crate) async fn publish_stored(&self, limit: usize) -> Result<usize, StoreError> {
        let mut published = self.published.lock().await;
        let events = self
            .repository
            .events(EventFilter {
                after: *published,
                limit: Some(limit),
                ..Default::default()
            })
            .await?;
        let count = events.len();
        self.publish_locked(&mut published, events).await;
        Ok(count)
    }

    async fn publish_locked(&self, published: &mut i64, events: Vec<EventEnvelope>) {
        for event in events {
            if event.sequence <= *published {
                continue;
            }
            let sequence = event.sequence;
            self.bus.publish(Arc::new(event)).await;
            // Moved after the handlers ran: a publication cut short (the runtime stopping) is
            // resumed from this event by the next one; handlers are idempotent.
            *published = sequence;
            self.last.store(sequence, Ordering::Release);
        }
    }
}
