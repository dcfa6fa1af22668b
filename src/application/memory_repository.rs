//! A [`PersonalityRepository`] in memory, for the service's fast tests.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::{
    Change, Decide, EventFilter, KeyHolder, PersonalityRepository, Saved, ServiceError, Snapshot,
    StoreError,
};
use crate::domain::{DomainEvent, Personality, PersonalityId, UserId};
use crate::events::EventEnvelope;

/// Personalities, their keys and the event log behind one lock: a save is all or nothing.
#[derive(Default)]
pub(crate) struct MemoryRepository {
    state: Mutex<State>,
}

#[derive(Default, Clone)]
struct State {
    personalities: BTreeMap<PersonalityId, Personality>,
    /// Normalized name or alias → (holder, is the holder's name).
    keys: HashMap<String, (PersonalityId, bool)>,
    events: Vec<EventEnvelope>,
}

impl MemoryRepository {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn find(&self, key: &str) -> Option<Personality> {
        self.keys
            .get(key)
            .and_then(|(id, _)| self.personalities.get(id))
            .cloned()
    }

    fn add_key(&mut self, key: String, id: PersonalityId, is_name: bool) -> Result<(), StoreError> {
        match self.keys.get(&key) {
            Some((holder, holder_is_name)) if *holder != id => Err(StoreError::KeyTaken {
                holder: KeyHolder {
                    personality_name: self.personalities[holder].name().to_string(),
                    is_name: *holder_is_name,
                },
                key,
            }),
            _ => {
                self.keys.insert(key, (id, is_name));
                Ok(())
            }
        }
    }

    fn apply(&mut self, change: Change) -> Result<Vec<EventEnvelope>, StoreError> {
        let personality = change.personality;
        let id = personality.id();
        let stored_version = self.personalities.get(&id).map_or(0, |p| p.version());
        if stored_version != change.expected_version {
            return Err(StoreError::Conflict);
        }
        let mut removed = false;
        for new in &change.events {
            match &new.event {
                DomainEvent::PersonalityCreated { name, aliases, .. } => {
                    self.personalities.insert(id, personality.clone());
                    self.add_key(name.key(), id, true)?;
                    for alias in aliases {
                        self.add_key(alias.to_string(), id, false)?;
                    }
                }
                DomainEvent::PersonalityAliasAdded { alias } => {
                    self.add_key(alias.to_string(), id, false)?;
                }
                DomainEvent::PersonalityAliasRemoved { alias } => {
                    self.keys.remove(alias.as_str());
                }
                DomainEvent::PersonalityProfileUpdated { .. } => {}
                DomainEvent::PersonalityRemoved { .. } => removed = true,
            }
        }
        if removed {
            self.personalities.remove(&id);
            self.keys.retain(|_, (holder, _)| *holder != id);
        } else {
            self.personalities.insert(id, personality);
        }
        let mut sequence = self.events.last().map_or(0, |e| e.sequence);
        let stored: Vec<EventEnvelope> = change
            .events
            .into_iter()
            .map(|e| {
                sequence += 1;
                e.stored_as(sequence)
            })
            .collect();
        self.events.extend(stored.iter().cloned());
        Ok(stored)
    }
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
    async fn find_by_key(&self, key: &str) -> Result<Option<Personality>, StoreError> {
        Ok(self.state().find(key))
    }

    async fn get(&self, id: PersonalityId) -> Result<Option<Personality>, StoreError> {
        Ok(self.state().personalities.get(&id).cloned())
    }

    async fn list(&self, owner: Option<UserId>) -> Result<Vec<Personality>, StoreError> {
        let mut listed: Vec<Personality> = self
            .state()
            .personalities
            .values()
            .filter(|p| owner.map_or(true, |o| p.owner_id() == o))
            .cloned()
            .collect();
        listed.sort_by_key(|p| p.name().as_str().to_lowercase());
        Ok(listed)
    }

    async fn save(&self, change: Change) -> Result<Vec<EventEnvelope>, StoreError> {
        apply_whole(&mut self.state(), change)
    }

    async fn change(
        &self,
        key: &str,
        decide: Decide,
    ) -> Result<Result<Saved, ServiceError>, StoreError> {
        let mut state = self.state();
        let change = match decide(state.find(key)) {
            Ok(change) => change,
            Err(refused) => return Ok(Err(refused)),
        };
        let personality = change.personality.clone();
        Ok(Ok((personality, apply_whole(&mut state, change)?)))
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
