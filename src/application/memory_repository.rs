//! A [`PersonalityRepository`] in memory, for the service's fast tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::{
    Change, Creator, Decide, DecideRestore, DecideSettings, EventFilter, KeyHolder, Listing,
    PersonalityRepository, Removed, Saved, ServiceError, Snapshot, StoreError,
};
use crate::domain::{
    AggregateId, DomainEvent, Personality, PersonalityId, Scope, ServerId, ServerSettings, UserId,
};
use crate::events::EventEnvelope;

/// Personalities, their keys and the event log behind one lock: a save is all or nothing.
#[derive(Default)]
pub(crate) struct MemoryRepository {
    state: Mutex<State>,
}

#[derive(Default, Clone)]
struct State {
    personalities: BTreeMap<PersonalityId, Personality>,
    /// (scope, normalized name or alias) → (holder, is the holder's name).
    keys: HashMap<(Scope, String), (PersonalityId, bool)>,
    settings: BTreeMap<ServerId, ServerSettings>,
    events: Vec<EventEnvelope>,
}

impl MemoryRepository {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn find(&self, server: Option<ServerId>, key: &str) -> Option<Personality> {
        let in_scope = |scope: Scope| self.keys.get(&(scope, key.to_owned()));
        server
            .and_then(|s| in_scope(Scope::Server(s)))
            .or_else(|| in_scope(Scope::Global))
            .and_then(|(id, _)| self.personalities.get(id))
            .cloned()
    }

    /// Another personality's key that a key of `scope` would clash with.
    fn clash(&self, scope: Scope, key: &str, id: PersonalityId) -> Option<StoreError> {
        let (at, (holder, is_name)) = self.keys.iter().find(|((at, k), (holder, _))| {
            k == key
                && *holder != id
                && (scope == Scope::Global || *at == scope || *at == Scope::Global)
        })?;
        Some(StoreError::KeyTaken {
            holder: KeyHolder {
                personality_name: self.personalities[holder].name().to_string(),
                is_name: *is_name,
                server: at.0.server(),
            },
            key: key.to_owned(),
        })
    }

    fn add_key(
        &mut self,
        scope: Scope,
        key: String,
        id: PersonalityId,
        is_name: bool,
    ) -> Result<(), StoreError> {
        if let Some(taken) = self.clash(scope, &key, id) {
            return Err(taken);
        }
        self.keys.insert((scope, key), (id, is_name));
        Ok(())
    }

    /// The latest removal, among `server`'s personalities and the global ones, of one whose
    /// name had `key` and that was not restored since.
    fn find_removed(&self, server: Option<ServerId>, key: &str) -> Option<Removed> {
        let personality = self.events.iter().rev().find_map(|e| {
            let DomainEvent::PersonalityRemoved { name, .. } = &e.event else {
                return None;
            };
            let id = e.aggregate_id.personality()?;
            if name.key() != key || self.last_version(id) != e.aggregate_version {
                return None;
            }
            let history = self
                .events
                .iter()
                .filter(|h| h.aggregate_id == e.aggregate_id);
            let p = Personality::replay(id, history.map(|h| (&h.event, h.occurred_at)))?;
            let scope = p.scope();
            (scope.is_global() || scope.server() == server).then_some(p)
        })?;
        let (id, scope) = (personality.id(), personality.scope());
        let name_holder = match self.clash(scope, &personality.name().key(), id) {
            Some(StoreError::KeyTaken { holder, .. }) => Some(holder),
            _ => None,
        };
        let taken_aliases = personality
            .aliases()
            .iter()
            .filter(|a| self.clash(scope, a.as_str(), id).is_some())
            .cloned()
            .collect();
        Some(Removed {
            personality,
            name_holder,
            taken_aliases,
        })
    }

    /// The version of the aggregate's last event, 0 when it has none.
    fn last_version(&self, id: PersonalityId) -> i64 {
        let aggregate = AggregateId::from(id);
        self.events
            .iter()
            .rev()
            .find(|e| e.aggregate_id == aggregate)
            .map_or(0, |e| e.aggregate_version)
    }

