//! Durable subscribers: named handlers with a checkpoint in the event log, which catch up
//! from the events table on start, retry failures with back-off, park what keeps failing as
//! dead letters, and can replay from any sequence.

mod dispatcher;
mod retry;

use std::fmt;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use dispatcher::{DispatchError, Dispatcher};
pub use retry::RetryPolicy;

use super::bus::{EventBus, Subscription};
use super::handler::{EventHandler, HandlerError, Topic};
use super::isolation::{panic_message, run_isolated, FailureKind};
use super::{EventEnvelope, EventLog, LogError};

/// Settings of a durable subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableConfig {
    /// Retries and back-off for failing events.
    pub retry: RetryPolicy,
    /// How often the in-memory checkpoint is written to the log (default 200 ms).
    pub flush_interval: Duration,
    /// How many events are read from the log at a time when catching up (default 256).
    pub batch_size: usize,
}

impl Default for DurableConfig {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            flush_interval: Duration::from_millis(200),
            batch_size: 256,
        }
    }
}

/// What a catch-up or a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CatchUpReport {
    /// Events handled successfully.
    pub handled: u64,
    /// Events parked as dead letters after their last attempt.
    pub parked: u64,
    /// Whether it stopped at a failing event and left it to the background worker.
    pub handed_over: bool,
    /// The checkpoint afterwards.
    pub checkpoint: i64,
}

/// What retrying dead letters did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetryReport {
    /// Dead letters tried.
    pub retried: usize,
    /// Dead letters whose event was handled this time, and so deleted.
    pub delivered: usize,
    /// Dead letters that failed again (they stay parked).
    pub failed: Vec<RetryFailure>,
}

impl RetryReport {
    fn merge(&mut self, other: RetryReport) {
        self.retried += other.retried;
        self.delivered += other.delivered;
        self.failed.extend(other.failed);
    }
}

/// A dead letter that failed again when retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryFailure {
    /// The dead letter's id.
    pub dead_letter_id: i64,
    /// The subscriber it belongs to.
    pub subscriber: String,
    /// The event's sequence.
    pub sequence: i64,
    /// Why it failed this time.
    pub error: String,
}

/// Where a durable subscriber stands, for the command line and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DurableStatus {
    /// The subscriber's name.
    pub name: String,
    /// The last sequence handled (in memory).
    pub checkpoint: i64,
    /// The last checkpoint written to the log.
    pub persisted_checkpoint: i64,
    /// The event being retried, with the attempts made so far, if any.
    pub retrying: Option<(i64, u32)>,
    /// Whether it was shut down.
    pub stopped: bool,
}

/// A named, checkpointed subscriber on an [`EventBus`]; cheap to clone (clones share it).
///
/// # Delivery
/// It reacts to the topics it was started with, but its checkpoint moves over every event in
/// the log: an event of another type counts as handled without calling the handler. So it
/// listens on the bus as a wildcard handler, which lets the checkpoint follow the live
/// events. When a published event is the next one after the checkpoint and nothing else is
/// in progress, it is handled *inline*, inside `publish`, so it is done before the command
/// answers. Anything else — a gap (an earlier event not yet handled), an inline failure, a
/// busy subscriber — is handed to the background worker, which reads the events table in
/// order from the checkpoint, retries each failing event with exponential back-off and
/// parks it as a dead letter after the last attempt. Inline and worker processing both hold
/// the cursor lock while a handler runs, and re-check the checkpoint under it, so in normal
/// operation every event is handled once and in order.
///
/// # Checkpoints
/// The checkpoint moves in memory as soon as an event is handled; the worker writes it to
/// the log every `flush_interval` and [`DurableSubscriber::shutdown`] writes the last one.
/// That keeps the command path free of a write; the price is that a crash re-delivers up to
/// `flush_interval` worth of events, which idempotent handlers absorb (at-least-once).
///
/// # Lifecycle
/// Start it with [`DurableSubscriber::start`] (or through a [`Dispatcher`]) and stop it with
/// [`DurableSubscriber::shutdown`], which writes the last checkpoint. Dropping the last
/// clone stops it too (no more live events, the worker writes the checkpoint as it ends),
/// but without waiting for that: prefer `shutdown`.
#[derive(Clone)]
pub struct DurableSubscriber {
    inner: Arc<SubscriberInner>,
}

