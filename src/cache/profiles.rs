//! What the message path reads about personalities: their profiles by id, and the index of
//! their names and aliases that the mention parser looks words up in.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use dashmap::DashMap;
use smol_str::SmolStr;

use crate::domain::{
    Alias, AvatarUrl, DisplayName, MaxTokens, ModelName, Personality, PersonalityId,
    PersonalityName, Profile, Prompt, Scope, ServerId, Temperature, UserId,
};

/// What the message path needs to know about a personality, without touching the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    pub id: PersonalityId,
    pub name: PersonalityName,
    pub owner_id: UserId,
    pub scope: Scope,
    pub display_name: DisplayName,
    pub avatar_url: Option<AvatarUrl>,
    pub prompt: Prompt,
    pub model: Option<ModelName>,
    /// Answers only in age-restricted channels, never in DMs.
    pub nsfw: bool,
    pub temperature: Option<Temperature>,
    pub max_tokens: Option<MaxTokens>,
    pub aliases: Vec<Alias>,
    pub version: i64,
}

impl ProfileInfo {
    /// The cached view of a stored personality.
    pub fn of(p: &Personality) -> Self {
        Self::from_personality(p.clone())
    }

    /// The cached view of a stored personality, taking its fields rather than copying them.
    pub fn from_personality(p: Personality) -> Self {
        let p = p.into_stored();
        Self::from_parts(
            p.id, p.name, p.owner_id, p.scope, p.profile, p.aliases, p.version,
        )
    }

    /// The cached view of a personality given by its parts (as an event carries them).
    pub fn from_parts(
        id: PersonalityId,
        name: PersonalityName,
        owner_id: UserId,
        scope: Scope,
        profile: Profile,
        aliases: Vec<Alias>,
        version: i64,
    ) -> Self {
        Self {
            id,
            name,
            owner_id,
            scope,
            display_name: profile.display_name,
            avatar_url: profile.avatar_url,
            prompt: profile.prompt,
            model: profile.model,
            nsfw: profile.nsfw,
            temperature: profile.temperature,
            max_tokens: profile.max_tokens,
            aliases,
            version,
        }
    }

    fn with_profile(&self, profile: &Profile, version: i64) -> Self {
        Self {
            display_name: profile.display_name.clone(),
            avatar_url: profile.avatar_url.clone(),
            prompt: profile.prompt.clone(),
            model: profile.model.clone(),
            nsfw: profile.nsfw,
            temperature: profile.temperature,
            max_tokens: profile.max_tokens,
            version,
            ..self.clone()
        }
    }

    /// Whether members can talk to it in `server` (`None`: a DM of `member`): a server's
    /// own personality there only, a global one everywhere, and in DMs also the member's own.
    pub fn is_usable(&self, server: Option<ServerId>, member: UserId) -> bool {
        match (self.scope, server) {
            (Scope::Global, _) => true,
            (Scope::Server(home), Some(here)) => home == here,
            (Scope::Server(_), None) => self.owner_id == member,
        }
    }
}

/// Profile info of every personality plus the index of names and aliases (normalized keys),
/// read by every message. Changed only by the profile-cache event handler (and the load at
/// start-up), never by a command directly.
#[derive(Debug, Default)]
pub struct ProfileCache {
    by_id: DashMap<PersonalityId, Arc<ProfileInfo>>,
    /// Per scope (a server, or global), every name and alias, and every word-prefix of a
    /// multi-word one ("the" and "the bard" for "the bard of avon"), so that the mention
    /// parser learns from one look-up whether adding the next word can still match: a
    /// one-word alias costs one look-up per '@' and scope.
    /// Keys are `SmolStr`, held inside the map's buckets up to 23 bytes: a boxed key costs
    /// a second memory read per look-up, and with it a mention at 100,000 aliases missed the
    /// routing floor (≤ 1.5× the time at 10 aliases, `benches/routing.rs`).
    by_key: RwLock<HashMap<Scope, KeyIndex>>,
    /// Each member's personalities: in a DM, members talk to the global ones and their own.
    /// A set, so that adding one costs the same whether its owner has ten or 100,000; in id
    /// order, which is the order they were created in.
    by_owner: DashMap<UserId, BTreeSet<PersonalityId>>,
    /// The most words any key has: bounds the mention parser's work per '@'. Never shrinks,
    /// which costs at most a few extra look-ups after a long alias is removed.
    max_words: AtomicUsize,
    /// The most characters any key has (a name may be longer than any alias): the mention
    /// parser never looks up a longer span. Never shrinks, like `max_words`.
    max_chars: AtomicUsize,
}

