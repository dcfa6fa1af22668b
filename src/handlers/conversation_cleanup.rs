//! Forgets a removed personality everywhere in conversation tracking.

use std::sync::Arc;

use async_trait::async_trait;
use tracing::info;

use crate::conversation::ConversationTracker;
use crate::domain::DomainEvent;
use crate::events::{EventEnvelope, EventHandler, HandlerError};

/// On `PersonalityRemoved` (the only type it is registered for): deletes the
/// personality's sent-message map and answer records, users' active conversations with it
/// and its channel activations, in the database and in memory. Idempotent, so a redelivery after a crash
/// does no harm.
pub struct ConversationCleanupHandler {
    tracker: Arc<ConversationTracker>,
}

impl ConversationCleanupHandler {
    /// The handler for this tracker.
    pub fn new(tracker: Arc<ConversationTracker>) -> Self {
        Self { tracker }
    }
}

#[async_trait]
impl EventHandler for ConversationCleanupHandler {
    fn name(&self) -> &'static str {
        "conversation-cleanup"
    }

    async fn handle(&self, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        // Registered for removals only; anything else would not be ours to clean up.
        let (DomainEvent::PersonalityRemoved { name, .. }, Some(id)) =
            (&envelope.event, envelope.aggregate_id.personality())
        else {
            return Ok(());
        };
        let forgotten = self.tracker.forget_personality(id).await?;
        info!(
            personality = %name,
            personality_id = %id,
            messages = forgotten.messages,
            conversations = forgotten.conversations,
            activations = forgotten.activations,
            answers = forgotten.answers,
            correlation_id = %envelope.correlation_id,
            "conversation tracking cleaned up after removal"
        );
        Ok(())
    }
}
