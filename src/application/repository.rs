//! What the service needs from a store: personalities and their events, written together.
//! `src/store` implements it for SQLite; the service's tests use an in-memory one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{KeyHolder, ServiceError, StoreError};
use crate::domain::{
    AggregateId, Alias, DomainEvent, EventType, Personality, PersonalityId, ServerId,
    ServerSettings, UserId,
};
use crate::events::{EventEnvelope, SCHEMA_VERSION};

/// A personality's new state and the events that led to it: one unit of work.
#[derive(Debug, Clone)]
pub struct Change {
    /// The state after the events.
    pub personality: Personality,
    /// The version the change was decided on; the store refuses it if the stored version
    /// moved on meanwhile (0 for a new personality).
    pub expected_version: i64,
    /// For a new personality of a server: who creates it, and so which of the server's
    /// settings hold them (`None`: bot admins and the host, whom no server setting limits).
    /// The store reads the settings in the write transaction, and refuses with
    /// [`StoreError::CreationClosed`] or [`StoreError::OwnerLimit`].
    pub creator: Option<Creator>,
    /// The new events, oldest first.
    pub events: Vec<NewEvent>,
}

/// Who creates a personality in a server, as that server's settings see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creator {
    /// A member without Manage Server: held to "members may create" and the member limit.
    Member,
    /// A member with Manage Server: held to the member limit only.
    ServerManager,
}

/// An event about to be appended: everything but the sequence, which the store assigns.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub aggregate_id: AggregateId,
    pub aggregate_version: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub event: DomainEvent,
}

impl NewEvent {
    /// The event as stored, under the sequence the store gave it.
    pub fn stored_as(self, sequence: i64) -> EventEnvelope {
        EventEnvelope {
            sequence,
            event_id: self.event_id,
            aggregate_id: self.aggregate_id,
            aggregate_version: self.aggregate_version,
            occurred_at: self.occurred_at,
            actor: self.actor,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            schema_version: SCHEMA_VERSION,
            event: self.event,
        }
    }
}

/// Which events a query returns.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events with a greater sequence.
    pub after: i64,
    /// Only events with a smaller sequence.
    pub before: Option<i64>,
    pub event_type: Option<EventType>,
    pub correlation_id: Option<String>,
    pub aggregate_id: Option<AggregateId>,
    pub limit: Option<usize>,
}

impl EventFilter {
    /// Whether `event` passes every condition but the limit.
    pub fn matches(&self, event: &EventEnvelope) -> bool {
        event.sequence > self.after
            && self.before.map_or(true, |before| event.sequence < before)
            && self.event_type.map_or(true, |t| event.event_type() == t)
            && self
                .correlation_id
                .as_ref()
                .map_or(true, |c| &event.correlation_id == c)
            && self.aggregate_id.map_or(true, |a| event.aggregate_id == a)
    }
}

/// Which personalities a listing returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing {
    /// Only this member's.
    pub owner: Option<UserId>,
    /// Only those usable in this server; `None`: every personality (the host's view).
    pub visible_in: Option<VisibleIn>,
}

/// The personalities a server sees: its own, and the global ones unless it turned them off.
#[derive(Debug, Clone, Copy)]
pub struct VisibleIn {
    pub server: ServerId,
    pub with_globals: bool,
}

/// A server's new settings and the event that records them: one unit of work.
#[derive(Debug, Clone)]
pub struct ChangedSettings {
    /// The state after the event; decided on version `settings.version - 1`.
    pub settings: ServerSettings,
    pub event: NewEvent,
}

/// What a settings command decides, given the server's settings as stored (the defaults
/// when it never changed them): the change to store, or a refusal.
pub type DecideSettings =
    Box<dyn FnOnce(ServerSettings) -> Result<ChangedSettings, ServiceError> + Send>;

/// What a change command decides, given the personality its reference names (`None`: no
/// personality has that name or alias): the change to store, or a refusal.
pub type Decide = Box<dyn FnOnce(Option<Personality>) -> Result<Change, ServiceError> + Send>;

/// A removed personality that can be brought back, as the store found it in the
/// transaction that will restore it.
#[derive(Debug, Clone)]
pub struct Removed {
    /// The personality as it was removed, folded from its events (`is_removed()`; its
    /// `updated_at()` is when it was removed).
    pub personality: Personality,
    /// Who holds its name now, if anyone: it can't come back then.
    pub name_holder: Option<KeyHolder>,
    /// Its aliases that other personalities hold now.
    pub taken_aliases: Vec<Alias>,
}

