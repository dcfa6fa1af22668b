//! Durable subscribers: catch-up from the checkpoint, once-and-in-order delivery, topics,
//! retries with back-off, dead letters, replay, lazy checkpoints, and the dispatcher.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use personae::domain::{
    Alias, DisplayName, DomainEvent, EventType, PersonalityId, PersonalityName,
};
use personae::events::{
    handler_fn, BusConfig, DispatchError, Dispatcher, DurableConfig, DurableSubscriber, EventBus,
    EventEnvelope, EventHandler, EventLog, RetryPolicy, Topic, SCHEMA_VERSION,
};
use personae_testkit::memory_log::InMemoryEventLog;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// Every event: what most subscribers here react to.
const ALL: &[Topic] = &[Topic::All];

fn envelope(correlation_id: &str) -> EventEnvelope {
    EventEnvelope {
        sequence: 0,
        event_id: uuid::Uuid::now_v7(),
        aggregate_id: PersonalityId::new().into(),
        aggregate_version: 2,
        occurred_at: Utc::now(),
        actor: "user:42".into(),
        correlation_id: correlation_id.into(),
        causation_id: None,
        schema_version: SCHEMA_VERSION,
        event: DomainEvent::PersonalityAliasAdded {
            alias: Alias::parse("buddy").unwrap(),
        },
    }
}

/// An event of another type than [`envelope`]'s.
fn removal(correlation_id: &str) -> EventEnvelope {
    EventEnvelope {
        event: DomainEvent::PersonalityRemoved {
            name: PersonalityName::parse("friend").unwrap(),
            display_name: DisplayName::parse("Friend").unwrap(),
            aliases: vec![],
        },
        ..envelope(correlation_id)
    }
}

/// Tiny delays, so retries take milliseconds; checkpoints are flushed only when asked unless
/// a test says otherwise.
fn config(attempts: u32) -> DurableConfig {
    DurableConfig {
        retry: RetryPolicy {
            attempts,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        flush_interval: Duration::from_secs(3600),
        batch_size: 4,
    }
}

fn bus() -> EventBus {
    EventBus::new(BusConfig {
        handler_timeout: Duration::from_millis(200),
    })
}

/// Appends an event to the log (the commit) and publishes it (after the commit).
async fn commit_and_publish(bus: &EventBus, log: &InMemoryEventLog, correlation_id: &str) -> i64 {
    let event = log.append(envelope(correlation_id));
    bus.publish(event.clone()).await;
    event.sequence
}

/// A handler recording the sequences it handled, in order.
struct Recorder {
    seen: Arc<Mutex<Vec<i64>>>,
}

impl Recorder {
    fn new(name: &str) -> (Arc<dyn EventHandler>, Self) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let handler = handler_fn(name, move |event| {
            sink.lock().unwrap().push(event.sequence);
            async { Ok(()) }
        });
        (handler, Self { seen })
    }

    fn seen(&self) -> Vec<i64> {
        self.seen.lock().unwrap().clone()
    }
}

/// A handler that fails on `sequence` while `broken` is set, recording each attempt's time.
struct Flaky {
    broken: Arc<AtomicBool>,
    failures_left: Arc<AtomicU32>,
    attempts: Arc<Mutex<Vec<(i64, Instant)>>>,
    handled: Arc<Mutex<Vec<i64>>>,
}

impl Flaky {
    /// Fails on `sequence` `failures` times (or forever while `broken`), succeeds otherwise.
    fn new(name: &str, sequence: i64, failures: u32) -> (Arc<dyn EventHandler>, Self) {
        let flaky = Self {
            broken: Arc::new(AtomicBool::new(false)),
            failures_left: Arc::new(AtomicU32::new(failures)),
            attempts: Arc::new(Mutex::new(Vec::new())),
            handled: Arc::new(Mutex::new(Vec::new())),
        };
        let (broken, left, attempts, handled) = (
            flaky.broken.clone(),
            flaky.failures_left.clone(),
            flaky.attempts.clone(),
            flaky.handled.clone(),
        );
        let handler = handler_fn(name, move |event| {
            let seq = event.sequence;
            let result = if seq == sequence {
                attempts.lock().unwrap().push((seq, Instant::now()));
                let failing = broken.load(Ordering::SeqCst)
                    || left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                if failing {
                    Err(anyhow::anyhow!("downstream unavailable for {seq}"))
                } else {
                    Ok(())
                }
            } else {
                Ok(())
            };
            if result.is_ok() {
                handled.lock().unwrap().push(seq);
            }
            async move { result }
        });
        (handler, flaky)
    }