struct SubscriberInner {
    shared: Arc<Shared>,
    subscription: Mutex<Option<Subscription>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for SubscriberInner {
    /// The last clone is gone without a shutdown: stop the same way, minus the wait. The
    /// worker writes the last checkpoint as it ends.
    fn drop(&mut self) {
        let subscription = self
            .subscription
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(subscription) = subscription {
            subscription.unsubscribe();
        }
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.stop.send_replace(true);
    }
}

/// The state the bus-side handler, the worker and the public methods share.
struct Shared {
    name: String,
    /// What the handler reacts to; other events count as handled without calling it.
    topics: Vec<Topic>,
    handler: Arc<dyn EventHandler>,
    log: Arc<dyn EventLog>,
    config: DurableConfig,
    handler_timeout: Duration,
    /// Held while a handler runs on this subscriber's behalf: serialises inline and worker
    /// processing so no event is handled twice or out of order.
    cursor: tokio::sync::Mutex<Cursor>,
    /// A copy of `cursor.checkpoint` for readers that must not wait for a running handler.
    checkpoint: AtomicI64,
    /// The last checkpoint written to the log; changed only under `flush_lock`.
    persisted: AtomicI64,
    /// Serialises checkpoint writes, so a lazy flush can't overwrite a replay's rewind.
    flush_lock: tokio::sync::Mutex<()>,
    last_flush: Mutex<Instant>,
    /// One reader of the log at a time (worker, catch-up, replay), so retries are counted
    /// once and a replay's rewind isn't raced by a stale batch.
    drain_lock: tokio::sync::Mutex<()>,
    /// Wakes the worker: there is something to read from the log. `notify_one` keeps a
    /// permit when the worker is busy, so a hand-over is never lost.
    wake: Notify,
    stopped: AtomicBool,
    stop: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct Cursor {
    /// The last sequence handled or parked.
    checkpoint: i64,
    /// The event after the checkpoint, when it failed at least once.
    failing: Option<Failing>,
}

#[derive(Debug)]
struct Failing {
    sequence: i64,
    attempts: u32,
    last_error: String,
    failed_at: Instant,
}

/// What happened to one event read from the log.
enum Step {
    Handled,
    Parked,
    /// The checkpoint moved under us (handled inline, or a replay): read again from it.
    Moved,
    /// It failed and retrying is left to the worker.
    HandedOver,
    /// The subscriber is shutting down.
    Stopped,
}

impl DurableSubscriber {
    /// Starts `handler` as a durable subscriber of `topics`, named after the handler: loads
    /// its checkpoint, subscribes to the bus, catches up from the log to its end, then
    /// starts the background worker. The handler time-out is the bus's.
    ///
    /// Catching up does not wait out back-offs: the first event that fails is left to the
    /// worker, so a broken handler can't hold up start-up. Fails only if the log can't be
    /// read; nothing stays subscribed then.
    pub async fn start(
        bus: &EventBus,
        log: Arc<dyn EventLog>,
        topics: &[Topic],
        handler: Arc<dyn EventHandler>,
        config: DurableConfig,
    ) -> Result<Self, LogError> {
        let timeout = bus.config().handler_timeout;
        let (shared, stop_rx) = Shared::load(log, topics, handler, config, timeout).await?;
        let from = shared.checkpoint.load(Ordering::Acquire);
        // Subscribe before catching up: an event committed meanwhile is either read by the
        // catch-up or handed to the worker, never missed. Every event, whatever `topics`
        // say: the checkpoint moves over all of them.
        let live = Arc::new(LiveHandler {
            shared: Arc::clone(&shared),
        });
        let subscription = bus.subscribe(Topic::All, live);
        match shared.drain(false).await {
            Ok(report) => {
                tracing::info!(
                    subscriber = %shared.name,
                    from,
                    handled = report.handled,
                    checkpoint = report.checkpoint,
                    handed_over = report.handed_over,
                    "durable subscriber started"
                );
            }
            Err(error) => {
                subscription.unsubscribe();
                shared.stopped.store(true, Ordering::Release);
                return Err(error.context(format!(
                    "durable subscriber \"{}\" could not catch up",
                    shared.name
                )));
            }
        }
        let worker = tokio::spawn(run_worker(Arc::clone(&shared), stop_rx));
        Ok(Self::assemble(shared, Some(subscription), Some(worker)))
    }

