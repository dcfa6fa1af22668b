//! Server settings through the service: read and changed by the server's managers, each
//! change stored with its event in one transaction and published like a personality's.

use chrono::Utc;
use tracing::{debug, Instrument};
use uuid::Uuid;

use super::service::command_span;
use super::{ChangedSettings, DecideSettings, NewEvent, PersonalityService, RequestContext};
use super::{ServiceError, StoreError};
use crate::domain::{AggregateId, DomainEvent, ServerId, ServerSettings, SettingChange};

impl PersonalityService {
    /// The settings of `server` as its managers see them.
    pub async fn server_settings(
        &self,
        ctx: &RequestContext,
        server: ServerId,
    ) -> Result<ServerSettings, ServiceError> {
        if !ctx.may_manage_server(server) {
            return Err(ServiceError::NotServerManager);
        }
        Ok(self.repository.settings(server).await?)
    }

    /// Applies `changes` to the settings of `server` as one event.
    pub async fn change_settings(
        &self,
        ctx: &RequestContext,
        server: ServerId,
        changes: Vec<SettingChange>,
    ) -> Result<ServerSettings, ServiceError> {
        let span = command_span("change_settings", ctx);
        async {
            if !ctx.may_manage_server(server) {
                return Err(ServiceError::NotServerManager);
            }
            let saved = self
                .with_busy_retries(|| {
                    let (request, changes) = (ctx.clone(), changes.clone());
                    let decide: DecideSettings = Box::new(move |current| {
                        let (next, event) = current.change(&changes, Utc::now())?;
                        Ok(unit_of_work(&request, next, event))
                    });
                    self.repository.change_settings(server, decide)
                })
                .await;
            let (settings, events) = match saved {
                Ok(Ok(saved)) => saved,
                Ok(Err(refused)) => return Err(refused),
                Err(StoreError::Conflict) => {
                    return Err(ServiceError::Conflict("the server's settings".to_owned()))
                }
                Err(other) => return Err(other.into()),
            };
            debug!(%server, version = settings.version, "settings committed");
            self.publisher.publish(events).await;
            Ok(settings)
        }
        .instrument(span)
        .await
    }
}

/// The new settings with their event, recording who changed them and why.
pub(crate) fn unit_of_work(
    ctx: &RequestContext,
    next: ServerSettings,
    event: DomainEvent,
) -> ChangedSettings {
    ChangedSettings {
        event: NewEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: AggregateId::ServerSettings(next.server),
            aggregate_version: next.version,
            occurred_at: next.updated_at.unwrap_or_else(Utc::now),
            actor: ctx.actor.to_string(),
            correlation_id: ctx.correlation_id.clone(),
            causation_id: ctx.causation_id.clone(),
            event,
        },
        settings: next,
    }
}
