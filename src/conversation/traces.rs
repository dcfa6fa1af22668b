//! Per personality, the keys of every tracking row that names it: what removing the
//! personality has to forget, found without scanning every tracked message.

use std::collections::HashSet;
use std::hash::Hash;

use dashmap::DashMap;

use crate::domain::PersonalityId;

/// The keys of one personality's tracking rows.
#[derive(Debug, Default)]
pub(super) struct TraceKeys {
    /// Ids of the messages it sent.
    pub messages: HashSet<u64>,
    /// (user id, channel id) of the conversations with it.
    pub conversations: HashSet<(u64, u64)>,
    /// Channels it is activated in.
    pub channels: HashSet<u64>,
}

impl TraceKeys {
    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.conversations.is_empty() && self.channels.is_empty()
    }
}

/// Which of a personality's key sets a change is about.
pub(super) trait KeySet<K> {
    fn of(keys: &mut TraceKeys) -> &mut HashSet<K>;
}

/// Messages, by id.
pub(super) struct Messages;
/// Conversations, by (user id, channel id).
pub(super) struct Conversations;
/// Activations, by channel id.
pub(super) struct Channels;

impl KeySet<u64> for Messages {
    fn of(keys: &mut TraceKeys) -> &mut HashSet<u64> {
        &mut keys.messages
    }
}

impl KeySet<(u64, u64)> for Conversations {
    fn of(keys: &mut TraceKeys) -> &mut HashSet<(u64, u64)> {
        &mut keys.conversations
    }
}

impl KeySet<u64> for Channels {
    fn of(keys: &mut TraceKeys) -> &mut HashSet<u64> {
        &mut keys.channels
    }
}

/// The index from personality to the keys of its rows. A personality with no rows has no
/// entry, so the index never holds more than the tracking itself.
#[derive(Debug, Default)]
pub(super) struct TraceIndex {
    by_personality: DashMap<PersonalityId, TraceKeys>,
}

impl TraceIndex {
    /// Lists `key` under `personality`.
    pub fn add<S: KeySet<K>, K: Eq + Hash>(&self, personality: PersonalityId, key: K) {
        S::of(&mut self.by_personality.entry(personality).or_default()).insert(key);
    }

    /// No longer lists `key` under `personality`.
    pub fn remove<S: KeySet<K>, K: Eq + Hash>(&self, personality: PersonalityId, key: &K) {
        self.by_personality.remove_if_mut(&personality, |_, keys| {
            S::of(keys).remove(key);
            keys.is_empty()
        });
    }

    /// True when some row names `personality`.
    pub fn names(&self, personality: PersonalityId) -> bool {
        self.by_personality.contains_key(&personality)
    }

    /// Takes every key listed under `personality`.
    pub fn take(&self, personality: PersonalityId) -> TraceKeys {
        self.by_personality
            .remove(&personality)
            .map(|(_, keys)| keys)
            .unwrap_or_default()
    }

    /// How many keys of each kind are listed under `personality`.
    #[cfg(test)]
    pub fn counts(&self, personality: PersonalityId) -> (usize, usize, usize) {
        self.by_personality
            .get(&personality)
            .map_or((0, 0, 0), |keys| {
                (
                    keys.messages.len(),
                    keys.conversations.len(),
                    keys.channels.len(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_personality_is_listed_while_any_key_names_it_and_not_after() {
        let index = TraceIndex::default();
        let aria = PersonalityId::new();
        assert!(!index.names(aria));
        index.add::<Messages, _>(aria, 1);
        index.add::<Conversations, _>(aria, (2, 3));
        index.add::<Channels, _>(aria, 4);
        assert_eq!(index.counts(aria), (1, 1, 1));
        index.remove::<Messages, _>(aria, &1);
        index.remove::<Conversations, _>(aria, &(2, 3));
        assert!(index.names(aria), "the activation still names it");
        index.remove::<Channels, _>(aria, &4);
        assert!(!index.names(aria), "an emptied entry is dropped");
    }

    #[test]
    fn removing_a_key_another_personality_holds_changes_nothing() {
        let index = TraceIndex::default();
        let (aria, bard) = (PersonalityId::new(), PersonalityId::new());
        index.add::<Messages, _>(aria, 1);
        index.remove::<Messages, _>(bard, &1);
        index.remove::<Channels, _>(aria, &1);
        assert_eq!(index.counts(aria), (1, 0, 0));
        assert!(!index.names(bard));
    }

    #[test]
    fn take_empties_the_entry() {
        let index = TraceIndex::default();
        let aria = PersonalityId::new();
        index.add::<Messages, _>(aria, 1);
        index.add::<Messages, _>(aria, 2);
        let keys = index.take(aria);
        assert_eq!(keys.messages, HashSet::from([1, 2]));
        assert!(!index.names(aria));
        assert!(index.take(aria).is_empty());
    }
}
