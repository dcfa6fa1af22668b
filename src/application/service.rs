use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tracing::{debug, Instrument};
use uuid::Uuid;

use super::inputs::{ProfileUpdate, Registration};
use super::publication::Publisher;
use super::verify::{verify, VerifyReport};
use super::{
    Actor, Change, Creator, Decide, EventFilter, Listing, NewEvent, PersonalityRepository,
    RequestContext, ServiceError, StoreError,
};
use crate::domain::{
    lookup_key, Alias, ModelName, NewPersonality, Personality, PersonalityId, Scope, ServerId,
    UserId,
};
use crate::events::{EventBus, EventEnvelope};

/// Settings of the service.
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// Discord users who may change or remove any personality (BOT_ADMIN_IDS).
    pub admin_ids: HashSet<UserId>,
    /// The models a personality may be given (LLM_ALLOWED_MODELS); empty: any.
    pub allowed_models: Vec<String>,
    /// The longest answer the host pays for (LLM_MAX_TOKENS): no personality may ask for
    /// more; `None`: no cap.
    pub max_tokens: Option<u32>,
}

/// The one way anything changes a personality. Each command loads the personality, lets
/// the aggregate decide, and has the repository store the new state and its events in one
/// transaction; the events are then published on the bus in sequence order, and the call
/// returns once the bus's handlers (the caches among them) have run.
pub struct PersonalityService {
    pub(super) repository: Arc<dyn PersonalityRepository>,
    pub(super) publisher: Arc<Publisher>,
    bus: EventBus,
    config: ServiceConfig,
}

impl PersonalityService {
    /// A service over this repository, publishing on this bus.
    pub fn new(
        repository: Arc<dyn PersonalityRepository>,
        bus: EventBus,
        config: ServiceConfig,
    ) -> Self {
        Self {
            publisher: Arc::new(Publisher::new(bus.clone(), Arc::clone(&repository))),
            repository,
            bus,
            config,
        }
    }

    /// The actor for a Discord user, with admin rights when listed in BOT_ADMIN_IDS;
    /// `server_manager` when they have Manage Server where they act.
    pub fn actor_for(&self, user: UserId, server_manager: bool) -> Actor {
        Actor::User {
            id: user,
            admin: self.config.admin_ids.contains(&user),
            server_manager,
        }
    }

    /// The bus the service publishes on.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// The sequence of the last event this process published.
    pub fn last_published(&self) -> i64 {
        self.publisher.published()
    }

    /// Starts publishing after the last stored event: the caches were just loaded from the
    /// stored state, and durable subscribers catch up from their own checkpoints.
    pub async fn mark_published_up_to_now(&self) -> Result<(), ServiceError> {
        Ok(self.publisher.start_at_end().await?)
    }

    /// Publishes events that another process (the command line) committed to the same
    /// store and that no command of this one published first, so the bot's caches see
    /// them too. Returns how many were published (at most 1,000 a call).
    pub async fn publish_external_events(&self) -> Result<usize, ServiceError> {
        Ok(self.publisher.publish_stored(EXTERNAL_BATCH).await?)
    }

    /// Registers a personality in the request's server (or, for bot admins, globally).
    /// Owner: the acting user (or `owner_id`, for admins). The server's settings decide
    /// whether members without Manage Server may, and how many each may own.
    pub async fn register(
        &self,
        ctx: &RequestContext,
        input: Registration,
    ) -> Result<Personality, ServiceError> {
        let span = command_span("register", ctx);
        async {
            let change = self.registration_change(ctx, &input)?;
            self.commit(ctx, change).await
        }
        .instrument(span)
        .await
    }