/// The names and aliases of one scope.
type KeyIndex = HashMap<SmolStr, KeyEntry>;

/// What the index knows about one normalized key.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyEntry {
    /// The personality whose name or alias this key is, if any.
    pub(crate) id: Option<PersonalityId>,
    /// How many longer keys start with this key and a space.
    pub(crate) longer: u32,
}

impl KeyEntry {
    /// Neither a key nor the prefix of one: the index drops it.
    fn is_unused(&self) -> bool {
        self.id.is_none() && self.longer == 0
    }
}

impl ProfileCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache with room for `personalities` and `keys` names and aliases, so a
    /// start-up load doesn't grow (and copy) its maps on the way.
    /// The global scope gets the room: before personalities had a home server, every one
    /// was global.
    pub fn with_capacity(personalities: usize, keys: usize) -> Self {
        Self {
            by_id: DashMap::with_capacity(personalities),
            by_key: RwLock::new(HashMap::from([(
                Scope::Global,
                KeyIndex::with_capacity(keys),
            )])),
            by_owner: DashMap::new(),
            max_words: AtomicUsize::new(0),
            max_chars: AtomicUsize::new(0),
        }
    }

    /// Inserts or replaces a personality and indexes its name and aliases. An older version
    /// than the one cached is ignored (events may be delivered again on catch-up).
    pub fn put(&self, info: ProfileInfo) {
        let name_key = info.name.key();
        if let Some(current) = self.by_id.get(&info.id) {
            if current.version > info.version {
                return;
            }
        }
        self.index(info.scope, &name_key, info.id);
        for alias in &info.aliases {
            self.index(info.scope, alias.as_str(), info.id);
        }
        self.by_owner
            .entry(info.owner_id)
            .or_default()
            .insert(info.id);
        self.by_id.insert(info.id, Arc::new(info));
    }

    /// Replaces the profile of a cached personality.
    pub fn update_profile(&self, id: PersonalityId, profile: &Profile, version: i64) {
        if let Some(mut entry) = self.by_id.get_mut(&id) {
            if entry.version < version {
                *entry = Arc::new(entry.with_profile(profile, version));
            }
        }
    }

    /// Adds an alias to a cached personality and to the index.
    pub fn add_alias(&self, id: PersonalityId, alias: &Alias, version: i64) {
        if let Some(mut entry) = self.by_id.get_mut(&id) {
            if entry.version >= version {
                return;
            }
            let mut info = (**entry).clone();
            if let Err(at) = info.aliases.binary_search(alias) {
                info.aliases.insert(at, alias.clone());
            }
            info.version = version;
            let scope = info.scope;
            *entry = Arc::new(info);
            self.index(scope, alias.as_str(), id);
        }
    }

    /// Removes an alias from a cached personality and from the index.
    pub fn remove_alias(&self, id: PersonalityId, alias: &Alias, version: i64) {
        if let Some(mut entry) = self.by_id.get_mut(&id) {
            self.unindex(entry.scope, alias.as_str(), id);
            if entry.version >= version {
                return;
            }
            let mut info = (**entry).clone();
            info.aliases.retain(|a| a != alias);
            info.version = version;
            *entry = Arc::new(info);
        }
    }

    /// Moves a cached personality's names and aliases to the global scope.
    pub fn make_global(&self, id: PersonalityId, version: i64) {
        let Some(mut entry) = self.by_id.get_mut(&id) else {
            return;
        };
        if entry.version >= version {
            return;
        }
        let info = ProfileInfo {
            scope: Scope::Global,
            version,
            ..(**entry).clone()
        };
        for key in std::iter::once(info.name.key()).chain(info.aliases.iter().map(Alias::to_string))
        {
            self.unindex(entry.scope, &key, id);
            self.index(Scope::Global, &key, id);
        }
        *entry = Arc::new(info);
    }

    /// Forgets a personality: its entry, its name and every alias.
    pub fn remove(&self, id: PersonalityId, name: &PersonalityName, aliases: &[Alias]) {
        let Some((_, info)) = self.by_id.remove(&id) else {
            return;
        };
        self.unindex(info.scope, &name.key(), id);
        // The aliases the event listed, and any the cache knew (they are the same unless the
        // cache was stale).
        for alias in aliases.iter().chain(&info.aliases) {
            self.unindex(info.scope, alias.as_str(), id);
        }
        if let Some(mut owned) = self.by_owner.get_mut(&info.owner_id) {
            owned.remove(&id);
        }
        self.by_owner
            .remove_if(&info.owner_id, |_, owned| owned.is_empty());
    }

    /// Whether members can talk to the personality with this id in `server` (see
    /// [`ProfileInfo::is_usable`]); false when it isn't cached.
    pub fn is_usable(&self, id: PersonalityId, server: Option<ServerId>, member: UserId) -> bool {
        self.by_id
            .get(&id)
            .is_some_and(|p| p.is_usable(server, member))
    }

    /// Whether a personality with this id is cached.
    pub fn contains(&self, id: PersonalityId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The personality with this id.
    pub fn get(&self, id: PersonalityId) -> Option<Arc<ProfileInfo>> {
        self.by_id.get(&id).map(|e| Arc::clone(&e))
    }

    /// The personality whose name or alias has this normalized key, among those of
    /// `server` and the global ones (the global ones only, for `None`).
    pub fn lookup_key(&self, server: Option<ServerId>, key: &str) -> Option<PersonalityId> {
        self.key_entry(server, key).id
    }

    /// The entry of a normalized key in `server` and the global scope: its personality, and
    /// whether longer keys start with it. A server's key never equals a global one (the
    /// store refuses it), so at most one scope holds the key itself.
    pub(crate) fn key_entry(&self, server: Option<ServerId>, key: &str) -> KeyEntry {
        let keys = self.read_keys();
        let at = |scope: Scope| {
            keys.get(&scope)
                .and_then(|index| index.get(key))
                .copied()
                .unwrap_or_default()
        };
        let global = at(Scope::Global);
        match server {
            Some(server) => {
                let own = at(Scope::Server(server));
                KeyEntry {
                    id: own.id.or(global.id),
                    longer: own.longer.saturating_add(global.longer),
                }
            }
            None => global,
        }
    }

    /// The personality a user's reference (name or alias, any case) points to in `server`.
    pub fn find(&self, server: Option<ServerId>, reference: &str) -> Option<Arc<ProfileInfo>> {
        let trimmed = reference.trim();
        let key = crate::domain::lookup_key(trimmed.strip_prefix('@').unwrap_or(trimmed));
        self.lookup_key(server, &key).and_then(|id| self.get(id))
    }

    /// The personalities `member` owns, in any server.
    pub fn owned_by(&self, member: UserId) -> Vec<Arc<ProfileInfo>> {
        self.by_owner
            .get(&member)
            .map(|owned| owned.iter().filter_map(|id| self.get(*id)).collect())
            .unwrap_or_default()
    }

    /// The most words in any name or alias.
    pub fn max_words(&self) -> usize {
        self.max_words.load(Ordering::Relaxed)
    }

    /// The most characters any name or alias has, normalized.
    pub fn max_chars(&self) -> usize {
        self.max_chars.load(Ordering::Relaxed)
    }

    /// How many personalities are cached.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no personality is cached.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// How many names and aliases are indexed.
    pub fn key_count(&self) -> usize {
        self.read_keys()
            .values()
            .flat_map(HashMap::values)
            .filter(|e| e.id.is_some())
            .count()
    }

    /// Every cached personality (for autocomplete, lists and checks), in no particular order.
    pub fn all(&self) -> Vec<Arc<ProfileInfo>> {
        self.by_id.iter().map(|e| Arc::clone(e.value())).collect()
    }

    /// Every indexed key with its scope and personality (for checks).
    pub fn keys(&self) -> Vec<(Scope, String, PersonalityId)> {
        self.read_keys()
            .iter()
            .flat_map(|(scope, index)| {
                index
                    .iter()
                    .filter_map(|(key, e)| Some((*scope, key.to_string(), e.id?)))
            })
            .collect()
    }

    /// The index, for reading. A poisoned lock is used as it is: every write leaves the
    /// map consistent between its steps, so a panic elsewhere can't leave it broken.
    fn read_keys(&self) -> RwLockReadGuard<'_, HashMap<Scope, KeyIndex>> {
        self.by_key.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The index, for writing (see [`ProfileCache::read_keys`] on poisoning).
    fn write_keys(&self) -> RwLockWriteGuard<'_, HashMap<Scope, KeyIndex>> {
        self.by_key.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Points `key` of `scope` at `id` and counts it under each of its word-prefixes.
    fn index(&self, scope: Scope, key: &str, id: PersonalityId) {
        self.max_words
            .fetch_max(key.split(' ').count(), Ordering::Relaxed);
        self.max_chars
            .fetch_max(key.chars().count(), Ordering::Relaxed);
        let mut scopes = self.write_keys();
        let keys = scopes.entry(scope).or_default();
        let was_key = keys.entry(key.into()).or_default().id.replace(id).is_some();
        if !was_key {
            for prefix in word_prefixes(key) {
                keys.entry(prefix.into()).or_default().longer += 1;
            }
        }
    }

    /// Forgets `key` of `scope` if `id` holds it, and its count under each of its
    /// word-prefixes; a server whose last key goes is dropped.
    fn unindex(&self, scope: Scope, key: &str, id: PersonalityId) {
        let mut scopes = self.write_keys();
        let Some(keys) = scopes.get_mut(&scope) else {
            return;
        };
        match keys.get_mut(key) {
            Some(entry) if entry.id == Some(id) => entry.id = None,
            _ => return,
        }
        drop_if_unused(keys, key);
        for prefix in word_prefixes(key) {
            if let Some(entry) = keys.get_mut(prefix) {
                entry.longer = entry.longer.saturating_sub(1);
            }
            drop_if_unused(keys, prefix);
        }
        if keys.is_empty() && scope != Scope::Global {
            scopes.remove(&scope);
        }
    }
}

