//! The audit trail: every event as one structured log line.

use async_trait::async_trait;
use tracing::info;

use crate::events::{EventEnvelope, EventHandler, HandlerError};

/// Writes each event as one `tracing` line on the `personae::audit` target, with its
/// sequence, ids, actor and payload: filter with `RUST_LOG=personae::audit=info`.
pub struct AuditHandler;

#[async_trait]
impl EventHandler for AuditHandler {
    fn name(&self) -> &str {
        "audit"
    }

    async fn handle(&self, e: &EventEnvelope) -> Result<(), HandlerError> {
        let payload = serde_json::to_string(&e.event)?;
        info!(
            target: "personae::audit",
            sequence = e.sequence,
            event_id = %e.event_id,
            event_type = e.event_type().as_str(),
            aggregate_id = %e.aggregate_id,
            aggregate_version = e.aggregate_version,
            occurred_at = %e.occurred_at.to_rfc3339(),
            actor = %e.actor,
            correlation_id = %e.correlation_id,
            causation_id = e.causation_id.as_deref().unwrap_or(""),
            payload = %payload,
            "domain event"
        );
        Ok(())
    }
}