    /// The unit of work that registers `input`: the new personality, its event and the
    /// server rules its creator is held to, decided but not stored.
    pub(super) fn registration_change(
        &self,
        ctx: &RequestContext,
        input: &Registration,
    ) -> Result<Change, ServiceError> {
        {
            let parsed = input.parse()?;
            self.check_model(parsed.profile.model.as_ref())?;
            if let Some(max_tokens) = parsed.profile.max_tokens {
                self.check_max_tokens(max_tokens)?;
            }
            let owner_id = match (input.owner_id, ctx.actor.user_id()) {
                (Some(owner), Some(me)) if owner != me && !ctx.actor.is_admin() => {
                    return Err(ServiceError::NotOwner(parsed.name.to_string()));
                }
                (Some(owner), _) => owner,
                (None, Some(me)) => me,
                (None, None) => return Err(ServiceError::OwnerRequired),
            };
            let scope = match (input.global, ctx.server) {
                (true, _) if !ctx.actor.is_admin() => {
                    return Err(ServiceError::AdminOnly("create a global personality"))
                }
                (true, _) => Scope::Global,
                (false, Some(server)) => Scope::Server(server),
                (false, None) => return Err(ServiceError::ServerRequired),
            };
            let new = NewPersonality {
                name: parsed.name,
                owner_id,
                scope,
                profile: parsed.profile,
                aliases: parsed.aliases,
                card_extensions: parsed.card_extensions,
            };
            let mut personality = Personality::register(PersonalityId::new(), new, Utc::now())?;
            Ok(unit_of_work(ctx, &mut personality, creator(ctx, scope)))
        }
    }

    /// Changes profile fields of the personality named `reference` (a name or an alias).
    pub async fn update_profile(
        &self,
        ctx: &RequestContext,
        reference: &str,
        update: ProfileUpdate,
    ) -> Result<Personality, ServiceError> {
        let changes = update.parse()?;
        if let Some(model) = &changes.model {
            self.check_model(model.as_ref())?;
        }
        if let Some(Some(max_tokens)) = changes.max_tokens {
            self.check_max_tokens(max_tokens)?;
        }
        self.change("update_profile", ctx, reference, move |p| {
            Ok(p.update_profile(changes.clone(), Utc::now())?)
        })
        .await
    }

    /// Adds an alias to the personality named `reference`.
    pub async fn add_alias(
        &self,
        ctx: &RequestContext,
        reference: &str,
        alias: &str,
    ) -> Result<Personality, ServiceError> {
        let alias = Alias::parse(alias)?;
        self.change("add_alias", ctx, reference, move |p| {
            Ok(p.add_alias(alias.clone(), Utc::now())?)
        })
        .await
    }

    /// Removes an alias from the personality named `reference`.
    pub async fn remove_alias(
        &self,
        ctx: &RequestContext,
        reference: &str,
        alias: &str,
    ) -> Result<Personality, ServiceError> {
        let alias = Alias::parse(alias)?;
        self.change("remove_alias", ctx, reference, move |p| {
            Ok(p.remove_alias(alias.clone(), Utc::now())?)
        })
        .await
    }

    /// Removes the personality named `reference`; its name and aliases are free at once.
    /// Returns its last state.
    pub async fn remove(
        &self,
        ctx: &RequestContext,
        reference: &str,
    ) -> Result<Personality, ServiceError> {
        self.change("remove", ctx, reference, |p| {
            p.remove(Utc::now());
            Ok(())
        })
        .await
    }

    /// Makes the personality named `reference` global: usable in every server. Bot admins
    /// only; refused, naming the server, when another server uses one of its names.
    pub async fn make_global(
        &self,
        ctx: &RequestContext,
        reference: &str,
    ) -> Result<Personality, ServiceError> {
        if !ctx.actor.is_admin() {
            return Err(ServiceError::AdminOnly("make a personality global"));
        }
        self.change("make_global", ctx, reference, |p| {
            Ok(p.make_global(Utc::now())?)
        })
        .await
    }

    /// The personality with this name or alias among those usable in `server` (the global
    /// ones only, for `None`).
    pub async fn get(
        &self,
        server: Option<ServerId>,
        reference: &str,
    ) -> Result<Personality, ServiceError> {
        self.repository
            .find_by_key(server, &reference_key(reference))
            .await?
            .ok_or_else(|| ServiceError::NotFound(reference.trim().to_owned()))
    }