    fn handled(&self) -> Vec<i64> {
        self.handled.lock().unwrap().clone()
    }

    fn attempt_times(&self) -> Vec<Instant> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .map(|(_, t)| *t)
            .collect()
    }
}

async fn caught_up(subscriber: &DurableSubscriber) {
    assert!(
        subscriber.wait_caught_up(WAIT).await.unwrap(),
        "{:?} did not catch up: {:?}",
        subscriber,
        subscriber.status()
    );
}

#[tokio::test]
async fn live_events_are_handled_once_in_order_and_before_publish_returns() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("audit");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();

    for i in 1..=20 {
        let sequence = commit_and_publish(&bus, &log, "c").await;
        // Inline delivery: done by the time publish returned.
        assert_eq!(recorder.seen().last(), Some(&sequence), "event {i}");
        assert_eq!(subscriber.checkpoint(), sequence);
    }

    caught_up(&subscriber).await;
    assert_eq!(recorder.seen(), (1..=20).collect::<Vec<_>>());
    subscriber.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_still_get_each_event_once_and_in_order() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("audit");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();

    // Commits are ordered, but their publishes race each other.
    let events: Vec<_> = (0..200).map(|_| log.append(envelope("c"))).collect();
    let tasks: Vec<_> = events
        .chunks(50)
        .map(|chunk| {
            let bus = bus.clone();
            let chunk = chunk.to_vec();
            tokio::spawn(async move {
                for event in chunk.into_iter().rev() {
                    bus.publish(event).await;
                }
            })
        })
        .collect();
    for task in tasks {
        timeout(WAIT, task).await.unwrap().unwrap();
    }

    caught_up(&subscriber).await;
    assert_eq!(recorder.seen(), (1..=200).collect::<Vec<_>>());
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_new_subscriber_catches_up_from_the_checkpoint_after_a_restart() {
    let log = Arc::new(InMemoryEventLog::new());
    let bus = bus();
    let (handler, first) = Recorder::new("notifications");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();
    for _ in 0..5 {
        commit_and_publish(&bus, &log, "before").await;
    }
    subscriber.shutdown().await.unwrap();
    assert_eq!(first.seen(), vec![1, 2, 3, 4, 5]);

    // Committed while the bot was down (or crashed between commit and publish).
    for _ in 0..3 {
        log.append(envelope("while-down"));
    }

    let bus = self::bus();
    let (handler, second) = Recorder::new("notifications");
    let restarted = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();
    // Caught up before `start` returned.
    assert_eq!(second.seen(), vec![6, 7, 8]);
    assert_eq!(restarted.checkpoint(), 8);

    commit_and_publish(&bus, &log, "after").await;
    assert_eq!(second.seen(), vec![6, 7, 8, 9]);
    restarted.shutdown().await.unwrap();
}

#[tokio::test]
async fn live_events_outside_the_topics_move_the_checkpoint_without_calling_the_handler() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("cleanup");
    let removals = [Topic::Type(EventType::PersonalityRemoved)];
    let subscriber = DurableSubscriber::start(&bus, log.clone(), &removals, handler, config(3))
        .await
        .unwrap();

    for (expected, event) in [envelope("c"), removal("c"), envelope("c")]
        .into_iter()
        .enumerate()
    {
        let event = log.append(event);
        bus.publish(event).await;
        // Inline, whether the handler was called or not.
        assert_eq!(subscriber.checkpoint(), expected as i64 + 1);
    }

    assert_eq!(recorder.seen(), vec![2]);
    subscriber.shutdown().await.unwrap();
    assert_eq!(log.checkpoint("cleanup").await.unwrap(), 3);
}

