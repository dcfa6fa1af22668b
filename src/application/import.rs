//! Importing personalities from a file: each one registered as `create` would, all under
//! the request's correlation id; or, in a dry run, checked the same way and not stored.

use tracing::Instrument;

use super::service::{command_span, registration_refused};
use super::{EventFilter, PersonalityService, Registration, RequestContext, ServiceError};
use crate::domain::{CardExtensions, DomainEvent, EventType, Personality, PersonalityId, ServerId};

/// Whether an import stores what it checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Each personality that passes is created.
    Write,
    /// Every check runs (names, aliases, limits, fields), nothing is stored.
    DryRun,
}

/// One personality to import, and the server it goes to.
#[derive(Debug, Clone)]
pub struct ImportItem {
    /// Its home server; `None`: the request's server (or global, as the registration
    /// says). Only a bot admin may name another server than the request's.
    pub server: Option<ServerId>,
    pub registration: Registration,
}

impl ImportItem {
    /// The request as made for this item: in its own server when it names one.
    fn request(&self, ctx: &RequestContext) -> Result<RequestContext, ServiceError> {
        match self.server {
            Some(server) if Some(server) != ctx.server => {
                if ctx.actor.is_admin() {
                    Ok(ctx.clone().in_server(Some(server)))
                } else {
                    Err(ServiceError::AdminOnly("import into another server"))
                }
            }
            _ => Ok(ctx.clone()),
        }
    }

    fn name(&self) -> String {
        self.registration.name.trim().to_owned()
    }
}

/// What became of one personality of an import.
#[derive(Debug)]
pub struct ImportOutcome {
    /// Its name as the file gives it.
    pub name: String,
    /// The personality (created, or as it would be), or why it was refused.
    pub result: Result<Personality, ServiceError>,
}

impl PersonalityService {
    /// Registers each of `personalities` in turn, as [`PersonalityService::register`]
    /// does: a personality and its aliases are created together or not at all, and one
    /// that is refused doesn't stop the others. In a dry run every check runs against the
    /// stored personalities and the earlier ones of the same import, and nothing is stored.
    pub async fn import(
        &self,
        ctx: &RequestContext,
        personalities: Vec<ImportItem>,
        mode: ImportMode,
    ) -> Vec<ImportOutcome> {
        let span = command_span("import", ctx);
        async {
            match mode {
                ImportMode::Write => {
                    let mut outcomes = Vec::with_capacity(personalities.len());
                    for item in personalities {
                        let name = item.name();
                        let result = match item.request(ctx) {
                            Ok(request) => self.register(&request, item.registration).await,
                            Err(refused) => Err(refused),
                        };
                        outcomes.push(ImportOutcome { name, result });
                    }
                    outcomes
                }
                ImportMode::DryRun => self.rehearse(ctx, personalities).await,
            }
        }
        .instrument(span)
        .await
    }

    /// The extensions of the character card the personality was imported from, as its
    /// creation recorded them.
    pub async fn card_extensions(
        &self,
        id: PersonalityId,
    ) -> Result<Option<CardExtensions>, ServiceError> {
        let created = self
            .events(EventFilter {
                aggregate_id: Some(id.into()),
                event_type: Some(EventType::PersonalityCreated),
                limit: Some(1),
                ..EventFilter::default()
            })
            .await?;
        Ok(created.into_iter().find_map(|e| match e.event {
            DomainEvent::PersonalityCreated {
                card_extensions, ..
            } => card_extensions,
            _ => None,
        }))
    }

    async fn rehearse(
        &self,
        ctx: &RequestContext,
        personalities: Vec<ImportItem>,
    ) -> Vec<ImportOutcome> {
        let decided: Vec<_> = personalities
            .iter()
            .map(|item| {
                let change = item.request(ctx).and_then(|request| {
                    let change = self.registration_change(&request, &item.registration)?;
                    Ok((request, change))
                });
                (item.name(), change)
            })
            .collect();
        let changes = decided
            .iter()
            .filter_map(|(_, change)| change.as_ref().ok().map(|(_, c)| c.clone()))
            .collect();
        let mut tried = match self.repository.rehearse(changes).await {
            Ok(tried) => tried.into_iter(),
            Err(failure) => {
                let shown = failure.to_string();
                return decided
                    .into_iter()
                    .map(|(name, _)| ImportOutcome {
                        name,
                        result: Err(ServiceError::Storage(super::StoreError::Task(
                            shown.clone(),
                        ))),
                    })
                    .collect();
            }
        };
        decided
            .into_iter()
            .map(|(name, change)| {
                let result = change.and_then(|(request, change)| {
                    let personality = change.personality;
                    match tried.next() {
                        Some(Ok(())) => Ok(personality),
                        Some(Err(refused)) => {
                            Err(registration_refused(&request, &personality, refused))
                        }
                        // The store answers once per change it was given.
                        None => Err(ServiceError::Storage(super::StoreError::Task(
                            "the dry run answered for fewer personalities than it was given".into(),
                        ))),
                    }
                });
                ImportOutcome { name, result }
            })
            .collect()
    }
}