    /// The personality with this id.
    pub async fn get_by_id(&self, id: PersonalityId) -> Result<Option<Personality>, ServiceError> {
        Ok(self.repository.get(id).await?)
    }

    /// The personalities `listing` asks for, by name.
    pub async fn list(&self, listing: Listing) -> Result<Vec<Personality>, ServiceError> {
        Ok(self.repository.list(listing).await?)
    }

    /// Stored events matching the filter.
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<EventEnvelope>, ServiceError> {
        Ok(self.repository.events(filter).await?)
    }

    /// Checks that every personality's stored state is the fold of its events.
    pub async fn verify(&self) -> Result<VerifyReport, ServiceError> {
        Ok(verify(&self.repository.snapshot().await?))
    }

    /// Loads the personality named `reference`, checks that the actor may change it, lets
    /// `command` change it and commits, in one transaction of the repository.
    pub(super) async fn change<F>(
        &self,
        operation: &'static str,
        ctx: &RequestContext,
        reference: &str,
        command: F,
    ) -> Result<Personality, ServiceError>
    where
        F: Fn(&mut Personality) -> Result<(), ServiceError> + Send + Sync + 'static,
    {
        let span = command_span(operation, ctx);
        async {
            let key = reference_key(reference);
            let command = Arc::new(command);
            let saved = self
                .with_busy_retries(|| {
                    let (request, command) = (ctx.clone(), Arc::clone(&command));
                    let shown = reference.trim().to_owned();
                    let decide: Decide = Box::new(move |found| {
                        let mut personality = found.ok_or(ServiceError::NotFound(shown))?;
                        if !request.may_manage(personality.owner_id(), personality.scope()) {
                            return Err(ServiceError::NotOwner(personality.name().to_string()));
                        }
                        command(&mut personality)?;
                        Ok(unit_of_work(&request, &mut personality, None))
                    });
                    self.repository.change(ctx.server, &key, decide)
                })
                .await;
            let (personality, events) = match saved {
                Ok(Ok(saved)) => saved,
                Ok(Err(refused)) => return Err(refused),
                Err(StoreError::KeyTaken { key, holder }) => {
                    return Err(ServiceError::AliasTaken {
                        alias: key,
                        holder: holder.describe(ctx.server),
                    })
                }
                Err(StoreError::Conflict) => {
                    return Err(ServiceError::Conflict(reference.trim().to_owned()))
                }
                Err(other) => return Err(other.into()),
            };
            self.published(&personality, events).await;
            Ok(personality)
        }
        .instrument(span)
        .await
    }

