//! The in-process event bus: subscriptions by event type or `*`, middleware, and publishing
//! with isolation (a handler's error, panic or time-out never reaches the publisher or the
//! other handlers).
//!
//! Publishing is on every command's path, so it is built to cost little: the handler lists
//! are immutable snapshots swapped on (un)subscribe and read without a lock (and each thread
//! keeps the one it last used, so that a publish touches no shared reference count; see
//! `local`), handlers run concurrently inside the publisher's task (no task spawned per
//! handler), one `catch_unwind` covers all the handlers that finish on their first poll,
//! and a timer is armed only when some handler did not.

use std::any::Any;
use std::fmt;
use std::future::{poll_fn, Future};
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

mod local;

use self::local::PublishedCounter;
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
    /// Bumped after every change of `routes`: a thread's cached snapshot is current while
    /// the generation it was taken at is (see `local`).
    generation: AtomicU64,
    next_id: AtomicU64,
    /// `published` lives apart from the other counters: it is the one every publish
    /// changes, so it is kept per thread (see `local`).
    published: PublishedCounter,
    stats: StatsCounters,
}

impl Drop for BusInner {
    fn drop(&mut self) {
        // Threads that published on this bus keep a snapshot of it; this one, which often
        // is the only one, lets go of its own at once.
        self.forget_local();
    }
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
        // `by_type` starts with `EventType::ALL` in declaration order, so a type's
        // discriminant is its index; a linear scan over a handful of one-byte enums covers
        // the rest, and beats hashing.
        match self.by_type.get(event_type as usize) {
            Some((t, targets)) if *t == event_type => targets,
            _ => self
                .by_type
                .iter()
                .find(|(t, _)| *t == event_type)
                .map_or(&self.wildcard, |(_, targets)| targets),
        }
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
    /// A publish already under way may still deliver one last event. The bus lets go of the
    /// handler at once on this thread; another thread that published on the bus holds on to
    /// its last snapshot, handler included, until it publishes on the bus again or ends.
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
                generation: AtomicU64::new(0),
                next_id: AtomicU64::new(1),
                published: PublishedCounter::default(),
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
        BusStats {
            published: self.inner.published.total(),
            ..self.inner.stats.snapshot()
        }
    }

    /// Runs the middleware, then the event type's handlers and the wildcard handlers
    /// concurrently, and returns when all of them finished, failed or timed out.
    ///
    /// Call it after the event's transaction committed, one event after the other in
    /// sequence order. It never fails and never panics: failures are logged (with the event
    /// and correlation ids), counted in [`EventBus::stats`] and listed in the report.
    pub async fn publish(&self, event: Arc<EventEnvelope>) -> PublishReport {
        let inner = &*self.inner;
        // Owned for the whole publish, however the subscriptions change while handlers run;
        // usually the one this thread cached, which costs no atomic read-modify-write (see
        // `local`). Everything below is one async fn on purpose: a nested future for the
        // body costs a copy of its state and of the report.
        let snapshot = self.inner.checkout();
        let routes = &*snapshot.routes;
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
            inner.check_in(snapshot);
            return report;
        }
        let lists = [
            (live_handlers, live_event.unwrap_or(&event)),
            (&*targets.raw, &*event),
        ];
        // Building a disabled span still costs a tenth of a publish (the `log` fallback
        // looks at its fields): ask the level filter, one atomic load, first.
        let span = tracing::enabled!(tracing::Level::DEBUG).then(|| {
            tracing::debug_span!(
                "publish",
                event_id = %event.event_id,
                correlation_id = %event.correlation_id,
                sequence = event.sequence,
            )
        });
        let mut pending = Vec::new();
        poll_fn(|cx| {
            let _entered = span.as_ref().map(tracing::Span::enter);
            first_round(inner, &lists, cx, &mut pending, &mut report.failures);
            Poll::Ready(())
        })
        .await;
        if pending.is_empty() {
            // It borrows the snapshot, which goes back to the cache below.
            drop(pending);
        } else {
            let rest = Rest {
                inner,
                pending,
                failures: &mut report.failures,
                sleep: None,
            };
            match span {
                Some(span) => rest.instrument(span).await,
                None => rest.await,
            }
        }
        inner.check_in(snapshot);
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
        let writer = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.routes.load();
        let mut entries = current.entries.clone();
        let mut middleware = current.middleware.clone();
        change(&mut entries, &mut middleware);
        self.routes
            .store(Arc::new(Routes::new(entries, middleware)));
        // After the store: a publisher that sees the new generation loads the new routes.
        self.generation.fetch_add(1, Ordering::Release);
        drop(writer);
        // This thread's cached copy of the old snapshot is outdated now; don't let it keep
        // a removed handler alive until the next publish.
        self.forget_cached();
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

