use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use rusqlite::Connection;
use tokio::runtime::Handle;
use tracing::debug;
use uuid::Uuid;

use super::inputs::{ProfileUpdate, Registration};
use super::publication::Publisher;
use super::{Actor, RequestContext, ServiceError};
use crate::domain::{Alias, NewPersonality, Personality, PersonalityId, UserId};
use crate::events::{EventBus, EventEnvelope};
use crate::store::{event_rows, personality_rows, Database, EventFilter, NewEvent, StoreError};

/// Settings of the service.
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// Discord users who may change or remove any personality (BOT_ADMIN_IDS).
    pub admin_ids: HashSet<UserId>,
}

/// The one way anything changes a personality. Each command stores the new state and its
/// events together in one SQLite transaction (shared with the commands queued beside it,
/// each in a savepoint of its own: see [`Database::write`]); after the commit the events are
/// published on the bus, in sequence order (see `src/application/publication.rs`), and
/// the call returns once the bus's handlers (the caches among them) have run.
pub struct PersonalityService {
    db: Database,
    bus: EventBus,
    config: ServiceConfig,
    publisher: Arc<Publisher>,
}

/// What a successful command produced.
struct Committed {
    personality: Personality,
    events: Vec<EventEnvelope>,
}

impl PersonalityService {
    /// A service over this database, publishing on this bus.
    pub fn new(db: Database, bus: EventBus, config: ServiceConfig) -> Self {
        Self {
            db,
            publisher: Arc::new(Publisher::new(bus.clone())),
            bus,
            config,
        }
    }

    /// The actor for a Discord user, with admin rights when listed in BOT_ADMIN_IDS.
    pub fn actor_for(&self, user: UserId) -> Actor {
        Actor::User {
            id: user,
            admin: self.config.admin_ids.contains(&user),
        }
    }

    /// The database the service writes to.
    pub fn database(&self) -> &Database {
        &self.db
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
        let publisher = Arc::clone(&self.publisher);
        Ok(self
            .db
            .call(move |conn| publisher.start_at_end(conn))
            .await?)
    }

    /// Publishes events that another process (the command line) committed to the same
    /// database and that no command of this one published first, so the bot's caches see
    /// them too. Returns how many were published (at most 1,000 a call).
    pub async fn publish_external_events(&self) -> Result<usize, ServiceError> {
        let publisher = Arc::clone(&self.publisher);
        let runtime = Handle::try_current().ok();
        let claim = self
            .db
            .call(move |conn| publisher.claim_external(conn, EXTERNAL_BATCH, runtime))
            .await?;
        Ok(claim.publish().await)
    }

    /// Registers a personality. Owner: the acting user (or `owner_id`, for admins).
    pub async fn register(
        &self,
        ctx: &RequestContext,
        input: Registration,
    ) -> Result<Personality, ServiceError> {
        let parsed = input.parse()?;
        let owner_id = match (input.owner_id, ctx.actor.user_id()) {
            (Some(owner), Some(me)) if owner != me && !ctx.actor.is_admin() => {
                return Err(ServiceError::NotOwner(parsed.name.to_string()));
            }
            (Some(owner), _) => owner,
            (None, Some(me)) => me,
            (None, None) => return Err(ServiceError::OwnerRequired),
        };
        let new = NewPersonality {
            name: parsed.name,
            owner_id,
            profile: parsed.profile,
            aliases: parsed.aliases,
        };
        let personality = Personality::register(PersonalityId::new(), new, Utc::now())?;
        let ctx2 = ctx.clone();
        self.commit(move |tx| {
            check_name_free(tx, &personality)?;
            for alias in &personality.aliases {
                check_alias_free(tx, alias, personality.id)?;
            }
            // The closure may run again (a busy database, or a group commit whose shared
            // transaction was lost): it works on a copy.
            persist(tx, &ctx2, personality.clone())
        })
        .await
    }

