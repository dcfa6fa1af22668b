//! Keeps the bot's cached profile info in step with the personalities.

use std::sync::Arc;

use async_trait::async_trait;

use crate::cache::{ProfileCache, ProfileInfo};
use crate::domain::{DomainEvent, Personality};
use crate::events::{EventEnvelope, EventHandler, HandlerError};

/// Created or restored → inserted; updated → refreshed; alias added/removed → index
/// changed; made global → its keys move to the global index; removed → every entry gone.
/// Runs before the command answers, so the next message sees it.
pub struct ProfileCacheHandler {
    cache: Arc<ProfileCache>,
}

impl ProfileCacheHandler {
    /// The handler for this cache.
    pub fn new(cache: Arc<ProfileCache>) -> Self {
        Self { cache }
    }
}

#[async_trait]
impl EventHandler for ProfileCacheHandler {
    fn name(&self) -> &'static str {
        "profile-cache"
    }

    async fn handle(&self, envelope: &EventEnvelope) -> Result<(), HandlerError> {
        let Some(id) = envelope.aggregate_id.personality() else {
            return Ok(());
        };
        let version = envelope.aggregate_version;
        match &envelope.event {
            event @ DomainEvent::PersonalityCreated { .. } => {
                let history = std::iter::once((event, envelope.occurred_at));
                if let Some(personality) = Personality::from_history(id, history) {
                    self.cache.put(ProfileInfo::of(&personality));
                }
            }
            DomainEvent::PersonalityProfileUpdated { profile, .. } => {
                self.cache.update_profile(id, profile, version);
            }
            DomainEvent::PersonalityAliasAdded { alias } => {
                self.cache.add_alias(id, alias, version);
            }
            DomainEvent::PersonalityAliasRemoved { alias } => {
                self.cache.remove_alias(id, alias, version);
            }
            DomainEvent::PersonalityRemoved { name, aliases, .. } => {
                self.cache.remove(id, name, aliases);
            }
            DomainEvent::PersonalityRestored {
                name,
                owner_id,
                scope,
                profile,
                aliases,
                ..
            } => self.cache.put(ProfileInfo::from_parts(
                id,
                name.clone(),
                *owner_id,
                *scope,
                profile.clone(),
                aliases.clone(),
                version,
            )),
            DomainEvent::PersonalityMadeGlobal { .. } => self.cache.make_global(id, version),
            DomainEvent::ServerSettingsChanged { .. } => return Ok(()),
        }
        tracing::debug!(personality_id = %id, version, "profile cache refreshed");
        Ok(())
    }
}
