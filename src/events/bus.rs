//! The in-process event bus: subscriptions by event type or `*`, middleware, and publishing
//! with isolation (a handler's error, panic or time-out never reaches the publisher or the
//! other handlers).
//!
//! Publishing is on every command's path, so it is built to cost little: the handler lists
//! are immutable snapshots swapped on (un)subscribe and read without a lock, handlers run
//! concurrently inside the publisher's task (no task spawned per handler), and a timer is
//! armed only when some handler did not finish on its first poll.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::future::{BoxFuture, CatchUnwind};
use futures::FutureExt;
use tracing::Instrument;
use uuid::Uuid;

use super::handler::{EventHandler, HandlerError, Topic};
use super::middleware::Middleware;
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
/// Cheap to clone: clones share the same subscriptions, middleware and statistics.
/// `publish` must be awaited inside a Tokio runtime with timers enabled (the bot's runtime),
/// because a handler that does not finish at once is bounded by a Tokio timer.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    config: BusConfig,
    /// The current subscriptions and middleware. Readers take a snapshot without locking;
    /// writers build a new snapshot and swap it in.
    routes: ArcSwap<Routes>,
    /// Serialises writers, so two concurrent subscribes can't each rebuild from the same
    /// old snapshot and lose one another. Never held across an await.
    write: Mutex<()>,
    next_id: AtomicU64,
    stats: StatsCounters,
}

#[derive(Clone)]
struct Entry {
    id: u64,
    topic: Topic,
    /// Raw subscribers bypass middleware (durable subscribers: they must see what is stored).
    raw: bool,
    handler: Arc<dyn EventHandler>,
}

/// Who gets an event of one type, precomputed so publishing only indexes and iterates.
#[derive(Default)]
struct Targets {
    live: Box<[Arc<dyn EventHandler>]>,
    raw: Box<[Arc<dyn EventHandler>]>,
}

impl Targets {
    fn build<'a>(entries: impl Iterator<Item = &'a Entry> + Clone) -> Self {
        let pick = |raw: bool| {
            entries
                .clone()
                .filter(|e| e.raw == raw)
                .map(|e| Arc::clone(&e.handler))
                .collect()
        };
        Self {
            live: pick(false),
            raw: pick(true),
        }
    }
}

/// An immutable snapshot of the bus's wiring.
#[derive(Default)]
struct Routes {
    /// Every subscription, in subscription order: the source the rest is built from.
    entries: Vec<Entry>,
    middleware: Vec<Arc<dyn Middleware>>,
    /// Targets for each known event type.
    by_type: Vec<(EventType, Targets)>,
    /// Targets for a type nobody subscribed to by name and that `EventType::ALL` lacks:
    /// only the wildcard subscribers.
    wildcard: Targets,
}

impl Routes {
    fn new(entries: Vec<Entry>, middleware: Vec<Arc<dyn Middleware>>) -> Self {
        let mut types: Vec<EventType> = EventType::ALL.to_vec();
        for entry in &entries {
            if let Topic::Type(t) = entry.topic {
                if !types.contains(&t) {
                    types.push(t);
                }
            }
        }
        let by_type = types
            .into_iter()
            .map(|t| {
                (
                    t,
                    Targets::build(entries.iter().filter(|e| e.topic.matches(t))),
                )
            })
            .collect();
        let wildcard = Targets::build(entries.iter().filter(|e| e.topic == Topic::All));
        Self {
            entries,
            middleware,
            by_type,
            wildcard,
        }
    }

    fn targets(&self, event_type: EventType) -> &Targets {
        // A linear scan over a handful of one-byte enums beats hashing.
        self.by_type
            .iter()
            .find(|(t, _)| *t == event_type)
            .map_or(&self.wildcard, |(_, targets)| targets)
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
    /// Whether a middleware dropped the event for the live handlers.
    pub dropped: bool,
    /// How many handlers were run.
    pub handlers_run: usize,
    /// The handlers that failed, and how.
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

/// How a handler failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// It returned an error (the message, with its causes).
    Error(String),
    /// It panicked (the panic message, when it had one).
    Panicked(String),
    /// It ran past the time-out and was stopped.
    TimedOut(Duration),
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(e) => write!(f, "failed: {e}"),
            Self::Panicked(p) => write!(f, "panicked: {p}"),
            Self::TimedOut(t) => write!(f, "timed out after {t:?}"),
        }
    }
}