    /// Opens `handler`'s durable state without subscribing or starting a worker: for the
    /// command line, which replays events or retries dead letters in its own process while
    /// the bot keeps the live subscription. Nothing is handled until asked
    /// ([`Self::catch_up`], [`Self::replay_from`], [`Self::retry_dead_letters`]).
    pub async fn open(
        log: Arc<dyn EventLog>,
        topics: &[Topic],
        handler: Arc<dyn EventHandler>,
        config: DurableConfig,
        handler_timeout: Duration,
    ) -> Result<Self, LogError> {
        let (shared, _stop_rx) =
            Shared::load(log, topics, handler, config, handler_timeout).await?;
        Ok(Self::assemble(shared, None, None))
    }

    fn assemble(
        shared: Arc<Shared>,
        subscription: Option<Subscription>,
        worker: Option<JoinHandle<()>>,
    ) -> Self {
        Self {
            inner: Arc::new(SubscriberInner {
                shared,
                subscription: Mutex::new(subscription),
                worker: Mutex::new(worker),
            }),
        }
    }

    /// The subscriber's name (its handler's), which keys its checkpoint and dead letters.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// The last sequence handled (in memory; the log may lag by up to `flush_interval`).
    pub fn checkpoint(&self) -> i64 {
        self.inner.shared.checkpoint.load(Ordering::Acquire)
    }

    /// Where the subscriber stands.
    pub fn status(&self) -> DurableStatus {
        let shared = &self.inner.shared;
        // `try_lock`: a status must not wait for a running handler; the retry is then unknown.
        let retrying = shared
            .cursor
            .try_lock()
            .ok()
            .and_then(|c| c.failing.as_ref().map(|f| (f.sequence, f.attempts)));
        DurableStatus {
            name: shared.name.clone(),
            checkpoint: self.checkpoint(),
            persisted_checkpoint: shared.persisted.load(Ordering::Acquire),
            retrying,
            stopped: shared.is_stopped(),
        }
    }

    /// Handles everything after the checkpoint up to the end of the log in the caller's
    /// task, retrying with back-off and parking what keeps failing.
    pub async fn catch_up(&self) -> Result<CatchUpReport, LogError> {
        let report = self.inner.shared.drain(true).await?;
        // Admin work is rare: write the checkpoint now rather than leave it to a worker a
        // command-line process doesn't have.
        self.inner.shared.flush().await?;
        Ok(report)
    }

    /// Re-delivers every event from `sequence` on (at-least-once: handlers are idempotent):
    /// moves the checkpoint back to `sequence - 1`, writes it at once so a crash resumes the
    /// replay, and processes to the end of the log in the caller's task.
    ///
    /// A `sequence` past the next unhandled event replays nothing and only catches up; the
    /// checkpoint never moves forward over events that were not handled. On a subscriber
    /// that was shut down, only the rewind happens: the next start replays.
    pub async fn replay_from(&self, sequence: i64) -> Result<CatchUpReport, LogError> {
        let shared = &self.inner.shared;
        let _drainer = shared.drain_lock.lock().await;
        {
            let mut cursor = shared.cursor.lock().await;
            let target = (sequence - 1).clamp(0, cursor.checkpoint);
            let _flushing = shared.flush_lock.lock().await;
            shared
                .log
                .save_checkpoint(&shared.name, target, true)
                .await?;
            shared.persisted.store(target, Ordering::Release);
            cursor.checkpoint = target;
            cursor.failing = None;
            shared.checkpoint.store(target, Ordering::Release);
            tracing::info!(subscriber = %shared.name, from = target + 1, "replaying events");
        }
        let report = shared.drain_locked(true).await?;
        shared.flush().await?;
        Ok(report)
    }