/// What a restore decides, given the removed personality the name finds (`None`: none was
/// removed there, or it was restored since): the change to store, or a refusal.
pub type DecideRestore = Box<dyn FnOnce(Option<Removed>) -> Result<Change, ServiceError> + Send>;

/// A stored change: the personality's new state and its events with their sequences.
pub type Saved = (Personality, Vec<EventEnvelope>);

/// Every stored personality, every server's settings and every event, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub personalities: Vec<Personality>,
    pub settings: Vec<ServerSettings>,
    pub events: Vec<EventEnvelope>,
}

/// The personalities' and the servers' settings' state, and their events. Names and aliases
/// are normalized keys, unique within a server; a global personality's keys are reserved in
/// every server. The store keeps both rules.
#[async_trait]
pub trait PersonalityRepository: Send + Sync + 'static {
    /// The personality whose name or alias has this normalized key, among those usable in
    /// `server` (its own and the global ones); among the global ones for `None`.
    async fn find_by_key(
        &self,
        server: Option<ServerId>,
        key: &str,
    ) -> Result<Option<Personality>, StoreError>;

    /// The personality with this id.
    async fn get(&self, id: PersonalityId) -> Result<Option<Personality>, StoreError>;

    /// The personalities `listing` asks for, by name (case-insensitively).
    async fn list(&self, listing: Listing) -> Result<Vec<Personality>, StoreError>;

    /// Stores the change's state and appends its events in one transaction, and returns
    /// the events with their sequence numbers. Refuses with [`StoreError::Conflict`] when
    /// the stored version is not the expected one, and with [`StoreError::KeyTaken`] when
    /// a name or alias it adds clashes with another personality's, and with
    /// [`StoreError::CreationClosed`] or [`StoreError::OwnerLimit`] when the server's
    /// settings refuse the change's creator; nothing is stored then.
    async fn save(&self, change: Change) -> Result<Vec<EventEnvelope>, StoreError>;

    /// Tries each change in order as [`PersonalityRepository::save`] would, each seeing
    /// the earlier ones that succeeded, and says how each went; then stores nothing (an
    /// import's dry run). The outer error is a failure to reach the store.
    async fn rehearse(
        &self,
        changes: Vec<Change>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError>;

    /// Loads the personality whose name or alias has `key` (as [`Self::find_by_key`] finds
    /// it), lets `decide` change it and
    /// saves the change as [`PersonalityRepository::save`] does, in one transaction: nothing
    /// changes the personality between the load and the save. A refusal from `decide` is
    /// returned as it is and stores nothing.
    async fn change(
        &self,
        server: Option<ServerId>,
        key: &str,
        decide: Decide,
    ) -> Result<Result<Saved, ServiceError>, StoreError>;

    /// Finds the latest removal of a personality whose name had `key`, among those of
    /// `server` and the global ones (the global ones only for `None`), that was not
    /// restored since; lets `decide` restore it and saves the change as
    /// [`PersonalityRepository::save`] does, all in one transaction, so the keys `decide` is
    /// told are taken are still the taken ones when the restore is stored. A refusal from
    /// `decide` is returned as it is and stores nothing. A restore's `expected_version` is
    /// the removal's version; [`StoreError::Conflict`] when the personality was restored
    /// (or changed) meanwhile.
    async fn restore(
        &self,
        server: Option<ServerId>,
        key: &str,
        decide: DecideRestore,
    ) -> Result<Result<Saved, ServiceError>, StoreError>;

    /// The settings of `server`: the defaults when it never changed them.
    async fn settings(&self, server: ServerId) -> Result<ServerSettings, StoreError>;

    /// The settings of every server that changed them.
    async fn all_settings(&self) -> Result<Vec<ServerSettings>, StoreError>;

    /// Loads the settings of `server`, lets `decide` change them and stores the new state
    /// with its event, in one transaction. A refusal from `decide` is returned as it is and
    /// stores nothing; [`StoreError::Conflict`] when another change came first.
    async fn change_settings(
        &self,
        server: ServerId,
        decide: DecideSettings,
    ) -> Result<Result<(ServerSettings, Vec<EventEnvelope>), ServiceError>, StoreError>;

    /// Stored events matching the filter, in sequence order.
    async fn events(&self, filter: EventFilter) -> Result<Vec<EventEnvelope>, StoreError>;

    /// The highest sequence stored, 0 when there are no events.
    async fn last_sequence(&self) -> Result<i64, StoreError>;

    /// Every personality and every event, read together (for `events verify`).
    async fn snapshot(&self) -> Result<Snapshot, StoreError>;
}
