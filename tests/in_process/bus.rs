//! The in-process bus: routing by type and `*`, unsubscribe, and isolation of failing
//! handlers.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::Utc;
use personae::domain::{
    Alias, DisplayName, DomainEvent, EventType, PersonalityId, PersonalityName,
};
use personae::events::{
    handler_fn, BusConfig, EventBus, EventEnvelope, EventHandler, FailureKind, Topic,
    SCHEMA_VERSION,
};
use tokio::time::timeout;

const TEST_TIME_LIMIT: Duration = Duration::from_secs(5);

fn alias_added(sequence: i64, correlation_id: &str) -> Arc<EventEnvelope> {
    Arc::new(EventEnvelope {
        sequence,
        event_id: uuid::Uuid::now_v7(),
        aggregate_id: PersonalityId::new().into(),
        aggregate_version: 2,
        occurred_at: Utc::now(),
        actor: "user:42".into(),
        correlation_id: correlation_id.into(),
        causation_id: Some(correlation_id.into()),
        schema_version: SCHEMA_VERSION,
        event: DomainEvent::PersonalityAliasAdded {
            alias: Alias::parse("buddy").unwrap(),
        },
    })
}

fn removed(sequence: i64) -> Arc<EventEnvelope> {
    Arc::new(EventEnvelope {
        event: DomainEvent::PersonalityRemoved {
            name: PersonalityName::parse("friend").unwrap(),
            display_name: DisplayName::parse("Friend").unwrap(),
            aliases: vec![],
        },
        ..(*alias_added(sequence, "corr-removed")).clone()
    })
}

/// A handler that records the sequences it saw.
fn recorder(name: &str) -> (Arc<dyn EventHandler>, Arc<Mutex<Vec<i64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let handler = handler_fn(name, move |event| {
        sink.lock().unwrap().push(event.sequence);
        async { Ok(()) }
    });
    (handler, seen)
}

fn seen(log: &Arc<Mutex<Vec<i64>>>) -> Vec<i64> {
    log.lock().unwrap().clone()
}

fn bus_with_timeout(handler_timeout: Duration) -> EventBus {
    EventBus::new(BusConfig { handler_timeout })
}