    /// Changes profile fields of the personality named `reference` (a name or an alias).
    pub async fn update_profile(
        &self,
        ctx: &RequestContext,
        reference: &str,
        update: ProfileUpdate,
    ) -> Result<Personality, ServiceError> {
        let changes = update.parse()?;
        self.change(ctx, reference, move |_, p| {
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
        self.change(ctx, reference, move |tx, p| {
            check_alias_free(tx, &alias, p.id)?;
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
        self.change(ctx, reference, move |_, p| {
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
        self.change(ctx, reference, |_, p| {
            p.remove(Utc::now());
            Ok(())
        })
        .await
    }

    /// The personality with this name or alias.
    pub async fn get(&self, reference: &str) -> Result<Personality, ServiceError> {
        let key = lookup_key(reference);
        let shown = reference.trim().to_owned();
        self.db
            .call(move |conn| personality_rows::find_by_key(conn, &key))
            .await?
            .ok_or(ServiceError::NotFound(shown))
    }

    /// The personality with this id.
    pub async fn get_by_id(&self, id: PersonalityId) -> Result<Option<Personality>, ServiceError> {
        Ok(self
            .db
            .call(move |conn| personality_rows::get(conn, &id.to_string()))
            .await?)
    }

    /// Every personality, or those of one owner, by name.
    pub async fn list(&self, owner: Option<UserId>) -> Result<Vec<Personality>, ServiceError> {
        Ok(self
            .db
            .call(move |conn| personality_rows::list(conn, owner))
            .await?)
    }

    /// Stored events matching the filter.
    pub async fn events(&self, filter: EventFilter) -> Result<Vec<EventEnvelope>, ServiceError> {
        Ok(self
            .db
            .call(move |conn| event_rows::list(conn, &filter))
            .await?)
    }

    /// Loads the personality named `reference`, checks that the actor may change it, applies
    /// `command` to it and commits.
    async fn change<F>(
        &self,
        ctx: &RequestContext,
        reference: &str,
        command: F,
    ) -> Result<Personality, ServiceError>
    where
        F: Fn(&Connection, &mut Personality) -> Result<(), ServiceError> + Send + Sync + 'static,
    {
        let key = lookup_key(reference);
        let shown = reference.trim().to_owned();
        let ctx2 = ctx.clone();
        self.commit(move |tx| {
            let mut personality = personality_rows::find_by_key(tx, &key)?
                .ok_or_else(|| ServiceError::NotFound(shown.clone()))?;
            if !ctx2.actor.may_change(personality.owner_id) {
                return Err(ServiceError::NotOwner(personality.name.to_string()));
            }
            command(tx, &mut personality)?;
            persist(tx, &ctx2, personality)
        })
        .await
    }

    /// Runs `work` in a write transaction, commits, then publishes the events in order.
    /// A database kept busy by another process (past SQLite's own 5 s busy wait) is tried
    /// again a few times before the user sees an error.
    async fn commit<F>(&self, work: F) -> Result<Personality, ServiceError>
    where
        F: Fn(&Connection) -> Result<Committed, ServiceError> + Send + Sync + 'static,
    {
        let work = Arc::new(work);
        let runtime = Handle::try_current().ok();
        let mut attempt = 0;
        let (personality, claim) = loop {
            let work = Arc::clone(&work);
            let publisher = Arc::clone(&self.publisher);
            let runtime = runtime.clone();
            let result = self
                .db
                .write(
                    move |conn| work(conn),
                    move |conn, committed: Committed| {
                        if let Some(first) = committed.events.first() {
                            debug!(personality = %committed.personality.name, events = committed.events.len(), correlation_id = %first.correlation_id, "committed");
                        }
                        // Claimed in commit order, on the database thread.
                        let claim = publisher.claim(conn, committed.events, runtime);
                        (committed.personality, claim)
                    },
                )
                .await;
            match result {
                Err(ServiceError::Storage(e)) if e.is_busy() && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    tracing::warn!(attempt, "the database is busy; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt as u64))
                        .await;
                }
                other => break other?,
            }
        };
        claim.publish().await;
        Ok(personality)
    }
}

/// How often a command is tried again when the database stays busy.
const BUSY_RETRIES: u32 = 3;

/// How many events of other processes one poll publishes at most.
const EXTERNAL_BATCH: usize = 1000;

/// Writes the aggregate's new state and its uncommitted events in the caller's transaction.
fn persist(
    tx: &Connection,
    ctx: &RequestContext,
    mut personality: Personality,
) -> Result<Committed, ServiceError> {
    let expected = personality.committed_version();
    let events = personality.take_uncommitted_events();
    let name = personality.name.to_string();
    personality_rows::save(tx, &personality, expected, &events).map_err(|e| match e {
        StoreError::Conflict => ServiceError::Conflict(name.clone()),
        other => ServiceError::Storage(other),
    })?;
    let now = personality.updated_at;
    let new_events = events
        .into_iter()
        .enumerate()
        .map(|(i, event)| NewEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: personality.id,
            aggregate_version: expected + 1 + i as i64,
            occurred_at: now,
            actor: ctx.actor.to_string(),
            correlation_id: ctx.correlation_id.clone(),
            causation_id: ctx.causation_id.clone(),
            event,
        })
        .collect();
    let events = event_rows::append(tx, new_events)?;
    Ok(Committed {
        personality,
        events,
    })
}

fn check_name_free(tx: &Connection, personality: &Personality) -> Result<(), ServiceError> {
    match personality_rows::key_owner(tx, &personality.name.key())? {
        None => Ok(()),
        Some(owner) => Err(ServiceError::NameTaken {
            name: personality.name.to_string(),
            holder: describe_holder(&owner),
        }),
    }
}

fn check_alias_free(tx: &Connection, alias: &Alias, id: PersonalityId) -> Result<(), ServiceError> {
    match personality_rows::key_owner(tx, alias.as_str())? {
        Some(owner) if owner.personality_id != id => Err(ServiceError::AliasTaken {
            alias: alias.to_string(),
            holder: describe_holder(&owner),
        }),
        _ => Ok(()),
    }
}

fn describe_holder(owner: &crate::store::KeyOwner) -> String {
    if owner.is_name {
        format!("the personality \"{}\"", owner.personality_name)
    } else {
        format!("an alias of \"{}\"", owner.personality_name)
    }
}

/// The normalized key a user's reference to a personality (name or alias, maybe with '@') is
/// looked up by.
pub(crate) fn lookup_key(reference: &str) -> String {
    let trimmed = reference.trim();
    crate::domain::lookup_key(trimmed.strip_prefix('@').unwrap_or(trimmed))
}
