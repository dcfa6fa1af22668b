//! The audit trail: every event as one structured log line.

use async_trait::async_trait;
use tracing::info;

use crate::events::{EventEnvelope, EventHandler, HandlerError};

/// Writes each event as one `tracing` line on the `personae::audit` target, with its
/// sequence, ids, actor and payload: filter with `RUST_LOG=personae::audit=info`.
pub struct AuditHandler;

#[async_trait]
impl EventHandler for AuditHandler {
    fn name(&self) -> &'static str {
        "audit"
    }

    async fn handle(&self, e: &EventEnvelope) -> Result<(), HandlerError> {
        // Serializing the payload is most of the work: skip it when nobody reads the line.
        if !tracing::enabled!(target: "personae::audit", tracing::Level::INFO) {
            return Ok(());
        }
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use chrono::Utc;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;
    use crate::domain::{Alias, DomainEvent, PersonalityId};

    /// Collects what the log writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn alias_added() -> EventEnvelope {
        EventEnvelope {
            sequence: 7,
            event_id: uuid::Uuid::now_v7(),
            aggregate_id: PersonalityId::new().into(),
            aggregate_version: 2,
            occurred_at: Utc::now(),
            actor: "user:7001".into(),
            correlation_id: "1234567890".into(),
            causation_id: None,
            schema_version: crate::events::SCHEMA_VERSION,
            event: DomainEvent::PersonalityAliasAdded {
                alias: Alias::parse("bard").unwrap(),
            },
        }
    }

    /// Handles one event under a log at `level` and returns what was written.
    fn audited_at(level: &str, event: &EventEnvelope) -> String {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_writer(captured.clone())
            .with_ansi(false)
            .finish();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(AuditHandler.handle(event)).unwrap();
        });
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn each_event_is_one_line_with_its_ids_and_payload() {
        let event = alias_added();
        let line = audited_at("personae::audit=info", &event);
        assert_eq!(line.lines().count(), 1, "{line}");
        for part in [
            "domain event",
            "sequence=7",
            &event.event_id.to_string(),
            "correlation_id=1234567890",
            "actor=user:7001",
            r#"payload={"type":"PersonalityAliasAdded""#,
            "bard",
        ] {
            assert!(line.contains(part), "{part:?} missing from {line}");
        }
    }

    #[test]
    fn with_the_audit_target_filtered_out_nothing_is_written_and_nothing_fails() {
        assert_eq!(audited_at("warn", &alias_added()), "");
    }
}