#[tokio::test]
async fn catch_up_and_replay_call_the_handler_only_for_its_topics() {
    let log = Arc::new(InMemoryEventLog::new());
    for event in [removal("c"), envelope("c"), envelope("c"), removal("c")] {
        log.append(event);
    }
    let bus = bus();
    let (handler, recorder) = Recorder::new("cleanup");
    let removals = [Topic::Type(EventType::PersonalityRemoved)];
    let subscriber = DurableSubscriber::start(&bus, log.clone(), &removals, handler, config(3))
        .await
        .unwrap();
    assert_eq!(recorder.seen(), vec![1, 4]);
    assert_eq!(subscriber.checkpoint(), 4);

    let replayed = subscriber.replay_from(2).await.unwrap();

    // Skipped events count as handled: the checkpoint moves over them all the same.
    assert_eq!(replayed.handled, 3);
    assert_eq!(replayed.checkpoint, 4);
    assert_eq!(recorder.seen(), vec![1, 4, 4]);
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_gap_in_the_published_events_is_filled_from_the_log_in_order() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("audit");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();

    commit_and_publish(&bus, &log, "c").await;
    log.append(envelope("never-published"));
    log.append(envelope("never-published"));
    commit_and_publish(&bus, &log, "c").await;

    caught_up(&subscriber).await;
    assert_eq!(recorder.seen(), vec![1, 2, 3, 4]);
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn holes_in_the_sequence_numbers_are_skipped() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("audit");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();

    commit_and_publish(&bus, &log, "c").await;
    let mut later = envelope("c");
    later.sequence = 5;
    let later = log.insert(later).unwrap();
    bus.publish(later).await;

    caught_up(&subscriber).await;
    assert_eq!(recorder.seen(), vec![1, 5]);
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handler_failing_a_few_times_is_retried_with_back_off_and_delivered() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, flaky) = Flaky::new("webhook", 2, 3);
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(5))
        .await
        .unwrap();

    for _ in 0..3 {
        commit_and_publish(&bus, &log, "c").await;
    }

    caught_up(&subscriber).await;
    // Event 3 waited for event 2's retries: still in order.
    assert_eq!(flaky.handled(), vec![1, 2, 3]);
    let times = flaky.attempt_times();
    assert_eq!(times.len(), 4, "three failures, then the success");
    // Back-off after the n-th failure: 5 ms, 10 ms, 20 ms.
    for (n, pair) in times.windows(2).enumerate() {
        let waited = pair[1] - pair[0];
        let expected = Duration::from_millis(5 << n).min(Duration::from_millis(20));
        assert!(waited >= expected, "wait {n}: {waited:?} < {expected:?}");
    }
    assert!(log.dead_letters(None).await.unwrap().is_empty());
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handler_that_keeps_failing_parks_a_dead_letter_and_the_subscriber_moves_on() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, flaky) = Flaky::new("webhook", 2, 0);
    flaky.broken.store(true, Ordering::SeqCst);
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();

    let mut sequences = Vec::new();
    for _ in 0..4 {
        sequences.push(commit_and_publish(&bus, &log, "corr-dead").await);
    }

    caught_up(&subscriber).await;
    assert_eq!(flaky.handled(), vec![1, 3, 4]);
    assert_eq!(
        flaky.attempt_times().len(),
        3,
        "exactly the configured attempts"
    );
    let letters = log.dead_letters(Some("webhook")).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].sequence, 2);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(
        letters[0].event_type,
        EventType::PersonalityAliasAdded.as_str()
    );
    assert!(
        letters[0]
            .last_error
            .contains("downstream unavailable for 2"),
        "{}",
        letters[0].last_error
    );
    assert_eq!(subscriber.checkpoint(), 4);
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn dead_letters_are_delivered_when_retried_after_the_handler_is_fixed() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, flaky) = Flaky::new("webhook", 1, 0);
    flaky.broken.store(true, Ordering::SeqCst);
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(2))
        .await
        .unwrap();
    commit_and_publish(&bus, &log, "c").await;
    commit_and_publish(&bus, &log, "c").await;
    caught_up(&subscriber).await;
    assert_eq!(log.dead_letters(None).await.unwrap().len(), 1);

    let still_broken = subscriber.retry_dead_letters().await.unwrap();
    assert_eq!((still_broken.retried, still_broken.delivered), (1, 0));
    assert_eq!(still_broken.failed[0].sequence, 1);
    assert_eq!(log.dead_letters(None).await.unwrap().len(), 1);

    flaky.broken.store(false, Ordering::SeqCst);
    let fixed = subscriber.retry_dead_letters().await.unwrap();

    assert_eq!((fixed.retried, fixed.delivered), (1, 1));
    assert!(fixed.failed.is_empty());
    assert!(log.dead_letters(None).await.unwrap().is_empty());
    assert_eq!(flaky.handled(), vec![2, 1]);
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn replay_from_a_sequence_delivers_those_events_again_in_order() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("search-index");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();
    for _ in 0..5 {
        commit_and_publish(&bus, &log, "c").await;
    }

    let report = subscriber.replay_from(3).await.unwrap();

    assert_eq!(report.handled, 3);
    assert_eq!(report.checkpoint, 5);
    assert_eq!(recorder.seen(), vec![1, 2, 3, 4, 5, 3, 4, 5]);
    commit_and_publish(&bus, &log, "c").await;
    assert_eq!(recorder.seen().last(), Some(&6));
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn replay_never_skips_events_that_were_not_handled() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("search-index");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();
    commit_and_publish(&bus, &log, "c").await;

    let report = subscriber.replay_from(100).await.unwrap();

    assert_eq!(report.handled, 0);
    assert_eq!(subscriber.checkpoint(), 1);
    assert_eq!(recorder.seen(), vec![1]);
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn checkpoints_are_written_lazily_and_on_shutdown() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, _recorder) = Recorder::new("audit");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();

    for _ in 0..10 {
        commit_and_publish(&bus, &log, "c").await;
    }

    // Handled, but the command path wrote nothing.
    assert_eq!(subscriber.checkpoint(), 10);
    assert_eq!(log.checkpoint("audit").await.unwrap(), 0);
    assert_eq!(log.checkpoint_writes(), 0);

    subscriber.shutdown().await.unwrap();

    assert_eq!(log.checkpoint("audit").await.unwrap(), 10);
    assert_eq!(log.checkpoint_writes(), 1);
    assert_eq!(subscriber.status().persisted_checkpoint, 10);
    assert!(subscriber.status().stopped);
}