/// Everything logged by every test of this file. One global subscriber rather than one
/// per test: tracing's per-thread default subscribers race with each other when tests run
/// in parallel (a callsite's interest can be cached while another test's subscriber is
/// being dropped), which loses events. Tests find their own lines by the unique event id.
struct CapturedLogs {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl CapturedLogs {
    fn start() -> &'static Self {
        static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(move || BufferWriter(writer.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
            Self { buffer }
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }

    /// The logged line that mentions `event` and contains `needle`.
    fn line_with(&self, event: &EventEnvelope, needle: &str) -> String {
        let id = event.event_id.to_string();
        let text = self.text();
        text.lines()
            .find(|l| l.contains(&id) && l.contains(needle))
            .unwrap_or_else(|| panic!("no log line about {id} contains {needle:?}; logs:\n{text}"))
            .to_owned()
    }
}

struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn typed_and_wildcard_handlers_both_receive_an_event() {
    let bus = EventBus::default();
    let (typed, typed_seen) = recorder("typed");
    let (wildcard, wildcard_seen) = recorder("wildcard");
    let (other, other_seen) = recorder("other-type");
    bus.subscribe(Topic::Type(EventType::PersonalityAliasAdded), typed);
    bus.subscribe("*".parse().unwrap(), wildcard);
    bus.subscribe(Topic::Type(EventType::PersonalityRemoved), other);

    let report = bus.publish(alias_added(1, "corr-1")).await;

    assert_eq!(report.handlers_run, 2);
    assert!(report.all_succeeded());
    assert_eq!(seen(&typed_seen), vec![1]);
    assert_eq!(seen(&wildcard_seen), vec![1]);
    assert!(seen(&other_seen).is_empty());

    bus.publish(removed(2)).await;
    assert_eq!(seen(&typed_seen), vec![1]);
    assert_eq!(seen(&wildcard_seen), vec![1, 2]);
    assert_eq!(seen(&other_seen), vec![2]);
}

#[tokio::test]
async fn publishing_with_no_subscriber_runs_nothing_and_is_counted() {
    let bus = EventBus::default();
    let report = bus.publish(alias_added(1, "corr")).await;
    assert_eq!(report.handlers_run, 0);
    assert_eq!(bus.stats().published, 1);
}

#[tokio::test]
async fn unsubscribing_stops_delivery_but_dropping_the_handle_does_not() {
    let bus = EventBus::default();
    let (kept, kept_seen) = recorder("kept");
    let (removed_handler, removed_seen) = recorder("removed");
    drop(bus.subscribe(Topic::All, kept));
    let subscription = bus.subscribe(Topic::All, removed_handler);
    assert_eq!(subscription.handler_name(), "removed");

    bus.publish(alias_added(1, "c")).await;
    assert!(subscription.unsubscribe());
    bus.publish(alias_added(2, "c")).await;

    assert_eq!(seen(&kept_seen), vec![1, 2]);
    assert_eq!(seen(&removed_seen), vec![1]);
    assert_eq!(bus.subscriptions(), vec![(Topic::All, "kept".to_owned())]);
}

#[tokio::test]
async fn a_failing_handler_is_logged_and_counted_and_the_others_still_run() {
    let logs = CapturedLogs::start();
    let bus = EventBus::default();
    let (before, before_seen) = recorder("before");
    let (after, after_seen) = recorder("after");
    bus.subscribe(Topic::All, before);
    bus.subscribe(
        Topic::Type(EventType::PersonalityAliasAdded),
        handler_fn("failing", |_| async {
            Err(anyhow::anyhow!("profile cache unreachable"))
        }),
    );
    bus.subscribe(Topic::All, after);
    let event = alias_added(7, "interaction-1234");

    let report = timeout(TEST_TIME_LIMIT, bus.publish(event.clone()))
        .await
        .expect("publish returns");

    assert_eq!(report.handlers_run, 3);
    assert_eq!(report.succeeded(), 2);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].handler, "failing");
    assert!(
        matches!(&report.failures[0].kind, FailureKind::Error(e) if e.contains("profile cache unreachable"))
    );
    assert_eq!(seen(&before_seen), vec![7]);
    assert_eq!(seen(&after_seen), vec![7]);
    assert_eq!(bus.stats().handler_errors, 1);
    let line = logs.line_with(&event, "event handler failed");
    assert!(line.contains(&event.event_id.to_string()), "{line}");
    assert!(line.contains("interaction-1234"), "{line}");
    assert!(line.contains("failing"), "{line}");
    assert!(line.contains("profile cache unreachable"), "{line}");
}

#[tokio::test]
async fn a_panicking_handler_is_logged_and_counted_and_the_others_still_run() {
    let logs = CapturedLogs::start();
    let bus = EventBus::default();
    let (other, other_seen) = recorder("other");
    bus.subscribe(
        Topic::All,
        handler_fn("panicking", |_| async { panic!("handler bug") }),
    );
    bus.subscribe(Topic::All, other);
    let event = alias_added(3, "interaction-panic");

    let report = timeout(TEST_TIME_LIMIT, bus.publish(event.clone()))
        .await
        .expect("publish returns");

    assert_eq!(seen(&other_seen), vec![3]);
    assert_eq!(
        report.failures[0].kind,
        FailureKind::Panicked("handler bug".to_owned())
    );
    assert_eq!(bus.stats().handler_panics, 1);
    let line = logs.line_with(&event, "event handler panicked");
    assert!(line.contains(&event.event_id.to_string()), "{line}");
    assert!(line.contains("interaction-panic"), "{line}");
    assert!(line.contains("handler bug"), "{line}");
}

