//! A personality's profile revisions, read from its events, and reverting to one: the
//! revision's values come back as a new update, so history is never rewritten.

use chrono::{DateTime, Utc};

use super::{EventFilter, PersonalityService, RequestContext, ServiceError};
use crate::domain::{DomainEvent, Personality, Profile, ProfileChanges, ProfileField};

/// One profile revision: what the profile was after the event of that version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The personality's version after the event (the created event is revision 1).
    pub number: i64,
    pub at: DateTime<Utc>,
    /// Who made it (`user:<id>`, `admin:cli`).
    pub actor: String,
    /// The fields it set; every field for the created revision.
    pub changed: Vec<ProfileField>,
    pub profile: Profile,
}

impl Revision {
    /// True for the revision the personality was created with.
    pub fn is_creation(&self) -> bool {
        self.number == 1
    }
}

impl PersonalityService {
    /// The profile revisions of the personality named `reference`, oldest first; for those
    /// who manage it.
    pub async fn history(
        &self,
        ctx: &RequestContext,
        reference: &str,
    ) -> Result<(Personality, Vec<Revision>), ServiceError> {
        let personality = self.get(ctx.server, reference).await?;
        if !ctx.may_manage(personality.owner_id(), personality.scope()) {
            return Err(ServiceError::NotOwner(personality.name().to_string()));
        }
        let events = self
            .repository
            .events(EventFilter {
                aggregate_id: Some(personality.id().into()),
                ..EventFilter::default()
            })
            .await?;
        let revisions = events
            .into_iter()
            .filter_map(|e| {
                let (changed, profile) = match e.event {
                    DomainEvent::PersonalityCreated { profile, .. } => {
                        (ProfileField::ALL.to_vec(), profile)
                    }
                    DomainEvent::PersonalityProfileUpdated { changed, profile } => {
                        (changed, profile)
                    }
                    _ => return None,
                };
                Some(Revision {
                    number: e.aggregate_version,
                    at: e.occurred_at,
                    actor: e.actor,
                    changed,
                    profile,
                })
            })
            .collect();
        Ok((personality, revisions))
    }

    /// Sets the profile of the personality named `reference` back to revision `number`'s,
    /// as a new update; for those who manage it. The model and the answer length must still
    /// be within what the host allows.
    pub async fn revert(
        &self,
        ctx: &RequestContext,
        reference: &str,
        number: i64,
    ) -> Result<Personality, ServiceError> {
        let (personality, revisions) = self.history(ctx, reference).await?;
        let revision = revisions
            .into_iter()
            .find(|r| r.number == number)
            .ok_or_else(|| ServiceError::Invalid {
                field: "revision",
                reason: format!(
                    "\"{}\" has no profile revision {number} (see its history)",
                    personality.name()
                ),
            })?;
        self.check_model(revision.profile.model.as_ref())?;
        if let Some(max_tokens) = revision.profile.max_tokens {
            self.check_max_tokens(max_tokens)?;
        }
        let changes = ProfileChanges::from(revision.profile);
        let id = personality.id();
        self.change("revert", ctx, reference, move |p| {
            if p.id() != id {
                return Err(ServiceError::Conflict(p.name().to_string()));
            }
            Ok(p.update_profile(changes.clone(), Utc::now())?)
        })
        .await
    }
}
