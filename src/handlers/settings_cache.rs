//! Keeps the servers' settings the message path reads in step with the settings events.

use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::SettingsCache;
use crate::domain::DomainEvent;
use crate::events::{EventEnvelope, EventHandler, HandlerError};

/// Applies each `ServerSettingsChanged` to the settings cache.
pub struct SettingsCacheHandler {
    cache: Arc<SettingsCache>,
}

impl SettingsCacheHandler {
    pub fn new(cache: Arc<SettingsCache>) -> Self {
        Self { cache }
    }
}

#[async_trait]
impl EventHandler for SettingsCacheHandler {
    fn name(&self) -> &'static str {
        "settings-cache"
    }

    async fn handle(&self, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        if let DomainEvent::ServerSettingsChanged {
            server, settings, ..
        } = &envelope.event
        {
            self.cache.put(*server, settings.clone());
            tracing::debug!(%server, "settings cache refreshed");
        }
        Ok(())
    }
}