#[tokio::test]
async fn a_handler_panicking_before_its_first_await_is_isolated_too() {
    let bus = EventBus::default();
    let (other, other_seen) = recorder("other");
    bus.subscribe(
        Topic::All,
        handler_fn(
            "eager-panic",
            |_| -> std::future::Ready<anyhow::Result<()>> {
                panic!("panicked while building the future")
            },
        ),
    );
    bus.subscribe(Topic::All, other);

    let report = bus.publish(alias_added(1, "c")).await;

    assert_eq!(seen(&other_seen), vec![1]);
    assert!(matches!(report.failures[0].kind, FailureKind::Panicked(_)));
    assert_eq!(bus.stats().handler_panics, 1);
}

#[tokio::test]
async fn a_hanging_handler_is_stopped_at_the_time_out_and_the_others_still_run() {
    let logs = CapturedLogs::start();
    let bus = bus_with_timeout(Duration::from_millis(50));
    let (other, other_seen) = recorder("other");
    let cancelled = Arc::new(AtomicBool::new(false));
    let flag = cancelled.clone();
    bus.subscribe(
        Topic::All,
        handler_fn("hanging", move |_| {
            let flag = flag.clone();
            async move {
                // Records that the bus dropped (cancelled) it rather than leaving it running.
                struct SetOnDrop(Arc<AtomicBool>);
                impl Drop for SetOnDrop {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::SeqCst);
                    }
                }
                let _guard = SetOnDrop(flag);
                std::future::pending::<()>().await;
                Ok(())
            }
        }),
    );
    bus.subscribe(Topic::All, other);
    let event = alias_added(9, "interaction-slow");

    let started = std::time::Instant::now();
    let report = timeout(TEST_TIME_LIMIT, bus.publish(event.clone()))
        .await
        .expect("publish returns");
    let took = started.elapsed();

    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(seen(&other_seen), vec![9]);
    assert_eq!(
        report.failures[0].kind,
        FailureKind::TimedOut(Duration::from_millis(50))
    );
    assert!(cancelled.load(Ordering::SeqCst));
    assert_eq!(bus.stats().handler_timeouts, 1);
    let line = logs.line_with(&event, "timed out");
    assert!(line.contains(&event.event_id.to_string()), "{line}");
    assert!(line.contains("interaction-slow"), "{line}");
    assert!(line.contains("hanging"), "{line}");
}

#[tokio::test]
async fn handlers_of_one_event_run_concurrently() {
    // Each handler waits for the other: run one after the other they would both time out.
    let bus = bus_with_timeout(Duration::from_secs(2));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    for name in ["left", "right"] {
        let barrier = barrier.clone();
        bus.subscribe(
            Topic::All,
            handler_fn(name, move |_| {
                let barrier = barrier.clone();
                async move {
                    barrier.wait().await;
                    Ok(())
                }
            }),
        );
    }

    let report = timeout(TEST_TIME_LIMIT, bus.publish(alias_added(1, "c")))
        .await
        .expect("publish returns");

    assert!(report.all_succeeded(), "{report:?}");
}

#[tokio::test]
async fn slow_handlers_finish_before_publish_returns() {
    // The contract behind "the command answers after the cache is fresh".
    let bus = EventBus::default();
    let done = Arc::new(AtomicUsize::new(0));
    for name in ["cache", "tracker"] {
        let done = done.clone();
        bus.subscribe(
            Topic::All,
            handler_fn(name, move |_| {
                let done = done.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }),
        );
    }

    bus.publish(alias_added(1, "c")).await;

    assert_eq!(done.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn clones_of_a_bus_share_subscriptions_and_stats() {
    let bus = EventBus::default();
    let clone = bus.clone();
    let (handler, handler_seen) = recorder("h");
    clone.subscribe(Topic::All, handler);

    bus.publish(alias_added(1, "c")).await;

    assert_eq!(seen(&handler_seen), vec![1]);
    assert_eq!(clone.stats().published, 1);
}

#[tokio::test]
async fn publish_is_safe_from_many_tasks_while_subscriptions_change() {
    let bus = EventBus::default();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    bus.subscribe(
        Topic::All,
        handler_fn("count", move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        }),
    );
    let churn = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                let (h, _) = recorder("churn");
                bus.subscribe(Topic::All, h).unsubscribe();
                tokio::task::yield_now().await;
            }
        })
    };
    let publishers: Vec<_> = (0..4)
        .map(|p| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    bus.publish(alias_added(p * 100 + i, "c")).await;
                }
            })
        })
        .collect();
    for task in publishers {
        timeout(TEST_TIME_LIMIT, task).await.unwrap().unwrap();
    }
    timeout(TEST_TIME_LIMIT, churn).await.unwrap().unwrap();

    assert_eq!(count.load(Ordering::SeqCst), 200);
    assert_eq!(bus.subscriptions().len(), 1);
}

