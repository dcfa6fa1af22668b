use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::domain::{
    Alias, AvatarUrl, DisplayName, ModelName, Personality, PersonalityId, PersonalityName, Profile,
    Prompt, UserId,
};

/// What the message path needs to know about a personality, without touching the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    pub id: PersonalityId,
    pub name: PersonalityName,
    pub owner_id: UserId,
    pub display_name: DisplayName,
    pub avatar_url: Option<AvatarUrl>,
    pub prompt: Prompt,
    pub model: Option<ModelName>,
    pub aliases: Vec<Alias>,
    pub version: i64,
}

impl ProfileInfo {
    /// The cached view of a stored personality.
    pub fn of(p: &Personality) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            owner_id: p.owner_id,
            display_name: p.profile.display_name.clone(),
            avatar_url: p.profile.avatar_url.clone(),
            prompt: p.profile.prompt.clone(),
            model: p.profile.model.clone(),
            aliases: p.aliases.clone(),
            version: p.version,
        }
    }

    fn with_profile(&self, profile: &Profile, version: i64) -> Self {
        Self {
            display_name: profile.display_name.clone(),
            avatar_url: profile.avatar_url.clone(),
            prompt: profile.prompt.clone(),
            model: profile.model.clone(),
            version,
            ..self.clone()
        }
    }
}

/// Profile info of every personality plus the index of names and aliases (normalized keys),
/// read by every message. Changed only by the profile-cache event handler (and the load at
/// start-up), never by a command directly.
#[derive(Debug, Default)]
pub struct ProfileCache {
    by_id: DashMap<PersonalityId, Arc<ProfileInfo>>,
    by_key: DashMap<String, PersonalityId>,
    /// The most words any key has: bounds the mention parser's work per '@'. Never shrinks,
    /// which costs at most a few extra look-ups after a long alias is removed.
    max_words: AtomicUsize,
}

impl ProfileCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache holding these personalities.
    pub fn from_personalities<'a>(
        personalities: impl IntoIterator<Item = &'a Personality>,
    ) -> Self {
        let cache = Self::new();
        for p in personalities {
            cache.put(ProfileInfo::of(p));
        }
        cache
    }

    /// Inserts or replaces a personality and indexes its name and aliases. An older version
    /// than the one cached is ignored (events may be delivered again on catch-up).
    pub fn put(&self, info: ProfileInfo) {
        if let Some(current) = self.by_id.get(&info.id) {
            if current.version > info.version {
                return;
            }
        }
        self.index(info.name.key(), info.id);
        for alias in &info.aliases {
            self.index(alias.as_str().to_owned(), info.id);
        }
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
            *entry = Arc::new(info);
            self.index(alias.as_str().to_owned(), id);
        }
    }

    /// Removes an alias from a cached personality and from the index.
    pub fn remove_alias(&self, id: PersonalityId, alias: &Alias, version: i64) {
        self.by_key
            .remove_if(alias.as_str(), |_, owner| *owner == id);
        if let Some(mut entry) = self.by_id.get_mut(&id) {
            if entry.version >= version {
                return;
            }
            let mut info = (**entry).clone();
            info.aliases.retain(|a| a != alias);
            info.version = version;
            *entry = Arc::new(info);
        }
    }

    /// Forgets a personality: its entry, its name and every alias.
    pub fn remove(&self, id: PersonalityId, name: &PersonalityName, aliases: &[Alias]) {
        self.by_key.remove_if(&name.key(), |_, owner| *owner == id);
        for alias in aliases {
            self.by_key
                .remove_if(alias.as_str(), |_, owner| *owner == id);
        }
        if let Some((_, info)) = self.by_id.remove(&id) {
            // Aliases the event didn't list (it always does; this guards a stale cache).
            for alias in &info.aliases {
                self.by_key
                    .remove_if(alias.as_str(), |_, owner| *owner == id);
            }
        }
    }

    /// The personality with this id.
    pub fn get(&self, id: PersonalityId) -> Option<Arc<ProfileInfo>> {
        self.by_id.get(&id).map(|e| Arc::clone(&e))
    }

    /// The personality whose name or alias has this normalized key.
    pub fn lookup_key(&self, key: &str) -> Option<PersonalityId> {
        self.by_key.get(key).map(|e| *e)
    }

    /// The personality a user's reference (name or alias, any case) points to.
    pub fn find(&self, reference: &str) -> Option<Arc<ProfileInfo>> {
        let trimmed = reference.trim();
        let key = crate::domain::lookup_key(trimmed.strip_prefix('@').unwrap_or(trimmed));
        self.lookup_key(&key).and_then(|id| self.get(id))
    }

    /// The most words in any name or alias.
    pub fn max_words(&self) -> usize {
        self.max_words.load(Ordering::Relaxed)
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
        self.by_key.len()
    }

    /// Every cached personality (for autocomplete, lists and checks), in no particular order.
    pub fn all(&self) -> Vec<Arc<ProfileInfo>> {
        self.by_id.iter().map(|e| Arc::clone(e.value())).collect()
    }

    /// Every indexed key with its personality (for checks).
    pub fn keys(&self) -> Vec<(String, PersonalityId)> {
        self.by_key
            .iter()
            .map(|e| (e.key().clone(), *e.value()))
            .collect()
    }

    fn index(&self, key: String, id: PersonalityId) {
        let words = key.split(' ').count();
        self.max_words.fetch_max(words, Ordering::Relaxed);
        self.by_key.insert(key, id);
    }
}