    /// Refuses a model the host didn't allow (LLM_ALLOWED_MODELS); `None` is the host's
    /// default model, always allowed.
    pub(super) fn check_model(&self, model: Option<&ModelName>) -> Result<(), ServiceError> {
        let allowed = &self.config.allowed_models;
        match model {
            Some(m) if !allowed.is_empty() && !allowed.iter().any(|a| a == m.as_str()) => {
                Err(ServiceError::Invalid {
                    field: "model",
                    reason: format!(
                        "\"{m}\" is not one of the models this bot offers: {}",
                        allowed.join(", ")
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// Refuses a longest answer above the host's cap (LLM_MAX_TOKENS).
    pub(super) fn check_max_tokens(
        &self,
        max_tokens: crate::domain::MaxTokens,
    ) -> Result<(), ServiceError> {
        match self.config.max_tokens {
            Some(cap) if max_tokens.get() > cap => Err(ServiceError::Invalid {
                field: "max_tokens",
                reason: format!(
                    "{max_tokens} is more than this bot allows: at most {cap} tokens an answer"
                ),
            }),
            _ => Ok(()),
        }
    }

    /// Runs a store call again, a few times and a little later each time, while the
    /// database is kept busy by another process past its own wait.
    pub(super) async fn with_busy_retries<T, Fut>(
        &self,
        mut call: impl FnMut() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Err(StoreError::Busy(_)) if attempt < BUSY_RETRIES => {
                    attempt += 1;
                    tracing::warn!(attempt, "the database is busy; trying again");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    /// Publishes a command's events once they are stored; returns when the bus's handlers
    /// have run.
    pub(super) async fn published(&self, personality: &Personality, events: Vec<EventEnvelope>) {
        debug!(personality = %personality.name(), events = events.len(), "committed");
        self.publisher.publish(events).await;
    }

    /// Stores a new personality and its events, then publishes them.
    async fn commit(
        &self,
        ctx: &RequestContext,
        change: Change,
    ) -> Result<Personality, ServiceError> {
        let personality = change.personality.clone();
        let saved = self
            .with_busy_retries(|| self.repository.save(change.clone()))
            .await;
        let events = saved.map_err(|e| registration_refused(ctx, &personality, e))?;
        self.published(&personality, events).await;
        Ok(personality)
    }
}

/// The error for a store's refusal of a new personality.
pub(super) fn registration_refused(
    ctx: &RequestContext,
    personality: &Personality,
    error: StoreError,
) -> ServiceError {
    match error {
        StoreError::Conflict => ServiceError::Conflict(personality.name().to_string()),
        StoreError::KeyTaken { key, holder } => {
            key_taken(personality, key, &holder.describe(ctx.server))
        }
        StoreError::OwnerLimit(limit) => ServiceError::OwnerLimit(limit),
        StoreError::CreationClosed => ServiceError::CreationClosed,
        other => other.into(),
    }
}

/// Who brings a personality into `scope`, as that server's settings see them: `None` for
/// bot admins and global personalities, which no server setting limits.
pub(super) fn creator(ctx: &RequestContext, scope: Scope) -> Option<Creator> {
    match scope {
        Scope::Server(_) if ctx.actor.is_admin() => None,
        Scope::Server(_) if ctx.actor.is_server_manager() => Some(Creator::ServerManager),
        Scope::Server(_) => Some(Creator::Member),
        Scope::Global => None,
    }
}

/// How often a command is tried again when the database stays busy.
const BUSY_RETRIES: u32 = 3;

/// How many events of other processes one poll publishes at most.
const EXTERNAL_BATCH: usize = 1000;

/// The span every command runs in: the correlation id and the actor follow it into the
/// store and every handler it causes.
pub(crate) fn command_span(operation: &'static str, ctx: &RequestContext) -> tracing::Span {
    tracing::info_span!(
        "command",
        operation,
        correlation_id = %ctx.correlation_id,
        actor = %ctx.actor,
    )
}

/// The aggregate's uncommitted events, with who caused them and why.
pub(crate) fn unit_of_work(
    ctx: &RequestContext,
    personality: &mut Personality,
    creator: Option<Creator>,
) -> Change {
    let expected_version = personality.committed_version();
    let now = personality.updated_at();
    let events = personality
        .take_uncommitted_events()
        .into_iter()
        .zip(expected_version + 1..)
        .map(|(event, aggregate_version)| NewEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: personality.id().into(),
            aggregate_version,
            occurred_at: now,
            actor: ctx.actor.to_string(),
            correlation_id: ctx.correlation_id.clone(),
            causation_id: ctx.causation_id.clone(),
            event,
        })
        .collect();
    Change {
        personality: personality.clone(),
        expected_version,
        creator,
        events,
    }
}

/// The error for a key the store found taken: the name's, or one of the aliases'.
fn key_taken(personality: &Personality, key: String, holder: &str) -> ServiceError {
    if key == personality.name().key() {
        ServiceError::NameTaken {
            name: personality.name().to_string(),
            holder: holder.to_owned(),
        }
    } else {
        ServiceError::AliasTaken {
            alias: key,
            holder: holder.to_owned(),
        }
    }
}

/// The normalized key a user's reference to a personality (name or alias, maybe with '@') is
/// looked up by.
pub(crate) fn reference_key(reference: &str) -> String {
    let trimmed = reference.trim();
    lookup_key(trimmed.strip_prefix('@').unwrap_or(trimmed))
}