#[tokio::test]
async fn several_handlers_panicking_at_once_are_each_recorded_and_the_others_still_run() {
    // Each panic or error is pinned on its own handler, and the handlers after it still run.
    let bus = EventBus::default();
    let (first, first_seen) = recorder("first");
    let (last, last_seen) = recorder("last");
    bus.subscribe(
        Topic::All,
        handler_fn(
            "panics-early",
            |_| -> std::future::Ready<anyhow::Result<()>> { panic!("while building the future") },
        ),
    );
    bus.subscribe(Topic::All, first);
    bus.subscribe(
        Topic::Type(EventType::PersonalityAliasAdded),
        handler_fn("panics-on-poll", |_| async { panic!("on the first poll") }),
    );
    bus.subscribe(
        Topic::All,
        handler_fn("fails", |_| async { Err(anyhow::anyhow!("no")) }),
    );
    bus.subscribe(Topic::All, last);

    let report = bus.publish(alias_added(4, "c")).await;

    assert_eq!(report.handlers_run, 5);
    assert_eq!(seen(&first_seen), vec![4]);
    assert_eq!(seen(&last_seen), vec![4]);
    // In subscription order: the typed and wildcard handlers of a type are one list.
    let failures: Vec<_> = report
        .failures
        .iter()
        .map(|f| (f.handler.as_str(), f.kind.clone()))
        .collect();
    assert_eq!(
        failures,
        vec![
            (
                "panics-early",
                FailureKind::Panicked("while building the future".to_owned())
            ),
            (
                "panics-on-poll",
                FailureKind::Panicked("on the first poll".to_owned())
            ),
            ("fails", FailureKind::Error("no".to_owned())),
        ]
    );
    assert_eq!(bus.stats().handler_panics, 2);
    assert_eq!(bus.stats().handler_errors, 1);
}

#[tokio::test]
async fn handlers_that_fail_after_an_await_are_isolated_too() {
    // A panic or an error after an await is pinned on the handler too, and a quick handler
    // still finishes.
    let bus = bus_with_timeout(Duration::from_secs(2));
    let (quick, quick_seen) = recorder("quick");
    bus.subscribe(
        Topic::All,
        handler_fn("panics-later", |_| async {
            tokio::task::yield_now().await;
            panic!("after an await")
        }),
    );
    bus.subscribe(
        Topic::All,
        handler_fn("fails-later", |_| async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Err(anyhow::anyhow!("later"))
        }),
    );
    bus.subscribe(Topic::All, quick);

    let report = timeout(TEST_TIME_LIMIT, bus.publish(alias_added(5, "c")))
        .await
        .expect("publish returns");

    assert_eq!(seen(&quick_seen), vec![5]);
    assert_eq!(
        report.failures,
        vec![
            personae::events::HandlerFailure {
                handler: "panics-later".to_owned(),
                kind: FailureKind::Panicked("after an await".to_owned()),
            },
            personae::events::HandlerFailure {
                handler: "fails-later".to_owned(),
                kind: FailureKind::Error("later".to_owned()),
            },
        ]
    );
    assert_eq!(bus.stats().handler_panics, 1);
    assert_eq!(bus.stats().handler_errors, 1);
}