impl EventBus {
    /// A bus with no subscriptions and no middleware.
    pub fn new(config: BusConfig) -> Self {
        Self {
            inner: Arc::new(BusInner {
                config,
                routes: ArcSwap::from_pointee(Routes::default()),
                write: Mutex::new(()),
                next_id: AtomicU64::new(1),
                stats: StatsCounters::default(),
            }),
        }
    }

    /// The bus's settings.
    pub fn config(&self) -> BusConfig {
        self.inner.config
    }

    /// Delivers events of `topic` to `handler` from now on, after the middleware.
    pub fn subscribe(&self, topic: Topic, handler: Arc<dyn EventHandler>) -> Subscription {
        BusInner::add(&self.inner, topic, false, handler)
    }

    /// Delivers every event to `handler` exactly as published, bypassing middleware: for
    /// durable subscribers, whose live path must agree with their catch-up from the log.
    pub(crate) fn subscribe_raw(&self, handler: Arc<dyn EventHandler>) -> Subscription {
        BusInner::add(&self.inner, Topic::All, true, handler)
    }

    /// Adds a middleware after those already added; it sees every later event.
    pub fn add_middleware(&self, middleware: Arc<dyn Middleware>) {
        self.inner.rebuild(|_, mw| mw.push(middleware));
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

    /// Runs the middleware, then the event type's handlers and the wildcard handlers
    /// concurrently, and returns when all of them finished, failed or timed out.
    ///
    /// Call it after the event's transaction committed, one event after the other in
    /// sequence order. It never fails and never panics: failures are logged (with the event
    /// and correlation ids), counted in [`EventBus::stats`] and listed in the report.
    pub async fn publish(&self, event: Arc<EventEnvelope>) -> PublishReport {
        let inner = &*self.inner;
        StatsCounters::add(&inner.stats.published, 1);
        // A guard, not a clone: it keeps this snapshot alive however the subscriptions change
        // while handlers run, for two cheap atomic operations (a clone costs four). It is
        // `Send`, so holding it across the awaits below is fine.
        let routes = inner.routes.load();
        let targets = routes.targets(event.event_type());

        let transformed: Option<Arc<EventEnvelope>>;
        let live_event: Option<&EventEnvelope> = if routes.middleware.is_empty() {
            Some(&event)
        } else {
            transformed = inner.run_middleware(&routes.middleware, Arc::clone(&event));
            transformed.as_deref()
        };
        let live_handlers: &[Arc<dyn EventHandler>] = match live_event {
            Some(_) => &targets.live,
            None => {
                StatsCounters::add(&inner.stats.dropped, 1);
                tracing::debug!(
                    event_id = %event.event_id,
                    correlation_id = %event.correlation_id,
                    sequence = event.sequence,
                    event_type = %event.event_type(),
                    "event dropped by middleware"
                );
                &[]
            }
        };

        let mut report = PublishReport {
            sequence: event.sequence,
            event_id: event.event_id,
            dropped: live_event.is_none(),
            handlers_run: live_handlers.len() + targets.raw.len(),
            failures: Vec::new(),
        };
        if report.handlers_run == 0 {
            return report;
        }
        let deliver = Deliver {
            inner,
            to_start: [
                (live_handlers, live_event.unwrap_or(&event)),
                (&targets.raw, &event),
            ],
            started: false,
            pending: Vec::new(),
            failures: Vec::new(),
            sleep: None,
        };
        // Building a disabled span still costs a tenth of a publish (the `log` fallback
        // looks at its fields): ask the level filter, one atomic load, first.
        report.failures = if tracing::enabled!(tracing::Level::DEBUG) {
            let span = tracing::debug_span!(
                "publish",
                event_id = %event.event_id,
                correlation_id = %event.correlation_id,
                sequence = event.sequence,
            );
            deliver.instrument(span).await
        } else {
            deliver.await
        };
        report
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
    fn add(
        this: &Arc<BusInner>,
        topic: Topic,
        raw: bool,
        handler: Arc<dyn EventHandler>,
    ) -> Subscription {
        let id = this.next_id.fetch_add(1, Ordering::Relaxed);
        let name = handler.name().to_owned();
        this.rebuild(|entries, _| {
            entries.push(Entry {
                id,
                topic,
                raw,
                handler,
            })
        });
        Subscription {
            bus: Arc::downgrade(this),
            id,
            topic,
            name,
        }
    }

    fn remove(&self, id: u64) -> bool {
        let mut found = false;
        self.rebuild(|entries, _| {
            let before = entries.len();
            entries.retain(|e| e.id != id);
            found = entries.len() != before;
        });
        found
    }

    /// Builds a new snapshot from a changed copy of the current one and swaps it in.
    fn rebuild(&self, change: impl FnOnce(&mut Vec<Entry>, &mut Vec<Arc<dyn Middleware>>)) {
        // A poisoned lock only means another writer panicked mid-change; the snapshot it
        // guards was never half-written (it is swapped in whole), so carry on.
        let _writer = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.routes.load();
        let mut entries = current.entries.clone();
        let mut middleware = current.middleware.clone();
        change(&mut entries, &mut middleware);
        self.routes
            .store(Arc::new(Routes::new(entries, middleware)));
    }

    fn run_middleware(
        &self,
        middleware: &[Arc<dyn Middleware>],
        mut event: Arc<EventEnvelope>,
    ) -> Option<Arc<EventEnvelope>> {
        for m in middleware {
            let input = Arc::clone(&event);
            match catch_unwind(AssertUnwindSafe(|| m.process(input))) {
                Ok(Some(next)) => event = next,
                Ok(None) => return None,
                Err(panic) => {
                    // Losing the event would leave caches stale; a broken middleware is
                    // skipped instead, loudly.
                    StatsCounters::add(&self.stats.middleware_panics, 1);
                    tracing::error!(
                        event_id = %event.event_id,
                        correlation_id = %event.correlation_id,
                        sequence = event.sequence,
                        event_type = %event.event_type(),
                        middleware = m.name(),
                        panic = %panic_message(&*panic),
                        "event middleware panicked; passing the event on unchanged"
                    );
                }
            }
        }
        Some(event)
    }

    fn record_failure(&self, handler: &str, event: &EventEnvelope, kind: &FailureKind) {
        match kind {
            FailureKind::Error(error) => {
                StatsCounters::add(&self.stats.handler_errors, 1);
                tracing::warn!(
                    event_id = %event.event_id,
                    correlation_id = %event.correlation_id,
                    sequence = event.sequence,
                    event_type = %event.event_type(),
                    handler,
                    error = %error,
                    "event handler failed"
                );
            }
            FailureKind::Panicked(panic) => {
                StatsCounters::add(&self.stats.handler_panics, 1);
                tracing::error!(
                    event_id = %event.event_id,
                    correlation_id = %event.correlation_id,
                    sequence = event.sequence,
                    event_type = %event.event_type(),
                    handler,
                    panic = %panic,
                    "event handler panicked"
                );
            }
            FailureKind::TimedOut(after) => {
                StatsCounters::add(&self.stats.handler_timeouts, 1);
                tracing::warn!(
                    event_id = %event.event_id,
                    correlation_id = %event.correlation_id,
                    sequence = event.sequence,
                    event_type = %event.event_type(),
                    handler,
                    timeout_ms = after.as_millis() as u64,
                    "event handler timed out and was stopped"
                );
            }
        }
    }
}

/// The future of one handler call, with panics turned into values.
pub(crate) type HandlerFuture<'a> =
    CatchUnwind<AssertUnwindSafe<BoxFuture<'a, Result<(), HandlerError>>>>;

/// Starts a handler on an event, turning a panic in its synchronous part into a failure too.
pub(crate) fn start_handler<'a>(
    handler: &'a dyn EventHandler,
    event: &'a EventEnvelope,
) -> Result<HandlerFuture<'a>, FailureKind> {
    catch_unwind(AssertUnwindSafe(|| handler.handle(event)))
        .map(|fut| AssertUnwindSafe(fut).catch_unwind())
        .map_err(|panic| FailureKind::Panicked(panic_message(&*panic)))
}

