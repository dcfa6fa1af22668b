use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::EventEnvelope;

/// A failure of the storage behind the event log.
pub type LogError = anyhow::Error;

/// An event a durable subscriber gave up on after its retries, kept for an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    pub subscriber: String,
    pub sequence: i64,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub attempts: u32,
    pub last_error: String,
    pub parked_at: DateTime<Utc>,
}

/// The durable side of the bus: the events table, subscriber checkpoints and dead letters.
/// The SQLite store implements it; tests may use an in-memory one.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Up to `limit` events with a sequence greater than `after`, in order.
    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventEnvelope>, LogError>;
    /// The event with this sequence, if it exists.
    async fn event(&self, sequence: i64) -> Result<Option<EventEnvelope>, LogError>;
    /// The highest sequence stored (0 when empty).
    async fn last_sequence(&self) -> Result<i64, LogError>;
    /// The last sequence the subscriber handled (0 when it never ran).
    async fn checkpoint(&self, subscriber: &str) -> Result<i64, LogError>;
    /// Records that the subscriber handled everything up to `sequence`. Never moves backwards
    /// unless `force` (replay) is set.
    async fn save_checkpoint(
        &self,
        subscriber: &str,
        sequence: i64,
        force: bool,
    ) -> Result<(), LogError>;
    /// Parks an event the subscriber failed on.
    async fn park_dead_letter(
        &self,
        subscriber: &str,
        event: &EventEnvelope,
        attempts: u32,
        error: &str,
    ) -> Result<(), LogError>;
    /// Dead letters, oldest first, optionally of one subscriber.
    async fn dead_letters(&self, subscriber: Option<&str>) -> Result<Vec<DeadLetter>, LogError>;
    /// Forgets a dead letter (after a successful retry).
    async fn delete_dead_letter(&self, id: i64) -> Result<(), LogError>;
}