    /// Refuses a personality of `server` that the server's settings don't let `creator`
    /// bring in for `owner`.
    fn check_creator(
        &self,
        creator: Creator,
        owner: UserId,
        server: ServerId,
    ) -> Result<(), StoreError> {
        let settings = self.settings(server).settings;
        if creator == Creator::Member && !settings.members_may_create {
            return Err(StoreError::CreationClosed);
        }
        let limit = settings.member_limit.get();
        let owned = self
            .personalities
            .values()
            .filter(|p| p.scope() == Scope::Server(server) && p.owner_id() == owner)
            .count();
        if owned >= limit {
            return Err(StoreError::OwnerLimit(limit));
        }
        Ok(())
    }

    fn apply(&mut self, change: Change) -> Result<Vec<EventEnvelope>, StoreError> {
        let personality = change.personality;
        let id = personality.id();
        let restoring = matches!(
            change.events.first().map(|e| &e.event),
            Some(DomainEvent::PersonalityRestored { .. })
        );
        // A restored personality has no state left, only its history.
        let stored_version = if restoring && !self.personalities.contains_key(&id) {
            self.last_version(id)
        } else {
            self.personalities.get(&id).map_or(0, |p| p.version())
        };
        if stored_version != change.expected_version {
            return Err(StoreError::Conflict);
        }
        let mut removed = false;
        let scope = personality.scope();
        for new in &change.events {
            match &new.event {
                DomainEvent::PersonalityCreated {
                    name,
                    aliases,
                    scope,
                    owner_id,
                    ..
                }
                | DomainEvent::PersonalityRestored {
                    name,
                    aliases,
                    scope,
                    owner_id,
                    ..
                } => {
                    if let (Some(creator), Scope::Server(server)) = (change.creator, scope) {
                        self.check_creator(creator, *owner_id, *server)?;
                    }
                    self.personalities.insert(id, personality.clone());
                    self.add_key(*scope, name.key(), id, true)?;
                    for alias in aliases {
                        self.add_key(*scope, alias.to_string(), id, false)?;
                    }
                }
                DomainEvent::PersonalityAliasAdded { alias } => {
                    self.add_key(scope, alias.to_string(), id, false)?;
                }
                DomainEvent::PersonalityAliasRemoved { alias } => {
                    self.keys.remove(&(scope, alias.to_string()));
                }
                DomainEvent::PersonalityMadeGlobal { .. } => {
                    let held: Vec<_> = self
                        .keys
                        .iter()
                        .filter(|(_, (holder, _))| *holder == id)
                        .map(|((_, key), (_, is_name))| (key.clone(), *is_name))
                        .collect();
                    self.keys.retain(|_, (holder, _)| *holder != id);
                    for (key, is_name) in held {
                        self.add_key(Scope::Global, key, id, is_name)?;
                    }
                }
                DomainEvent::PersonalityProfileUpdated { .. }
                | DomainEvent::ServerSettingsChanged { .. } => {}
                DomainEvent::PersonalityRemoved { .. } => removed = true,
            }
        }
        if removed {
            self.personalities.remove(&id);
            self.keys.retain(|_, (holder, _)| *holder != id);
        } else {
            self.personalities.insert(id, personality);
        }
        Ok(self.append(change.events))
    }

    /// Appends events under the next sequence numbers; returns them as stored.
    fn append(&mut self, events: Vec<super::NewEvent>) -> Vec<EventEnvelope> {
        let mut sequence = self.events.last().map_or(0, |e| e.sequence);
        let stored: Vec<EventEnvelope> = events
            .into_iter()
            .map(|e| {
                sequence += 1;
                e.stored_as(sequence)
            })
            .collect();
        self.events.extend(stored.iter().cloned());
        stored
    }

    fn settings(&self, server: ServerId) -> ServerSettings {
        self.settings
            .get(&server)
            .cloned()
            .unwrap_or_else(|| ServerSettings::defaults(server))
    }
}

/// Applies the change the service decided on, or hands its refusal back unapplied.
fn apply_decision(
    state: &mut State,
    decision: Result<Change, ServiceError>,
) -> Result<Result<Saved, ServiceError>, StoreError> {
    let change = match decision {
        Ok(change) => change,
        Err(refused) => return Ok(Err(refused)),
    };
    let personality = change.personality.clone();
    Ok(Ok((personality, apply_whole(state, change)?)))
}