    /// Tries each of this subscriber's dead letters once more, in order; those handled are
    /// deleted, the others stay parked. The checkpoint doesn't move.
    pub async fn retry_dead_letters(&self) -> Result<RetryReport, LogError> {
        let shared = &self.inner.shared;
        let mut report = RetryReport::default();
        for letter in shared.log.dead_letters(Some(&shared.name)).await? {
            report.retried += 1;
            let result = match shared.log.event(letter.sequence).await? {
                Some(event) => shared.run(&event).await.map_err(|kind| kind.to_string()),
                None => Err(format!("event {} is no longer in the log", letter.sequence)),
            };
            match result {
                Ok(()) => {
                    shared.log.delete_dead_letter(letter.id).await?;
                    report.delivered += 1;
                    tracing::info!(
                        subscriber = %shared.name,
                        sequence = letter.sequence,
                        event_id = %letter.event_id,
                        dead_letter_id = letter.id,
                        "dead letter delivered on retry"
                    );
                }
                Err(error) => {
                    tracing::warn!(
                        subscriber = %shared.name,
                        sequence = letter.sequence,
                        event_id = %letter.event_id,
                        dead_letter_id = letter.id,
                        error = %error,
                        "dead letter failed again; it stays parked"
                    );
                    report.failed.push(RetryFailure {
                        dead_letter_id: letter.id,
                        subscriber: shared.name.clone(),
                        sequence: letter.sequence,
                        error,
                    });
                }
            }
        }
        Ok(report)
    }

    /// Waits until the checkpoint reaches the log's last sequence; `Ok(false)` if `timeout`
    /// passed first.
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<bool, LogError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.checkpoint() >= self.inner.shared.log.last_sequence().await? {
                return Ok(true);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            // Polling keeps the hot path free of a notification per event; this is only
            // for tests and the command line.
            tokio::time::sleep_until(deadline.min(now + Duration::from_millis(5))).await;
        }
    }

    /// Writes the in-memory checkpoint to the log now, if it moved.
    pub async fn flush(&self) -> Result<(), LogError> {
        self.inner.shared.flush().await
    }

    /// Stops the subscriber: no more live events, the worker ends (an event waiting for its
    /// next attempt is left for the next start), and the last checkpoint is written.
    pub async fn shutdown(&self) -> Result<(), LogError> {
        let shared = &self.inner.shared;
        let subscription = lock(&self.inner.subscription).take();
        if let Some(subscription) = subscription {
            subscription.unsubscribe();
        }
        shared.stopped.store(true, Ordering::Release);
        shared.stop.send_replace(true);
        let worker = lock(&self.inner.worker).take();
        if let Some(worker) = worker {
            if let Err(error) = worker.await {
                tracing::error!(subscriber = %shared.name, %error, "durable worker ended abnormally");
            }
        }
        // Wait for a handler still running inline, so its checkpoint is in the flush.
        drop(shared.cursor.lock().await);
        shared.flush().await?;
        tracing::info!(
            subscriber = %shared.name,
            checkpoint = shared.checkpoint.load(Ordering::Acquire),
            "durable subscriber stopped"
        );
        Ok(())
    }
}

impl fmt::Debug for DurableSubscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableSubscriber")
            .field("name", &self.name())
            .field("checkpoint", &self.checkpoint())
            .finish_non_exhaustive()
    }
}