/// Turns what a finished handler future returned into a failure, if it failed.
pub(crate) fn outcome(
    result: Result<Result<(), HandlerError>, Box<dyn Any + Send>>,
) -> Result<(), FailureKind> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(FailureKind::Error(format!("{error:#}"))),
        Err(panic) => Err(FailureKind::Panicked(panic_message(&*panic))),
    }
}

/// The text of a panic payload (panics carry a `&str` or a `String` in practice).
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

/// A handler still working on an event inside a publish.
struct Call<'a> {
    handler: &'a dyn EventHandler,
    event: &'a EventEnvelope,
    future: HandlerFuture<'a>,
}

/// Runs the handlers of one publish concurrently in the publisher's own task, until all are
/// done or the time-out passes; resolves to the failures.
///
/// Built for the common case of handlers that finish on their first poll: each is polled
/// as soon as it is started and only those still pending are kept (so nothing is allocated
/// then), no task is spawned, and a timer is armed only when something is still pending
/// after the first round. A wake-up re-polls the pending calls, which is fine for the
/// handful of handlers an event has.
struct Deliver<'a> {
    inner: &'a BusInner,
    /// The live handlers with the event as the middleware left it, and the raw handlers
    /// with the event as published.
    to_start: [(&'a [Arc<dyn EventHandler>], &'a EventEnvelope); 2],
    started: bool,
    pending: Vec<Call<'a>>,
    failures: Vec<HandlerFailure>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<'a> Deliver<'a> {
    fn settle(
        inner: &BusInner,
        failures: &mut Vec<HandlerFailure>,
        handler: &dyn EventHandler,
        event: &EventEnvelope,
        result: Result<(), FailureKind>,
    ) {
        if let Err(kind) = result {
            inner.record_failure(handler.name(), event, &kind);
            failures.push(HandlerFailure {
                handler: handler.name().to_owned(),
                kind,
            });
        }
    }
}

