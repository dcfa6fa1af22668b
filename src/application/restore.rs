//! Restoring a removed personality: its former owner, its home server's managers or a bot
//! admin bring it back within 30 days of its removal, as a new event on the same history,
//! with its profile and every alias that is still free.

use chrono::Utc;
use tracing::Instrument;

use super::service::{command_span, creator, reference_key, unit_of_work};
use super::{DecideRestore, PersonalityService, RequestContext, ServiceError, StoreError};
use crate::domain::{Alias, DomainError, DomainEvent, Personality};

/// A restored personality, and its aliases that stayed behind because other personalities
/// had taken them meanwhile.
#[derive(Debug, Clone)]
pub struct Restoration {
    pub personality: Personality,
    pub left_out: Vec<Alias>,
}

impl PersonalityService {
    /// Restores the personality called `name` that was removed in the request's server (or
    /// a global one; only global ones without a server), the latest such removal. Refused
    /// to anyone but its former owner, its home server's managers and bot admins; when the
    /// removal is more than 30 days old; and when its name is taken meanwhile. Its server's
    /// settings hold a member who restores as they hold one who creates.
    pub async fn restore(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Restoration, ServiceError> {
        let span = command_span("restore", ctx);
        async {
            let key = reference_key(name);
            let shown = name.trim().to_owned();
            let saved = self
                .with_busy_retries(|| {
                    let decide = decide_restore(ctx.clone(), shown.clone());
                    self.repository.restore(ctx.server, &key, decide)
                })
                .await;
            let (personality, events) = match saved {
                Ok(Ok(saved)) => saved,
                Ok(Err(ServiceError::NothingToRestore(shown))) => {
                    // Restoring one that exists (restored already, say): say so rather than
                    // that nothing of that name was removed.
                    return Err(match self.repository.find_by_key(ctx.server, &key).await? {
                        Some(alive) if alive.name().key() == key => {
                            DomainError::NotRemoved(alive.name().to_string()).into()
                        }
                        _ => ServiceError::NothingToRestore(shown),
                    });
                }
                Ok(Err(refused)) => return Err(refused),
                Err(StoreError::Conflict) => return Err(ServiceError::Conflict(shown)),
                Err(StoreError::OwnerLimit(limit)) => {
                    return Err(ServiceError::RestoreOverLimit(limit))
                }
                Err(StoreError::CreationClosed) => return Err(ServiceError::CreationClosed),
                Err(StoreError::KeyTaken { key, holder }) => {
                    return Err(ServiceError::AliasTaken {
                        alias: key,
                        holder: holder.describe(ctx.server),
                    })
                }
                Err(other) => return Err(other.into()),
            };
            let left_out = events
                .iter()
                .find_map(|e| match &e.event {
                    DomainEvent::PersonalityRestored { left_out, .. } => Some(left_out.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            self.published(&personality, events).await;
            Ok(Restoration {
                personality,
                left_out,
            })
        }
        .instrument(span)
        .await
    }
}

/// The decision on the removed personality the store found: who may, whether its name is
/// free, then the aggregate's own rules (the 30 days).
fn decide_restore(request: RequestContext, shown: String) -> DecideRestore {
    Box::new(move |found| {
        let removed = found.ok_or(ServiceError::NothingToRestore(shown))?;
        let mut personality = removed.personality;
        // Checked first, so that someone who may not restore it learns nothing more.
        if !request.may_manage(personality.owner_id(), personality.scope()) {
            return Err(ServiceError::NotFormerOwner(personality.name().to_string()));
        }
        personality.restore(&removed.taken_aliases, Utc::now())?;
        if let Some(holder) = removed.name_holder {
            return Err(ServiceError::RestoreNameTaken {
                name: personality.name().to_string(),
                holder: holder.describe(request.server),
            });
        }
        let creator = creator(&request, personality.scope());
        Ok(unit_of_work(&request, &mut personality, creator))
    })
}