/// Locks a std mutex that guards only an `Option` handle, which a panic can't leave
/// half-changed, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Builds the state from the checkpoint stored in the log.
    async fn load(
        log: Arc<dyn EventLog>,
        topics: &[Topic],
        handler: Arc<dyn EventHandler>,
        config: DurableConfig,
        handler_timeout: Duration,
    ) -> Result<(Arc<Self>, watch::Receiver<bool>), LogError> {
        let name = handler.name().to_owned();
        let checkpoint = log.checkpoint(&name).await?;
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Self {
            name,
            topics: topics.to_vec(),
            handler,
            log,
            config,
            handler_timeout,
            cursor: tokio::sync::Mutex::new(Cursor {
                checkpoint,
                failing: None,
            }),
            checkpoint: AtomicI64::new(checkpoint),
            persisted: AtomicI64::new(checkpoint),
            flush_lock: tokio::sync::Mutex::new(()),
            last_flush: Mutex::new(Instant::now()),
            drain_lock: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
            stop,
        });
        Ok((shared, stop_rx))
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn hand_over(&self) {
        self.wake.notify_one();
    }

    /// Whether the handler is called for `event`.
    fn reacts_to(&self, event: &EventEnvelope) -> bool {
        let event_type = event.event_type();
        self.topics.iter().any(|topic| topic.matches(event_type))
    }

    fn advance(&self, cursor: &mut Cursor, sequence: i64) {
        cursor.checkpoint = sequence;
        cursor.failing = None;
        self.checkpoint.store(sequence, Ordering::Release);
    }

    /// Runs the handler once on an event, bounded by the time-out, panics caught; an event
    /// outside the subscriber's topics succeeds without calling it.
    async fn run(&self, event: &EventEnvelope) -> Result<(), FailureKind> {
        if !self.reacts_to(event) {
            return Ok(());
        }
        run_isolated(&*self.handler, event, self.handler_timeout).await
    }

    async fn drain(&self, retry: bool) -> Result<CatchUpReport, LogError> {
        let _drainer = self.drain_lock.lock().await;
        self.drain_locked(retry).await
    }

    /// Handles the log from the checkpoint to its end. The caller holds `drain_lock`.
    async fn drain_locked(&self, retry: bool) -> Result<CatchUpReport, LogError> {
        let mut report = CatchUpReport::default();
        'read: while !self.is_stopped() {
            let from = self.checkpoint.load(Ordering::Acquire);
            let batch = self
                .log
                .events_after(from, self.config.batch_size.max(1))
                .await?;
            if batch.is_empty() {
                break;
            }
            let mut previous = from;
            for event in &batch {
                if self.is_stopped() {
                    break 'read;
                }
                match self.deliver(event, previous, retry).await? {
                    Step::Handled => report.handled += 1,
                    Step::Parked => report.parked += 1,
                    Step::Moved => continue 'read,
                    Step::HandedOver => {
                        report.handed_over = true;
                        break 'read;
                    }
                    Step::Stopped => break 'read,
                }
                previous = event.sequence;
                self.flush_if_due().await;
            }
        }
        report.checkpoint = self.checkpoint.load(Ordering::Acquire);
        Ok(report)
    }

    /// Handles one event read from the log after `previous`; when `retry`, retries it with
    /// back-off and parks it after the last attempt.
    async fn deliver(
        &self,
        event: &EventEnvelope,
        previous: i64,
        retry: bool,
    ) -> Result<Step, LogError> {
        let policy = self.config.retry;
        loop {
            let mut cursor = self.cursor.lock().await;
            if cursor.checkpoint != previous {
                return Ok(Step::Moved);
            }
            let failing = cursor
                .failing
                .as_ref()
                .filter(|f| f.sequence == event.sequence);
            let made = failing.map_or(0, |f| f.attempts);
            if made >= policy.max_attempts() {
                let error = failing.map_or_else(String::new, |f| f.last_error.clone());
                // Parking under the cursor lock keeps the order: nothing after this event
                // is handled before it is parked.
                self.log
                    .park_dead_letter(&self.name, event, made, &error)
                    .await?;
                self.advance(&mut cursor, event.sequence);
                tracing::error!(
                    subscriber = %self.name,
                    event_id = %event.event_id,
                    correlation_id = %event.correlation_id,
                    sequence = event.sequence,
                    event_type = %event.event_type(),
                    attempts = made,
                    error = %error,
                    "event parked as a dead letter after its last attempt"
                );
                return Ok(Step::Parked);
            }
            if let Some(failing) = failing {
                if !retry {
                    drop(cursor);
                    self.hand_over();
                    return Ok(Step::HandedOver);
                }
                // The back-off counts from the failure, wherever it happened (inline or
                // here). The lock is released meanwhile: live events see the gap and leave
                // themselves to this drain.
                let due = failing.failed_at + policy.delay_after(made);
                if Instant::now() < due {
                    drop(cursor);
                    let mut stop = self.stop.subscribe();
                    tokio::select! {
                        () = tokio::time::sleep_until(due.into()) => {}
                        () = stopped(&mut stop) => return Ok(Step::Stopped),
                    }
                    continue;
                }
            }
            match self.run(event).await {
                Ok(()) => {
                    if made > 0 {
                        tracing::info!(
                            subscriber = %self.name,
                            event_id = %event.event_id,
                            correlation_id = %event.correlation_id,
                            sequence = event.sequence,
                            attempts = made + 1,
                            "event handled after retrying"
                        );
                    }
                    self.advance(&mut cursor, event.sequence);
                    return Ok(Step::Handled);
                }
                Err(kind) => {
                    let attempts = made + 1;
                    tracing::warn!(
                        subscriber = %self.name,
                        event_id = %event.event_id,
                        correlation_id = %event.correlation_id,
                        sequence = event.sequence,
                        event_type = %event.event_type(),
                        attempt = attempts,
                        of = policy.max_attempts(),
                        error = %kind,
                        "durable handler failed"
                    );
                    cursor.failing = Some(Failing {
                        sequence: event.sequence,
                        attempts,
                        last_error: kind.to_string(),
                        failed_at: Instant::now(),
                    });
                }
            }
            if !retry {
                drop(cursor);
                self.hand_over();
                return Ok(Step::HandedOver);
            }
        }
    }

    /// Writes the checkpoint if it moved since the last write.
    async fn flush(&self) -> Result<(), LogError> {
        let _flushing = self.flush_lock.lock().await;
        *lock(&self.last_flush) = Instant::now();
        let checkpoint = self.checkpoint.load(Ordering::Acquire);
        if checkpoint == self.persisted.load(Ordering::Acquire) {
            return Ok(());
        }
        self.log
            .save_checkpoint(&self.name, checkpoint, false)
            .await?;
        self.persisted.store(checkpoint, Ordering::Release);
        Ok(())
    }

    /// Flushes during a long catch-up too, so a crash in it doesn't restart from scratch.
    async fn flush_if_due(&self) {
        let due = lock(&self.last_flush).elapsed() >= self.config.flush_interval;
        if due {
            self.flush_logged().await;
        }
    }

    /// Flushes where nobody waits for the outcome: a failure is logged and the next flush
    /// tries again.
    async fn flush_logged(&self) {
        if let Err(error) = self.flush().await {
            tracing::warn!(
                subscriber = %self.name,
                error = %format!("{error:#}"),
                "could not write the checkpoint; will try again"
            );
        }
    }
}