#[tokio::test]
async fn the_worker_flushes_the_checkpoint_every_interval() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, _recorder) = Recorder::new("audit");
    let config = DurableConfig {
        flush_interval: Duration::from_millis(20),
        ..config(3)
    };
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config)
        .await
        .unwrap();
    for _ in 0..3 {
        commit_and_publish(&bus, &log, "c").await;
    }

    let flushed = timeout(WAIT, async {
        while log.checkpoint("audit").await.unwrap() != 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;

    assert!(flushed.is_ok(), "checkpoint never flushed");
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_hanging_durable_handler_times_out_and_is_retried() {
    let bus = EventBus::new(BusConfig {
        handler_timeout: Duration::from_millis(30),
    });
    let log = Arc::new(InMemoryEventLog::new());
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let handler = handler_fn("slow-once", move |_| {
        let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    });
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();

    let report = timeout(WAIT, bus.publish(log.append(envelope("c"))))
        .await
        .expect("publish returns at the time-out");

    assert_eq!(report.failures.len(), 1);
    caught_up(&subscriber).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(bus.stats().handler_timeouts, 1);
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_panicking_durable_handler_is_counted_by_the_bus_and_retried() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let handler = handler_fn("panics-once", move |_| {
        let first = counter.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            assert!(!first, "first delivery panics");
            Ok(())
        }
    });
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();

    commit_and_publish(&bus, &log, "c").await;

    caught_up(&subscriber).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(bus.stats().handler_panics, 1);
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_worker_survives_a_log_that_fails_to_read() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("audit");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();

    log.append(envelope("unpublished"));
    log.fail_next_reads(2);
    commit_and_publish(&bus, &log, "c").await;

    caught_up(&subscriber).await;
    assert_eq!(recorder.seen(), vec![1, 2]);
    subscriber.shutdown().await.unwrap();
}

#[tokio::test]
async fn after_shutdown_live_events_wait_for_the_next_start() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("audit");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler.clone(), config(3))
        .await
        .unwrap();
    commit_and_publish(&bus, &log, "c").await;
    subscriber.shutdown().await.unwrap();

    commit_and_publish(&bus, &log, "c").await;
    assert_eq!(recorder.seen(), vec![1]);

    let restarted = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();
    assert_eq!(recorder.seen(), vec![1, 2]);
    restarted.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_dispatcher_finds_subscribers_by_name_and_refuses_duplicates() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let dispatcher = Dispatcher::new(bus.clone(), log.clone(), config(2));
    let (audit, audit_seen) = Recorder::new("audit");
    let (webhook, flaky) = Flaky::new("webhook", 2, 0);
    flaky.broken.store(true, Ordering::SeqCst);
    dispatcher.register(ALL, audit).await.unwrap();
    dispatcher.register(ALL, webhook).await.unwrap();
    let (again, _) = Recorder::new("audit");
    assert!(matches!(
        dispatcher.register(ALL, again).await,
        Err(DispatchError::DuplicateName(name)) if name == "audit"
    ));
    assert_eq!(dispatcher.names(), vec!["audit", "webhook"]);

    for _ in 0..3 {
        commit_and_publish(&bus, &log, "c").await;
    }
    assert!(dispatcher.wait_caught_up(WAIT).await.unwrap());
    assert_eq!(dispatcher.dead_letters(None).await.unwrap().len(), 1);

    let unknown = dispatcher.replay("nobody", 1).await.unwrap_err();
    assert!(unknown.to_string().contains("audit, webhook"), "{unknown}");

    let replayed = dispatcher.replay("audit", 2).await.unwrap();
    assert_eq!(replayed.handled, 2);
    assert_eq!(audit_seen.seen(), vec![1, 2, 3, 2, 3]);

    flaky.broken.store(false, Ordering::SeqCst);
    let retried = dispatcher.retry_dead_letters(None).await.unwrap();
    assert_eq!(retried.delivered, 1);
    assert!(dispatcher
        .dead_letters(Some("webhook"))
        .await
        .unwrap()
        .is_empty());

    dispatcher.shutdown_all().await.unwrap();
    assert!(dispatcher.names().is_empty());
    assert_eq!(log.checkpoint("audit").await.unwrap(), 3);
    assert_eq!(log.checkpoint("webhook").await.unwrap(), 3);
}