impl Future for Deliver<'_> {
    type Output = Vec<HandlerFailure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let inner = this.inner;
        let failures = &mut this.failures;
        if !this.started {
            this.started = true;
            for (handlers, event) in this.to_start {
                for handler in handlers {
                    let handler = &**handler;
                    match start_handler(handler, event) {
                        Ok(mut future) => match Pin::new(&mut future).poll(cx) {
                            Poll::Ready(result) => {
                                Self::settle(inner, failures, handler, event, outcome(result))
                            }
                            Poll::Pending => this.pending.push(Call {
                                handler,
                                event,
                                future,
                            }),
                        },
                        Err(kind) => Self::settle(inner, failures, handler, event, Err(kind)),
                    }
                }
            }
        } else {
            this.pending
                .retain_mut(|call| match Pin::new(&mut call.future).poll(cx) {
                    Poll::Ready(result) => {
                        Self::settle(inner, failures, call.handler, call.event, outcome(result));
                        false
                    }
                    Poll::Pending => true,
                });
        }
        if this.pending.is_empty() {
            return Poll::Ready(std::mem::take(&mut this.failures));
        }
        let timeout = inner.config.handler_timeout;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        // Dropping a future cancels its handler at its current await point.
        for call in this.pending.drain(..) {
            let kind = FailureKind::TimedOut(timeout);
            Self::settle(
                inner,
                &mut this.failures,
                call.handler,
                call.event,
                Err(kind),
            );
        }
        Poll::Ready(std::mem::take(&mut this.failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        let from_str = std::panic::catch_unwind(|| panic!("boom")).unwrap_err();
        assert_eq!(panic_message(&*from_str), "boom");
        let from_string = std::panic::catch_unwind(|| panic!("{} {}", "formatted", 1)).unwrap_err();
        assert_eq!(panic_message(&*from_string), "formatted 1");
    }

    #[test]
    fn routes_list_typed_and_wildcard_handlers_for_each_type() {
        let h = crate::events::handler_fn("h", |_| async { Ok(()) });
        let entry = |id, topic, raw| Entry {
            id,
            topic,
            raw,
            handler: h.clone(),
        };
        let routes = Routes::new(
            vec![
                entry(1, Topic::Type(EventType::PersonalityCreated), false),
                entry(2, Topic::All, false),
                entry(3, Topic::All, true),
            ],
            Vec::new(),
        );
        let created = routes.targets(EventType::PersonalityCreated);
        assert_eq!((created.live.len(), created.raw.len()), (2, 1));
        let removed = routes.targets(EventType::PersonalityRemoved);
        assert_eq!((removed.live.len(), removed.raw.len()), (1, 1));
    }
}