/// Resolves once the subscriber is told to stop (at once if it already was).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone with the subscriber: stopping is right then too.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// The background worker: drains the log when woken, flushes the checkpoint on a timer.
async fn run_worker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut flush = tokio::time::interval(shared.config.flush_interval);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut log_failures: u32 = 0;
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            () = shared.wake.notified() => {
                match shared.drain(true).await {
                    Ok(_) => log_failures = 0,
                    Err(error) => {
                        // The log is unreadable: back off like a failing handler, then
                        // try again from the checkpoint.
                        log_failures = log_failures.saturating_add(1);
                        let delay = shared.config.retry.delay_after(log_failures);
                        tracing::error!(
                            subscriber = %shared.name,
                            error = %format!("{error:#}"),
                            retry_in_ms = delay.as_millis() as u64,
                            "durable subscriber could not read the event log"
                        );
                        tokio::select! {
                            () = tokio::time::sleep(delay) => shared.hand_over(),
                            () = stopped(&mut stop) => break,
                        }
                    }
                }
            }
            _ = flush.tick() => shared.flush_logged().await,
        }
    }
    // Also when the subscriber was dropped without a shutdown, nobody else would write it.
    shared.flush_logged().await;
}

/// The durable subscriber's handler on the bus: handles the next event inline, leaves
/// everything else to the worker.
struct LiveHandler {
    shared: Arc<Shared>,
}