/// Records a handler's failure: logged, counted, and listed in the report.
fn settle(
    inner: &BusInner,
    failures: &mut Vec<HandlerFailure>,
    handler: &dyn EventHandler,
    event: &EventEnvelope,
    kind: FailureKind,
) {
    inner.record_failure(handler.name(), event, &kind);
    failures.push(HandlerFailure {
        handler: handler.name().to_owned(),
        kind,
    });
}

/// Starts every handler of one publish and polls each once, inside the publisher's poll;
/// the handlers still pending are left in `pending`, for [`Rest`].
///
/// Built for the common case of handlers that finish on their first poll: nothing is
/// allocated for them (beyond their own futures), and one `catch_unwind` covers the whole
/// round instead of two per handler. A panic, in `handle` or in the first poll, stops the
/// round at the handler that panicked; it is recorded and the round resumes after it.
fn first_round<'a>(
    inner: &BusInner,
    lists: &[(&'a [Arc<dyn EventHandler>], &'a EventEnvelope); 2],
    cx: &mut Context<'_>,
    pending: &mut Vec<Call<'a>>,
    failures: &mut Vec<HandlerFailure>,
) {
    // The next handler to start: `lists[list].0[index]`. Both are advanced before the
    // handler runs, so after a panic `index - 1` is the handler that panicked.
    let mut list = 0;
    let mut index = 0;
    loop {
        let round = catch_unwind(AssertUnwindSafe(|| {
            while let Some(&(handlers, event)) = lists.get(list) {
                while let Some(handler) = handlers.get(index) {
                    index += 1;
                    let handler = &**handler;
                    let mut future = handler.handle(event);
                    match future.as_mut().poll(cx) {
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(error)) => settle(
                            inner,
                            failures,
                            handler,
                            event,
                            FailureKind::Error(format!("{error:#}")),
                        ),
                        Poll::Pending => pending.push(Call {
                            handler,
                            event,
                            future: AssertUnwindSafe(future).catch_unwind(),
                        }),
                    }
                }
                list += 1;
                index = 0;
            }
        }));
        let Err(panic) = round else {
            return;
        };
        let panicked = lists
            .get(list)
            .and_then(|&(handlers, event)| Some((handlers.get(index.checked_sub(1)?)?, event)));
        if let Some((handler, event)) = panicked {
            let kind = FailureKind::Panicked(panic_message(&*panic));
            settle(inner, failures, &**handler, event, kind);
        }
    }
}

/// A handler still working on an event after the first round.
struct Call<'a> {
    handler: &'a dyn EventHandler,
    event: &'a EventEnvelope,
    future: HandlerFuture<'a>,
}

/// Waits for the handlers the first round left pending, in the publisher's own task (no
/// task is spawned), until all are done or the time-out passes.
///
/// Only built when some handler did not finish at once, which is also when the timer is
/// armed. A wake-up re-polls every pending call, which is fine for the handful of handlers
/// an event has.
struct Rest<'a, 'f> {
    inner: &'a BusInner,
    pending: Vec<Call<'a>>,
    failures: &'f mut Vec<HandlerFailure>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Future for Rest<'_, '_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let inner = this.inner;
        // The timer is armed on the first poll, right after the first round polled every
        // call: only later polls, after a wake-up, need to poll the calls again.
        if this.sleep.is_some() {
            let failures = &mut *this.failures;
            this.pending
                .retain_mut(|call| match Pin::new(&mut call.future).poll(cx) {
                    Poll::Ready(result) => {
                        if let Err(kind) = outcome(result) {
                            settle(inner, failures, call.handler, call.event, kind);
                        }
                        false
                    }
                    Poll::Pending => true,
                });
            if this.pending.is_empty() {
                return Poll::Ready(());
            }
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
            settle(inner, this.failures, call.handler, call.event, kind);
        }
        Poll::Ready(())
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
