//! Members' commands about conversations: a personality activated in a channel,
//! auto-response, ending a conversation. Like personality changes, each runs with an actor
//! and a correlation id, and leaves a line in the audit trail.

use std::sync::Arc;

use tracing::{info, Instrument};

use super::service::{command_span, reference_key};
use super::{PersonalityRepository, RequestContext, ServiceError};
use crate::conversation::ConversationTracker;
use crate::domain::{ChannelId, Personality, PersonalityId};

/// What the services need to know about the channel a command was used in.
#[derive(Debug, Clone, Copy)]
pub struct ChannelFacts {
    pub id: u64,
    /// Discord's "age-restricted" setting (for a thread: its parent's).
    pub age_restricted: bool,
    /// The channel the server's channel settings name for it: a thread's parent, or itself.
    pub listed_as: u64,
}

/// What `/activate` did.
#[derive(Debug, Clone)]
pub struct Activation {
    /// The personality that now answers every message in the channel.
    pub personality: Personality,
    /// The one it replaced, if another was active there.
    pub replaced: Option<PersonalityId>,
}

/// Changes conversation tracking on a member's behalf.
pub struct ConversationService {
    repository: Arc<dyn PersonalityRepository>,
    tracker: Arc<ConversationTracker>,
}

impl ConversationService {
    /// The service over these personalities and this tracking.
    pub fn new(
        repository: Arc<dyn PersonalityRepository>,
        tracker: Arc<ConversationTracker>,
    ) -> Self {
        Self {
            repository,
            tracker,
        }
    }

    /// Makes the personality named `reference` answer every message in `channel`; an NSFW
    /// one only where the channel is age-restricted. Refused where the server's settings
    /// keep personalities out of the channel, and for a global personality where the server
    /// turned those off.
    pub async fn activate(
        &self,
        ctx: &RequestContext,
        channel: ChannelFacts,
        reference: &str,
    ) -> Result<Activation, ServiceError> {
        async {
            let personality = self
                .repository
                .find_by_key(ctx.server, &reference_key(reference))
                .await?
                .ok_or_else(|| ServiceError::NotFound(reference.trim().to_owned()))?;
            if personality.profile().nsfw && !channel.age_restricted {
                return Err(ServiceError::NsfwOutsideAgeRestricted(
                    personality.name().to_string(),
                ));
            }
            if let Some(server) = ctx.server {
                let settings = self.repository.settings(server).await?.settings;
                if !settings.allows_channel(ChannelId::new(channel.listed_as)?) {
                    return Err(ServiceError::ChannelClosed);
                }
                if personality.scope().is_global() && !settings.globals {
                    return Err(ServiceError::GlobalsOff(personality.name().to_string()));
                }
            }
            let channel_id = channel.id;
            let by = ctx.actor.user_id().map_or(0, |u| u.get());
            let previous = self.tracker.activation(channel_id);
            if !self
                .tracker
                .activate(channel_id, personality.id(), by)
                .await?
            {
                return Err(ServiceError::Removed(personality.name().to_string()));
            }
            audit("channel activated", channel_id, Some(personality.id()));
            Ok(Activation {
                replaced: previous.filter(|id| *id != personality.id()),
                personality,
            })
        }
        .instrument(command_span("activate", ctx))
        .await
    }

    /// Stops the personality activated in `channel_id`; returns it, if there was one.
    pub async fn deactivate(
        &self,
        ctx: &RequestContext,
        channel_id: u64,
    ) -> Result<Option<PersonalityId>, ServiceError> {
        async {
            let stopped = self.tracker.deactivate(channel_id).await?;
            if stopped.is_some() {
                audit("channel deactivated", channel_id, stopped);
            }
            Ok(stopped)
        }
        .instrument(command_span("deactivate", ctx))
        .await
    }

    /// Turns auto-response on or off for the acting member.
    pub async fn set_auto_response(
        &self,
        ctx: &RequestContext,
        enabled: bool,
    ) -> Result<(), ServiceError> {
        async {
            let user = ctx.actor.user_id().ok_or(ServiceError::MemberOnly)?;
            self.tracker.set_auto_response(user.get(), enabled).await?;
            info!(target: "personae::audit", enabled, "auto-response set");
            Ok(())
        }
        .instrument(command_span("set_auto_response", ctx))
        .await
    }

    /// Ends the acting member's conversation in `channel_id`; true if there was one.
    pub async fn reset(&self, ctx: &RequestContext, channel_id: u64) -> Result<bool, ServiceError> {
        async {
            let user = ctx.actor.user_id().ok_or(ServiceError::MemberOnly)?;
            let ended = self
                .tracker
                .end_conversation(user.get(), channel_id)
                .await?;
            if ended {
                audit("conversation reset", channel_id, None);
            }
            Ok(ended)
        }
        .instrument(command_span("reset", ctx))
        .await
    }
}

/// One line in the audit trail; the span adds the actor and the correlation id.
fn audit(what: &str, channel_id: u64, personality: Option<PersonalityId>) {
    let personality = personality.map(|p| p.to_string()).unwrap_or_default();
    info!(target: "personae::audit", channel_id, %personality, "{what}");
}
