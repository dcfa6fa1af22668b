//! Cost of publishing one event: two typed handlers and one wildcard handler (async,
//! trivial), against a baseline that awaits the same three handlers directly.
//! Target: publish ≤ 200 ns median and ≤ 3× the baseline.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use personae::domain::{Alias, DomainEvent, EventType, PersonalityId};
use personae::events::{
    middleware_fn, BusConfig, DurableConfig, DurableSubscriber, EventBus, EventEnvelope,
    EventHandler, HandlerError, InMemoryEventLog, Topic, SCHEMA_VERSION,
};

/// A handler that does the least a real one does: touch shared state.
struct Counter {
    name: &'static str,
    seen: AtomicU64,
}

#[async_trait]
impl EventHandler for Counter {
    fn name(&self) -> &str {
        self.name
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        self.seen
            .fetch_add(event.sequence as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn counter(name: &'static str) -> Arc<Counter> {
    Arc::new(Counter {
        name,
        seen: AtomicU64::new(0),
    })
}

fn event() -> Arc<EventEnvelope> {
    Arc::new(EventEnvelope {
        sequence: 1,
        event_id: uuid::Uuid::now_v7(),
        aggregate_id: PersonalityId::new(),
        aggregate_version: 2,
        occurred_at: Utc::now(),
        actor: "user:1".into(),
        correlation_id: "bench".into(),
        causation_id: None,
        schema_version: SCHEMA_VERSION,
        event: DomainEvent::PersonalityAliasAdded {
            alias: Alias::parse("bench").expect("a valid alias"),
        },
    })
}

fn three_handlers() -> Vec<Arc<Counter>> {
    vec![counter("typed-1"), counter("typed-2"), counter("wildcard")]
}

fn wired_bus(handlers: &[Arc<Counter>]) -> EventBus {
    let bus = EventBus::new(BusConfig::default());
    let typed = Topic::Type(EventType::PersonalityAliasAdded);
    bus.subscribe(typed, handlers[0].clone());
    bus.subscribe(typed, handlers[1].clone());
    bus.subscribe(Topic::All, handlers[2].clone());
    // Handlers of other types must cost nothing here.
    bus.subscribe(
        Topic::Type(EventType::PersonalityRemoved),
        counter("other-type"),
    );
    bus
}

fn bench_publish(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let event = event();

    let handlers = three_handlers();
    c.bench_function("baseline: await 3 handlers directly", |b| {
        b.to_async(&rt).iter(|| async {
            for handler in &handlers {
                let _ = black_box(handler.handle(&event).await);
            }
        })
    });

    let bus = wired_bus(&handlers);
    c.bench_function("publish: 2 typed + 1 wildcard", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(bus.publish(Arc::clone(&event)).await) })
    });

    let with_middleware = wired_bus(&handlers);
    with_middleware.add_middleware(middleware_fn("pass", Some));
    c.bench_function("publish: 2 typed + 1 wildcard + 1 middleware", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(with_middleware.publish(Arc::clone(&event)).await) })
    });

    // A durable subscriber on the live path: the event is the next one, handled inline.
    let with_durable = wired_bus(&handlers);
    let log = Arc::new(InMemoryEventLog::new());
    let durable = rt
        .block_on(DurableSubscriber::start(
            &with_durable,
            log.clone(),
            counter("durable"),
            DurableConfig::default(),
        ))
        .expect("a durable subscriber");
    let mut next = event.as_ref().clone();
    c.bench_function("publish: 2 typed + 1 wildcard + 1 durable (inline)", |b| {
        b.to_async(&rt).iter(|| {
            // Each iteration publishes the next sequence, as commits would; the log itself
            // is not written (the inline path never reads it).
            next.sequence += 1;
            let event = Arc::new(next.clone());
            let bus = &with_durable;
            async move { black_box(bus.publish(event).await) }
        })
    });
    // The durable subscriber's checkpoint ran ahead of this log on purpose.
    let _ = rt.block_on(durable.shutdown());
}

criterion_group!(benches, bench_publish);
criterion_main!(benches);