#[tokio::test]
async fn a_handler_timing_out_after_the_others_finished_at_once_is_stopped() {
    // Only the slow handler is stopped; the quick ones around it succeed.
    let bus = bus_with_timeout(Duration::from_millis(30));
    let (quick, quick_seen) = recorder("quick");
    bus.subscribe(Topic::All, quick);
    bus.subscribe(
        Topic::All,
        handler_fn("sleeps", |_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }),
    );
    let (also_quick, also_quick_seen) = recorder("also-quick");
    bus.subscribe(Topic::All, also_quick);

    let report = timeout(TEST_TIME_LIMIT, bus.publish(alias_added(6, "c")))
        .await
        .expect("publish returns");

    assert_eq!(seen(&quick_seen), vec![6]);
    assert_eq!(seen(&also_quick_seen), vec![6]);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].handler, "sleeps");
    assert_eq!(
        report.failures[0].kind,
        FailureKind::TimedOut(Duration::from_millis(30))
    );
    assert_eq!(bus.stats().handler_timeouts, 1);
}

#[tokio::test]
async fn subscriptions_changed_on_another_thread_reach_the_next_publish() {
    // A change made on another thread is seen by this thread's very next publish.
    let bus = EventBus::default();
    let (first, first_seen) = recorder("first");
    bus.subscribe(Topic::All, first);
    bus.publish(alias_added(1, "c")).await;

    let (added, added_seen) = recorder("added");
    let subscription = {
        let bus = bus.clone();
        std::thread::spawn(move || bus.subscribe(Topic::All, added))
            .join()
            .expect("subscribed")
    };
    bus.publish(alias_added(2, "c")).await;
    std::thread::spawn(move || assert!(subscription.unsubscribe()))
        .join()
        .expect("unsubscribed");
    bus.publish(alias_added(3, "c")).await;

    assert_eq!(seen(&first_seen), vec![1, 2, 3]);
    assert_eq!(seen(&added_seen), vec![2]);
}

#[tokio::test]
async fn a_handler_may_publish_on_the_bus_that_runs_it() {
    let bus = EventBus::default();
    let (handler, handler_seen) = recorder("recorder");
    bus.subscribe(Topic::All, handler);
    let inner_bus = bus.clone();
    bus.subscribe(
        Topic::Type(EventType::PersonalityAliasAdded),
        handler_fn("republisher", move |_| {
            let bus = inner_bus.clone();
            async move {
                bus.publish(removed(2)).await;
                Ok(())
            }
        }),
    );

    let report = bus.publish(alias_added(1, "c")).await;
    let again = bus.publish(alias_added(3, "c")).await;

    assert!(report.all_succeeded() && again.all_succeeded());
    assert_eq!(seen(&handler_seen), vec![1, 2, 3, 2]);
    assert_eq!(bus.stats().published, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_from_every_thread_are_counted() {
    let bus = EventBus::default();
    let (handler, _) = recorder("h");
    bus.subscribe(Topic::All, handler);
    let publishers: Vec<_> = (0..8)
        .map(|p| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    bus.publish(alias_added(p * 1000 + i, "c")).await;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in publishers {
        timeout(TEST_TIME_LIMIT, task).await.unwrap().unwrap();
    }
    let from_threads = {
        let bus = bus.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(bus.publish(alias_added(9999, "c")));
        })
    };
    from_threads.join().unwrap();

    assert_eq!(bus.stats().published, 801);
}

#[tokio::test]
async fn unsubscribing_or_dropping_the_bus_lets_go_of_the_handler() {
    let bus = EventBus::default();
    let handler = handler_fn("h", |_| async { Ok(()) });
    let subscription = bus.subscribe(Topic::All, handler.clone());
    bus.publish(alias_added(1, "c")).await;
    assert!(subscription.unsubscribe());
    assert_eq!(Arc::strong_count(&handler), 1);

    let bus = EventBus::default();
    bus.subscribe(Topic::All, handler.clone());
    bus.publish(alias_added(2, "c")).await;
    assert!(Arc::strong_count(&handler) > 1);
    drop(bus);
    assert_eq!(Arc::strong_count(&handler), 1);
}