/// Wakes the worker when dropped unless disarmed: if the bus stops the inline handler at
/// its time-out (dropping its future) or it fails, the worker takes over the event.
struct HandOverOnDrop<'a> {
    shared: &'a Shared,
    armed: bool,
}

impl Drop for HandOverOnDrop<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.hand_over();
        }
    }
}

#[async_trait]
impl EventHandler for LiveHandler {
    fn name(&self) -> &str {
        &self.shared.name
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let shared = &*self.shared;
        if shared.is_stopped() {
            // Not handled, not lost: the next start catches up from the checkpoint.
            return Ok(());
        }
        let mut guard = HandOverOnDrop {
            shared,
            armed: true,
        };
        // Never wait for the lock on the command path: whoever holds it (the worker, or
        // another publish) reads the log to its end, and the hand-over wakes the worker.
        let Ok(mut cursor) = shared.cursor.try_lock() else {
            return Ok(());
        };
        if event.sequence <= cursor.checkpoint {
            guard.armed = false;
            return Ok(());
        }
        if event.sequence != cursor.checkpoint + 1 || cursor.failing.is_some() {
            return Ok(());
        }
        // No time-out here: the bus bounds this whole call, and stopping it hands the event
        // over (see `HandOverOnDrop`).
        let result = if shared.reacts_to(event) {
            AssertUnwindSafe(async { shared.handler.handle(event).await })
                .catch_unwind()
                .await
        } else {
            Ok(Ok(()))
        };
        match result {
            Ok(Ok(())) => {
                shared.advance(&mut cursor, event.sequence);
                guard.armed = false;
                Ok(())
            }
            Ok(Err(error)) => {
                cursor.failing = Some(Failing {
                    sequence: event.sequence,
                    attempts: 1,
                    last_error: format!("{error:#}"),
                    failed_at: Instant::now(),
                });
                Err(error.context(format!(
                    "durable subscriber \"{}\" will retry the event in the background",
                    shared.name
                )))
            }
            Err(panic) => {
                cursor.failing = Some(Failing {
                    sequence: event.sequence,
                    attempts: 1,
                    last_error: format!("panicked: {}", panic_message(&*panic)),
                    failed_at: Instant::now(),
                });
                drop(cursor);
                drop(guard);
                // Re-raised so the bus counts and logs it as the panic it was.
                resume_unwind(panic)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compile-time only (never called): the bot runs these in spawned tasks, so their
    /// futures must be `Send`.
    fn _futures_are_send(
        bus: &EventBus,
        subscriber: &DurableSubscriber,
        dispatcher: &Dispatcher,
        log: Arc<dyn EventLog>,
        handler: Arc<dyn EventHandler>,
        event: Arc<EventEnvelope>,
    ) {
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&bus.publish(event));
        assert_send(&DurableSubscriber::start(
            bus,
            log,
            &[Topic::All],
            handler.clone(),
            DurableConfig::default(),
        ));
        assert_send(&subscriber.replay_from(1));
        assert_send(&subscriber.retry_dead_letters());
        assert_send(&subscriber.shutdown());
        assert_send(&dispatcher.register(&[Topic::All], handler));
        assert_send(&dispatcher.retry_dead_letters(None));
        assert_send(&dispatcher.shutdown_all());
    }

    #[test]
    fn the_default_settings_are_the_documented_ones() {
        let config = DurableConfig::default();
        assert_eq!(config.retry.attempts, 5);
        assert_eq!(config.retry.base_delay, Duration::from_millis(100));
        assert_eq!(config.retry.max_delay, Duration::from_secs(5));
        assert_eq!(config.flush_interval, Duration::from_millis(200));
    }
}