/// Applies `change` to a copy first, so that a refused change leaves nothing behind.
fn apply_whole(state: &mut State, change: Change) -> Result<Vec<EventEnvelope>, StoreError> {
    let mut next = state.clone();
    let events = next.apply(change)?;
    *state = next;
    Ok(events)
}

#[async_trait]
impl PersonalityRepository for MemoryRepository {
    async fn find_by_key(
        &self,
        server: Option<ServerId>,
        key: &str,
    ) -> Result<Option<Personality>, StoreError> {
        Ok(self.state().find(server, key))
    }

    async fn get(&self, id: PersonalityId) -> Result<Option<Personality>, StoreError> {
        Ok(self.state().personalities.get(&id).cloned())
    }

    async fn list(&self, listing: Listing) -> Result<Vec<Personality>, StoreError> {
        let visible = |p: &Personality| match listing.visible_in {
            None => true,
            Some(v) => match p.scope() {
                Scope::Global => v.with_globals,
                Scope::Server(s) => s == v.server,
            },
        };
        let mut listed: Vec<Personality> = self
            .state()
            .personalities
            .values()
            .filter(|p| listing.owner.map_or(true, |o| p.owner_id() == o) && visible(p))
            .cloned()
            .collect();
        listed.sort_by_key(|p| p.name().as_str().to_lowercase());
        Ok(listed)
    }

    async fn save(&self, change: Change) -> Result<Vec<EventEnvelope>, StoreError> {
        apply_whole(&mut self.state(), change)
    }

    async fn rehearse(
        &self,
        changes: Vec<Change>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut trial = self.state().clone();
        Ok(changes
            .into_iter()
            .map(|change| apply_whole(&mut trial, change).map(|_| ()))
            .collect())
    }

    async fn change(
        &self,
        server: Option<ServerId>,
        key: &str,
        decide: Decide,
    ) -> Result<Result<Saved, ServiceError>, StoreError> {
        let mut state = self.state();
        let decision = decide(state.find(server, key));
        apply_decision(&mut state, decision)
    }

    async fn restore(
        &self,
        server: Option<ServerId>,
        key: &str,
        decide: DecideRestore,
    ) -> Result<Result<Saved, ServiceError>, StoreError> {
        let mut state = self.state();
        let decision = decide(state.find_removed(server, key));
        apply_decision(&mut state, decision)
    }

    async fn settings(&self, server: ServerId) -> Result<ServerSettings, StoreError> {
        Ok(self.state().settings(server))
    }

    async fn all_settings(&self) -> Result<Vec<ServerSettings>, StoreError> {
        Ok(self.state().settings.values().cloned().collect())
    }

    async fn change_settings(
        &self,
        server: ServerId,
        decide: DecideSettings,
    ) -> Result<Result<(ServerSettings, Vec<EventEnvelope>), ServiceError>, StoreError> {
        let mut state = self.state();
        let change = match decide(state.settings(server)) {
            Ok(change) => change,
            Err(refused) => return Ok(Err(refused)),
        };
        if change.settings.version != state.settings(server).version + 1 {
            return Err(StoreError::Conflict);
        }
        state.settings.insert(server, change.settings.clone());
        let stored = state.append(vec![change.event]);
        Ok(Ok((change.settings, stored)))
    }

    async fn events(&self, filter: EventFilter) -> Result<Vec<EventEnvelope>, StoreError> {
        Ok(self
            .state()
            .events
            .iter()
            .filter(|e| filter.matches(e))
            .take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn last_sequence(&self) -> Result<i64, StoreError> {
        Ok(self.state().events.last().map_or(0, |e| e.sequence))
    }

    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let state = self.state();
        Ok(Snapshot {
            personalities: state.personalities.values().cloned().collect(),
            settings: state.settings.values().cloned().collect(),
            events: state.events.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::repository_contract;

    #[tokio::test]
    async fn the_memory_repository_keeps_the_repository_contract() {
        repository_contract::check(MemoryRepository::default).await;
    }
}