/// Removes `key`'s entry once it is neither a key nor the prefix of one.
fn drop_if_unused(keys: &mut KeyIndex, key: &str) {
    if keys.get(key).is_some_and(KeyEntry::is_unused) {
        keys.remove(key);
    }
}

/// The proper word-prefixes of a normalized key: "the", "the bard" for "the bard of avon".
fn word_prefixes(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices(' ').map(move |(at, _)| &key[..at])
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{DisplayName, NewPersonality};
    use crate::routing::mention::find_mention;

    fn personality(name: &str, aliases: &[&str]) -> Personality {
        let new = NewPersonality {
            card_extensions: None,
            name: PersonalityName::parse(name).unwrap(),
            owner_id: UserId::new(1).unwrap(),
            scope: Scope::Global,
            profile: Profile {
                display_name: DisplayName::parse(name).unwrap(),
                avatar_url: None,
                prompt: Prompt::parse("").unwrap(),
                model: None,
                nsfw: false,
                temperature: None,
                max_tokens: None,
            },
            aliases: aliases.iter().map(|a| Alias::parse(a).unwrap()).collect(),
        };
        Personality::register(PersonalityId::new(), new, Utc::now()).unwrap()
    }

    /// What a DM reaches: the global personalities.
    fn everywhere(cache: &ProfileCache) -> crate::routing::Reachable<'_> {
        crate::routing::Reachable {
            cache,
            server: None,
            author: 99,
        }
    }

    fn cache_of(personalities: &[&Personality]) -> ProfileCache {
        let cache = ProfileCache::new();
        for p in personalities {
            cache.put(ProfileInfo::of(p));
        }
        cache
    }

    #[test]
    fn word_prefixes_of_multi_word_keys_are_indexed_but_are_not_keys() {
        let bard = personality("Bard", &["the bard of avon"]);
        let cache = cache_of(&[&bard]);
        assert_eq!(cache.key_count(), 2);
        assert_eq!(cache.keys().len(), 2);
        assert_eq!(cache.lookup_key(None, "the bard"), None);
        assert_eq!(cache.key_entry(None, "the bard").longer, 1);
        assert_eq!(cache.lookup_key(None, "the bard of avon"), Some(bard.id()));
        let found = find_mention("@The Bard of Avon, speak", &everywhere(&cache)).unwrap();
        assert_eq!(found.target, bard.id());
    }

    #[test]
    fn a_shorter_alias_and_a_longer_one_with_its_words_are_both_found() {
        let short = personality("Short", &["the"]);
        let long = personality("Long", &["the bard"]);
        let cache = cache_of(&[&short, &long]);
        assert_eq!(
            find_mention("@the bard hi", &everywhere(&cache))
                .unwrap()
                .target,
            long.id()
        );
        assert_eq!(
            find_mention("@the bardic hi", &everywhere(&cache))
                .unwrap()
                .target,
            short.id()
        );
        assert_eq!(
            find_mention("@the, hi", &everywhere(&cache))
                .unwrap()
                .target,
            short.id()
        );
    }

    #[test]
    fn removing_the_last_long_key_removes_its_prefixes_and_keeps_other_keys() {
        let short = personality("Short", &["the"]);
        let long = personality("Long", &["the bard of avon"]);
        let cache = cache_of(&[&short, &long]);
        cache.remove(long.id(), long.name(), long.aliases());
        assert_eq!(cache.lookup_key(None, "the"), Some(short.id()));
        assert_eq!(cache.key_entry(None, "the").longer, 0);
        assert!(!cache.read_keys()[&Scope::Global].contains_key("the bard"));
        assert!(!cache.contains(long.id()));
        assert_eq!(
            find_mention("@the bard of avon", &everywhere(&cache))
                .unwrap()
                .target,
            short.id()
        );
        cache.remove(short.id(), short.name(), short.aliases());
        assert!(cache.read_keys().values().all(HashMap::is_empty));
    }

    #[test]
    fn a_name_longer_than_any_alias_can_be_mentioned() {
        // Names may have 64 characters, aliases 50.
        let name = format!("The {}", "x".repeat(60));
        let long = personality(&name, &[]);
        let cache = cache_of(&[&long]);
        assert_eq!(cache.max_chars(), 64);
        let message = format!("@{name}, hello");
        assert_eq!(
            find_mention(&message, &everywhere(&cache)).unwrap().target,
            long.id()
        );
        let longer = format!("@{name}x hello");
        assert!(find_mention(&longer, &everywhere(&cache)).is_none());
    }

    #[test]
    fn a_key_held_by_someone_else_is_not_removed() {
        let first = personality("First", &["shared"]);
        let cache = cache_of(&[&first]);
        let other = PersonalityId::new();
        cache.unindex(Scope::Global, "shared", other);
        assert_eq!(cache.lookup_key(None, "shared"), Some(first.id()));
    }

    #[test]
    fn a_members_personalities_are_listed_once_each_in_creation_order_until_removed() {
        let first = personality("First", &["one"]);
        let second = personality("Second", &["two"]);
        let cache = cache_of(&[&second, &first, &second]);
        let owner = first.owner_id();
        let owned = |cache: &ProfileCache| -> Vec<PersonalityId> {
            cache.owned_by(owner).iter().map(|p| p.id).collect()
        };
        assert_eq!(owned(&cache), [first.id(), second.id()]);
        cache.remove(first.id(), first.name(), first.aliases());
        assert_eq!(owned(&cache), [second.id()]);
        cache.remove(second.id(), second.name(), second.aliases());
        assert!(owned(&cache).is_empty());
        assert!(cache.by_owner.is_empty());
    }
}
