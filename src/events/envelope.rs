use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{AggregateId, DomainEvent, EventType};

/// The version of the event payload format written today.
pub const SCHEMA_VERSION: u32 = 1;

/// A committed domain event with everything needed to trace and replay it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Position in the global, gap-free-in-practice order of all events (starts at 1).
    pub sequence: i64,
    /// A UUID v7, unique per event.
    pub event_id: Uuid,
    /// The personality, or the server whose settings, the event is about.
    pub aggregate_id: AggregateId,
    /// The aggregate's version after this event (the created event is version 1).
    pub aggregate_version: i64,
    pub occurred_at: DateTime<Utc>,
    /// Who caused it: `user:<discord id>`, or `admin:cli` for the command line.
    pub actor: String,
    /// Ties together everything one request caused (a Discord interaction id, or a fresh id).
    pub correlation_id: String,
    /// What directly caused this event (the interaction or command id), if known.
    pub causation_id: Option<String>,
    pub schema_version: u32,
    pub event: DomainEvent,
}

impl EventEnvelope {
    /// The type of the carried event.
    pub fn event_type(&self) -> EventType {
        self.event.event_type()
    }
}