#[tokio::test]
async fn dropping_the_last_handle_stops_live_delivery_and_still_writes_the_checkpoint() {
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    let (handler, recorder) = Recorder::new("audit");
    let subscriber = DurableSubscriber::start(&bus, log.clone(), ALL, handler, config(3))
        .await
        .unwrap();
    commit_and_publish(&bus, &log, "c").await;

    drop(subscriber);
    commit_and_publish(&bus, &log, "c").await;

    assert_eq!(recorder.seen(), vec![1]);
    assert!(bus.subscriptions().is_empty());
    let written = timeout(WAIT, async {
        while log.checkpoint("audit").await.unwrap() != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        written.is_ok(),
        "the worker never wrote the last checkpoint"
    );
}

#[tokio::test]
async fn an_opened_subscriber_handles_nothing_live_but_replays_and_catches_up_on_request() {
    // What the command line does beside a running bot.
    let bus = bus();
    let log = Arc::new(InMemoryEventLog::new());
    for _ in 0..3 {
        log.append(envelope("c"));
    }
    log.save_checkpoint("audit", 1, false).await.unwrap();
    let (handler, recorder) = Recorder::new("audit");
    let dispatcher = Dispatcher::new(bus.clone(), log.clone(), config(3));
    let opened = dispatcher.register_passive(ALL, handler).await.unwrap();

    commit_and_publish(&bus, &log, "c").await;
    assert!(recorder.seen().is_empty(), "no live subscription");
    assert!(bus.subscriptions().is_empty());

    let caught_up = opened.catch_up().await.unwrap();
    assert_eq!(caught_up.handled, 3);
    assert_eq!(recorder.seen(), vec![2, 3, 4]);
    assert_eq!(log.checkpoint("audit").await.unwrap(), 4, "written at once");

    let replayed = dispatcher.replay("audit", 4).await.unwrap();
    assert_eq!(replayed.handled, 1);
    assert_eq!(recorder.seen(), vec![2, 3, 4, 4]);
    dispatcher.shutdown_all().await.unwrap();
}
