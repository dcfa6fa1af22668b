//! The in-process event bus: subscriptions by event type or `*`, and publishing with
//! isolation (a handler's error, panic or time-out is logged and counted, and never reaches
//! the publisher or the other handlers).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::future::join_all;
use uuid::Uuid;

use super::handler::{EventHandler, Topic};
use super::isolation::{run_isolated, FailureKind};
use super::stats::{BusStats, StatsCounters};
use super::EventEnvelope;
use crate::domain::EventType;

/// The default limit on how long one handler may take for one event.
pub const DEFAULT_HANDLER_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of an [`EventBus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusConfig {
    /// How long a handler may run for one event before it is stopped and counted as timed
    /// out (default 5 s).
    pub handler_timeout: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
        }
    }
}

/// The in-process bus the application service publishes committed events on.
///
/// Cheap to clone: clones share the same subscriptions and statistics. `publish` must be
/// awaited inside a Tokio runtime with timers enabled (the bot's runtime), because each
/// handler is bounded by a Tokio timer.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    config: BusConfig,
    /// The current subscriptions. Publishing reads them without a lock; (un)subscribing
    /// builds a new snapshot and swaps it in, so a publish keeps the set it started with.
    routes: ArcSwap<Routes>,
    next_id: AtomicU64,
    stats: StatsCounters,
}

/// One subscription.
#[derive(Clone)]
struct Entry {
    id: u64,
    topic: Topic,
    handler: Arc<dyn EventHandler>,
}

/// An immutable snapshot of the subscriptions, with each event type's handlers worked out
/// in advance so that publishing only looks them up.
#[derive(Default)]
struct Routes {
    /// Every subscription, in subscription order: what the lists below are built from.
    entries: Vec<Entry>,
    /// For each type someone subscribed to by name: its typed and wildcard handlers
    /// together, in subscription order.
    by_type: HashMap<EventType, Vec<Arc<dyn EventHandler>>>,
    /// The wildcard handlers: all an event of any other type goes to.
    wildcard: Vec<Arc<dyn EventHandler>>,
}

impl Routes {
    fn new(entries: Vec<Entry>) -> Self {
        let handlers_of = |matches: &dyn Fn(Topic) -> bool| -> Vec<Arc<dyn EventHandler>> {
            entries
                .iter()
                .filter(|e| matches(e.topic))
                .map(|e| Arc::clone(&e.handler))
                .collect()
        };
        let by_type = entries
            .iter()
            .filter_map(|e| match e.topic {
                Topic::Type(t) => Some(t),
                Topic::All => None,
            })
            .map(|t| (t, handlers_of(&|topic| topic.matches(t))))
            .collect();
        let wildcard = handlers_of(&|topic| topic == Topic::All);
        Self {
            entries,
            by_type,
            wildcard,
        }
    }

    /// The handlers an event of `event_type` goes to, in subscription order.
    fn handlers_for(&self, event_type: EventType) -> &[Arc<dyn EventHandler>] {
        self.by_type.get(&event_type).unwrap_or(&self.wildcard)
    }
}

/// The handle of one subscription.
///
/// Dropping it keeps the subscription (handlers registered at start-up live as long as the
/// bus); call [`Subscription::unsubscribe`] to stop delivery.
#[derive(Debug)]
pub struct Subscription {
    bus: Weak<BusInner>,
    id: u64,
    topic: Topic,
    name: String,
}

impl Subscription {
    /// Stops delivery to this subscription's handler. Returns whether it was still subscribed.
    /// A publish already under way may still deliver one last event.
    pub fn unsubscribe(self) -> bool {
        match self.bus.upgrade() {
            Some(bus) => bus.remove(self.id),
            None => false,
        }
    }

    /// What this subscription listens to.
    pub fn topic(&self) -> Topic {
        self.topic
    }

    /// The subscribed handler's name.
    pub fn handler_name(&self) -> &str {
        &self.name
    }
}

/// What happened when one event was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReport {
    /// The published event's sequence.
    pub sequence: i64,
    /// The published event's id.
    pub event_id: Uuid,
    /// How many handlers were run.
    pub handlers_run: usize,
    /// The handlers that failed, and how, in subscription order.
    pub failures: Vec<HandlerFailure>,
}

impl PublishReport {
    /// How many handlers ran without failing.
    pub fn succeeded(&self) -> usize {
        self.handlers_run - self.failures.len()
    }

    /// Whether every handler that ran succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One handler that failed on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerFailure {
    /// The handler's name.
    pub handler: String,
    /// What went wrong.
    pub kind: FailureKind,
}

impl EventBus {
    /// A bus with no subscriptions.
    pub fn new(config: BusConfig) -> Self {
        Self {
            inner: Arc::new(BusInner {
                config,
                routes: ArcSwap::from_pointee(Routes::default()),
                next_id: AtomicU64::new(1),
                stats: StatsCounters::default(),
            }),
        }
    }

    /// The bus's settings.
    pub fn config(&self) -> BusConfig {
        self.inner.config
    }

    /// Delivers events of `topic` to `handler` from now on.
    #[allow(clippy::needless_pass_by_value)] // Taking the `Arc` says the bus keeps it.
    pub fn subscribe(&self, topic: Topic, handler: Arc<dyn EventHandler>) -> Subscription {
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let name = handler.name().to_owned();
        inner.change(|entries| {
            entries.push(Entry {
                id,
                topic,
                handler: Arc::clone(&handler),
            });
        });
        Subscription {
            bus: Arc::downgrade(inner),
            id,
            topic,
            name,
        }
    }

    /// The current subscriptions: topic and handler name, in subscription order
    /// (durable subscribers appear as `*`).
    pub fn subscriptions(&self) -> Vec<(Topic, String)> {
        self.inner
            .routes
            .load()
            .entries
            .iter()
            .map(|e| (e.topic, e.handler.name().to_owned()))
            .collect()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> BusStats {
        self.inner.stats.snapshot()
    }

    /// Runs the event type's handlers and the wildcard handlers concurrently, each bounded
    /// by the handler time-out, and returns when all of them finished, failed or timed out.
    ///
    /// Call it after the event's transaction committed, one event after the other in
    /// sequence order. It never fails and never panics: failures are logged (with the event
    /// and correlation ids), counted in [`EventBus::stats`] and listed in the report.
    pub async fn publish(&self, event: Arc<EventEnvelope>) -> PublishReport {
        let inner = &*self.inner;
        inner.stats.count_published();
        // Owned for the whole publish, however the subscriptions change while handlers run.
        let routes = inner.routes.load_full();
        let handlers = routes.handlers_for(event.event_type());
        let timeout = inner.config.handler_timeout;
        let outcomes = join_all(
            handlers
                .iter()
                .map(|handler| run_isolated(&**handler, &event, timeout)),
        )
        .await;
        let failures = handlers
            .iter()
            .zip(outcomes)
            .filter_map(|(handler, outcome)| {
                let kind = outcome.err()?;
                inner.record_failure(handler.name(), &event, &kind);
                Some(HandlerFailure {
                    handler: handler.name().to_owned(),
                    kind,
                })
            })
            .collect();
        PublishReport {
            sequence: event.sequence,
            event_id: event.event_id,
            handlers_run: handlers.len(),
            failures,
        }
    }
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("config", &self.inner.config)
            .field("subscriptions", &self.inner.routes.load().entries.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(BusConfig::default())
    }
}

impl BusInner {
    fn remove(&self, id: u64) -> bool {
        let mut found = false;
        self.change(|entries| {
            let before = entries.len();
            entries.retain(|e| e.id != id);
            found = entries.len() != before;
        });
        found
    }

    /// Swaps in a snapshot built from an edited copy of the current entries. `rcu` runs
    /// `edit` again on the newer snapshot if another change won the race, so none is lost.
    fn change(&self, mut edit: impl FnMut(&mut Vec<Entry>)) {
        self.routes.rcu(|current| {
            let mut entries = current.entries.clone();
            edit(&mut entries);
            Routes::new(entries)
        });
    }

    fn record_failure(&self, handler: &str, event: &EventEnvelope, kind: &FailureKind) {
        self.stats.count_failure(kind);
        match kind {
            FailureKind::Error(error) => tracing::warn!(
                event_id = %event.event_id,
                correlation_id = %event.correlation_id,
                sequence = event.sequence,
                event_type = %event.event_type(),
                handler,
                error = %error,
                "event handler failed"
            ),
            FailureKind::Panicked(panic) => tracing::error!(
                event_id = %event.event_id,
                correlation_id = %event.correlation_id,
                sequence = event.sequence,
                event_type = %event.event_type(),
                handler,
                panic = %panic,
                "event handler panicked"
            ),
            FailureKind::TimedOut(after) => tracing::warn!(
                event_id = %event.event_id,
                correlation_id = %event.correlation_id,
                sequence = event.sequence,
                event_type = %event.event_type(),
                handler,
                timeout_ms = after.as_millis() as u64,
                "event handler timed out and was stopped"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_list_typed_and_wildcard_handlers_for_each_type_in_subscription_order() {
        let named = |name: &str| -> Arc<dyn EventHandler> {
            crate::events::handler_fn(name, |_| async { Ok(()) })
        };
        let entry = |id, topic, name| Entry {
            id,
            topic,
            handler: named(name),
        };
        let routes = Routes::new(vec![
            entry(1, Topic::All, "first-wildcard"),
            entry(2, Topic::Type(EventType::PersonalityCreated), "created"),
            entry(3, Topic::All, "second-wildcard"),
        ]);
        let names = |event_type| -> Vec<String> {
            routes
                .handlers_for(event_type)
                .iter()
                .map(|h| h.name().to_owned())
                .collect()
        };
        assert_eq!(
            names(EventType::PersonalityCreated),
            ["first-wildcard", "created", "second-wildcard"]
        );
        assert_eq!(
            names(EventType::PersonalityRemoved),
            ["first-wildcard", "second-wildcard"]
        );
    }
}
