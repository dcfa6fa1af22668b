//! The bus fixture shared by `benches/bus.rs` and `load bus`: one event published to two
//! typed handlers and one wildcard handler (async, trivial work), and the baseline that
//! awaits the same three handlers directly.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use personae::domain::{Alias, DomainEvent, EventType, PersonalityId};
use personae::events::{
    BusConfig, EventBus, EventEnvelope, EventHandler, HandlerError, Topic, SCHEMA_VERSION,
};

/// A handler that does the least a real one does: touch shared state.
pub struct Counter {
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

pub fn counter(name: &'static str) -> Arc<Counter> {
    Arc::new(Counter {
        name,
        seen: AtomicU64::new(0),
    })
}

pub fn event() -> Arc<EventEnvelope> {
    Arc::new(EventEnvelope {
        sequence: 1,
        event_id: uuid::Uuid::now_v7(),
        aggregate_id: PersonalityId::new().into(),
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

pub fn three_handlers() -> Vec<Arc<Counter>> {
    vec![counter("typed-1"), counter("typed-2"), counter("wildcard")]
}

pub fn wired_bus(handlers: &[Arc<Counter>]) -> EventBus {
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

/// The baseline: the same three handlers, awaited one after the other.
pub async fn await_directly(handlers: &[Arc<Counter>], event: &EventEnvelope) {
    for handler in handlers {
        let _ = black_box(handler.handle(event).await);
    }
}
