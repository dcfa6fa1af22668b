use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{
    Alias, AvatarUrl, CardExtensions, DisplayName, DomainError, DomainEvent, MaxTokens, ModelName,
    PersonalityId, PersonalityName, Profile, ProfileField, Prompt, Scope, Temperature, UserId,
    MAX_ALIASES,
};

/// How many days after its removal a personality can still be restored.
pub const RESTORE_WINDOW_DAYS: i64 = 30;

/// Everything needed to register a personality, already validated.
#[derive(Debug, Clone)]
pub struct NewPersonality {
    pub name: PersonalityName,
    pub owner_id: UserId,
    pub scope: Scope,
    pub profile: Profile,
    pub aliases: Vec<Alias>,
    /// The extensions of the character card it comes from, if any.
    pub card_extensions: Option<CardExtensions>,
}

/// The fields an update sets. `None` leaves a field alone; for the optional fields
/// `Some(None)` clears them (back to no avatar / the default model).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub display_name: Option<DisplayName>,
    pub avatar_url: Option<Option<AvatarUrl>>,
    pub prompt: Option<Prompt>,
    pub model: Option<Option<ModelName>>,
    pub nsfw: Option<bool>,
    pub temperature: Option<Option<Temperature>>,
    pub max_tokens: Option<Option<MaxTokens>>,
}

impl From<Profile> for ProfileChanges {
    /// Changes that set every field to `profile`'s value.
    fn from(profile: Profile) -> Self {
        Self {
            display_name: Some(profile.display_name),
            avatar_url: Some(profile.avatar_url),
            prompt: Some(profile.prompt),
            model: Some(profile.model),
            nsfw: Some(profile.nsfw),
            temperature: Some(profile.temperature),
            max_tokens: Some(profile.max_tokens),
        }
    }
}

/// The Personality aggregate. Its fields are private: every change goes through a method
/// that checks the rule and records an event, and the state is only ever changed by
/// applying events, so state and history can't diverge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Personality {
    id: PersonalityId,
    name: PersonalityName,
    owner_id: UserId,
    scope: Scope,
    profile: Profile,
    /// Sorted, no duplicates.
    aliases: Vec<Alias>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The number of events applied; the version of the last one.
    version: i64,
    #[serde(skip)]
    removed: bool,
    #[serde(skip)]
    uncommitted: Vec<DomainEvent>,
}

/// A personality as a store keeps it: the state the fold of its events produced.
#[derive(Debug, Clone)]
pub struct StoredPersonality {
    pub id: PersonalityId,
    pub name: PersonalityName,
    pub owner_id: UserId,
    pub scope: Scope,
    pub profile: Profile,
    pub aliases: Vec<Alias>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Personality {
    /// Registers a new personality: records `PersonalityCreated`.
    pub fn register(
        id: PersonalityId,
        new: NewPersonality,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        let mut aliases = new.aliases;
        aliases.sort();
        aliases.dedup();
        if aliases.len() > MAX_ALIASES {
            return Err(DomainError::TooManyAliases(MAX_ALIASES));
        }
        if let Some(alias) = aliases.iter().find(|a| a.as_str() == new.name.key()) {
            return Err(DomainError::invalid(
                "alias",
                format!("\"{alias}\" is already the personality's name"),
            ));
        }
        let event = DomainEvent::PersonalityCreated {
            name: new.name,
            owner_id: new.owner_id,
            scope: new.scope,
            profile: new.profile,
            aliases,
            card_extensions: new.card_extensions,
        };
        let mut personality = Self::from_created(id, &event, now).ok_or_else(|| {
            DomainError::invalid("event", "internal: a created event was expected")
        })?;
        personality.uncommitted.push(event);
        Ok(personality)
    }

    /// Loads a personality from its stored state (a snapshot of the fold of its events).
    pub fn from_stored(stored: StoredPersonality) -> Self {
        let mut aliases = stored.aliases;
        aliases.sort();
        aliases.dedup();
        Self {
            id: stored.id,
            name: stored.name,
            owner_id: stored.owner_id,
            scope: stored.scope,
            profile: stored.profile,
            aliases,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
            version: stored.version,
            removed: false,
            uncommitted: Vec::new(),
        }
    }

    /// The personality's identity.
    pub fn id(&self) -> PersonalityId {
        self.id
    }

    /// Its unique name, as its creator typed it.
    pub fn name(&self) -> &PersonalityName {
        &self.name
    }

    /// The member who owns it.
    pub fn owner_id(&self) -> UserId {
        self.owner_id
    }

    /// Its home server, or global.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// What it looks and sounds like.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Its aliases, sorted.
    pub fn aliases(&self) -> &[Alias] {
        &self.aliases
    }

    /// When it was registered.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// When its last event happened.
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// The number of events applied: the version of the last one.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Its state as a store keeps it.
    pub fn into_stored(self) -> StoredPersonality {
        StoredPersonality {
            id: self.id,
            name: self.name,
            owner_id: self.owner_id,
            scope: self.scope,
            profile: self.profile,
            aliases: self.aliases,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }

    /// Rebuilds a personality from its history (the fold `events verify` compares with).
    /// Returns `None` for an empty history or one that ends in removal.
    pub fn from_history<'a>(
        id: PersonalityId,
        history: impl Iterator<Item = (&'a DomainEvent, DateTime<Utc>)>,
    ) -> Option<Self> {
        Self::replay(id, history).filter(|p| !p.removed)
    }

    /// Rebuilds a personality from its history, also one that ends in removal: a removed
    /// personality as it was when removed (`updated_at` is the removal's time), which
    /// [`Personality::restore`] can bring back. `None` for an empty history.
    pub fn replay<'a>(
        id: PersonalityId,
        mut history: impl Iterator<Item = (&'a DomainEvent, DateTime<Utc>)>,
    ) -> Option<Self> {
        let (first, at) = history.next()?;
        let mut personality = Self::from_created(id, first, at)?;
        for (event, at) in history {
            personality.apply(event, at);
        }
        Some(personality)
    }

    /// Changes profile fields: records `PersonalityProfileUpdated` with the fields that differ.
    pub fn update_profile(
        &mut self,
        changes: ProfileChanges,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut profile = self.profile.clone();
        let mut changed = Vec::new();
        if let Some(v) = changes.display_name.filter(|v| *v != profile.display_name) {
            profile.display_name = v;
            changed.push(ProfileField::DisplayName);
        }
        if let Some(v) = changes.avatar_url.filter(|v| *v != profile.avatar_url) {
            profile.avatar_url = v;
            changed.push(ProfileField::AvatarUrl);
        }
        if let Some(v) = changes.prompt.filter(|v| *v != profile.prompt) {
            profile.prompt = v;
            changed.push(ProfileField::Prompt);
        }
        if let Some(v) = changes.model.filter(|v| *v != profile.model) {
            profile.model = v;
            changed.push(ProfileField::Model);
        }
        if let Some(v) = changes.nsfw.filter(|v| *v != profile.nsfw) {
            profile.nsfw = v;
            changed.push(ProfileField::Nsfw);
        }
        if let Some(v) = changes.temperature.filter(|v| *v != profile.temperature) {
            profile.temperature = v;
            changed.push(ProfileField::Temperature);
        }
        if let Some(v) = changes.max_tokens.filter(|v| *v != profile.max_tokens) {
            profile.max_tokens = v;
            changed.push(ProfileField::MaxTokens);
        }
        if changed.is_empty() {
            return Err(DomainError::NothingToUpdate);
        }
        self.record_that(
            DomainEvent::PersonalityProfileUpdated { changed, profile },
            now,
        );
        Ok(())
    }

    /// Adds an alias: records `PersonalityAliasAdded`.
    pub fn add_alias(&mut self, alias: Alias, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.aliases.contains(&alias) {
            return Err(DomainError::AliasAlreadyPresent(alias.into()));
        }
        if alias.as_str() == self.name.key() {
            return Err(DomainError::invalid(
                "alias",
                format!("\"{alias}\" is already the personality's name"),
            ));
        }
        if self.aliases.len() >= MAX_ALIASES {
            return Err(DomainError::TooManyAliases(MAX_ALIASES));
        }
        self.record_that(DomainEvent::PersonalityAliasAdded { alias }, now);
        Ok(())
    }

    /// Removes an alias: records `PersonalityAliasRemoved`.
    pub fn remove_alias(&mut self, alias: Alias, now: DateTime<Utc>) -> Result<(), DomainError> {
        if !self.aliases.contains(&alias) {
            return Err(DomainError::AliasNotPresent(alias.into()));
        }
        self.record_that(DomainEvent::PersonalityAliasRemoved { alias }, now);
        Ok(())
    }

    /// Removes the personality: records `PersonalityRemoved` with its name and aliases.
    pub fn remove(&mut self, now: DateTime<Utc>) {
        let event = DomainEvent::PersonalityRemoved {
            name: self.name.clone(),
            display_name: self.profile.display_name.clone(),
            aliases: self.aliases.clone(),
        };
        self.record_that(event, now);
    }

    /// Brings a removed personality back as it was removed, without the aliases in `taken`
    /// (other personalities hold them now): records `PersonalityRestored`. Refused when it
    /// isn't removed, or was removed more than [`RESTORE_WINDOW_DAYS`] days before `now`.
    pub fn restore(&mut self, taken: &[Alias], now: DateTime<Utc>) -> Result<(), DomainError> {
        if !self.removed {
            return Err(DomainError::NotRemoved(self.name.to_string()));
        }
        // The removal is the last event of a removed personality: `updated_at` is its time.
        if now - self.updated_at > Duration::days(RESTORE_WINDOW_DAYS) {
            return Err(DomainError::RestoreExpired {
                name: self.name.to_string(),
                days: RESTORE_WINDOW_DAYS,
            });
        }
        let (left_out, aliases) = self
            .aliases
            .iter()
            .cloned()
            .partition(|a| taken.contains(a));
        let event = DomainEvent::PersonalityRestored {
            name: self.name.clone(),
            owner_id: self.owner_id,
            scope: self.scope,
            profile: self.profile.clone(),
            aliases,
            left_out,
        };
        self.record_that(event, now);
        Ok(())
    }

    /// Makes a server's personality global: records `PersonalityMadeGlobal`.
    pub fn make_global(&mut self, now: DateTime<Utc>) -> Result<(), DomainError> {
        let Scope::Server(server) = self.scope else {
            return Err(DomainError::AlreadyGlobal(self.name.to_string()));
        };
        self.record_that(DomainEvent::PersonalityMadeGlobal { server }, now);
        Ok(())
    }

    /// True once `remove` was recorded.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// The events recorded since the aggregate was loaded, oldest first; clears them.
    pub fn take_uncommitted_events(&mut self) -> Vec<DomainEvent> {
        std::mem::take(&mut self.uncommitted)
    }

    /// The version the aggregate had before the uncommitted events: what the store expects.
    pub fn committed_version(&self) -> i64 {
        self.version - self.uncommitted.len() as i64
    }

    fn record_that(&mut self, event: DomainEvent, now: DateTime<Utc>) {
        self.apply(&event, now);
        self.uncommitted.push(event);
    }

    fn from_created(id: PersonalityId, event: &DomainEvent, at: DateTime<Utc>) -> Option<Self> {
        let DomainEvent::PersonalityCreated {
            name,
            owner_id,
            scope,
            profile,
            aliases,
            ..
        } = event
        else {
            return None;
        };
        Some(Self {
            id,
            name: name.clone(),
            owner_id: *owner_id,
            scope: *scope,
            profile: profile.clone(),
            aliases: aliases.clone(),
            created_at: at,
            updated_at: at,
            version: 1,
            removed: false,
            uncommitted: Vec::new(),
        })
    }

    fn apply(&mut self, event: &DomainEvent, at: DateTime<Utc>) {
        match event {
            // A second creation can't be recorded by this type; a stored one is ignored.
            DomainEvent::PersonalityCreated { .. } => {}
            DomainEvent::PersonalityProfileUpdated { profile, .. } => {
                self.profile = profile.clone();
            }
            DomainEvent::PersonalityRemoved { .. } => self.removed = true,
            DomainEvent::PersonalityRestored {
                name,
                owner_id,
                scope,
                profile,
                aliases,
                ..
            } => {
                self.name.clone_from(name);
                self.owner_id = *owner_id;
                self.scope = *scope;
                self.profile.clone_from(profile);
                self.aliases.clone_from(aliases);
                self.removed = false;
            }
            DomainEvent::PersonalityAliasAdded { alias } => {
                if let Err(at) = self.aliases.binary_search(alias) {
                    self.aliases.insert(at, alias.clone());
                }
            }
            DomainEvent::PersonalityAliasRemoved { alias } => {
                self.aliases.retain(|a| a != alias);
            }
            DomainEvent::PersonalityMadeGlobal { .. } => self.scope = Scope::Global,
            // A server's event, never in a personality's history.
            DomainEvent::ServerSettingsChanged { .. } => return,
        }
        self.version += 1;
        self.updated_at = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn aria() -> Personality {
        let new = NewPersonality {
            card_extensions: None,
            name: PersonalityName::parse("Aria").unwrap(),
            owner_id: UserId::new(7).unwrap(),
            scope: Scope::Server(super::super::ServerId::new(8001).unwrap()),
            profile: Profile {
                display_name: DisplayName::parse("Aria the Bard").unwrap(),
                avatar_url: None,
                prompt: Prompt::parse("You sing.").unwrap(),
                model: None,
                nsfw: false,
                temperature: None,
                max_tokens: None,
            },
            aliases: vec![Alias::parse("bard").unwrap()],
        };
        Personality::register(PersonalityId::new(), new, now()).unwrap()
    }

    #[test]
    fn registering_records_one_created_event_at_version_one() {
        let mut p = aria();
        assert_eq!(p.version, 1);
        assert_eq!(p.committed_version(), 0);
        let events = p.take_uncommitted_events();
        assert!(matches!(
            events.as_slice(),
            [DomainEvent::PersonalityCreated { .. }]
        ));
        assert_eq!(p.committed_version(), 1);
    }

    #[test]
    fn an_alias_equal_to_the_name_is_rejected() {
        let mut p = aria();
        let err = p
            .add_alias(Alias::parse("ARIA").unwrap(), now())
            .unwrap_err();
        assert!(err.to_string().contains("already the personality's name"));
    }

    #[test]
    fn given_an_alias_when_it_is_added_again_then_nothing_is_recorded() {
        let mut p = aria();
        p.take_uncommitted_events();
        let err = p
            .add_alias(Alias::parse("Bard").unwrap(), now())
            .unwrap_err();
        assert_eq!(err, DomainError::AliasAlreadyPresent("bard".into()));
        assert!(p.take_uncommitted_events().is_empty());
        assert_eq!(p.version, 1);
    }

    #[test]
    fn at_most_10_aliases() {
        let mut p = aria();
        for i in 0..9 {
            p.add_alias(Alias::parse(&format!("a{i}")).unwrap(), now())
                .unwrap();
        }
        let err = p
            .add_alias(Alias::parse("one-too-many").unwrap(), now())
            .unwrap_err();
        assert_eq!(err, DomainError::TooManyAliases(10));
    }

    #[test]
    fn an_update_lists_only_the_fields_that_changed() {
        let mut p = aria();
        p.take_uncommitted_events();
        let changes = ProfileChanges {
            display_name: Some(DisplayName::parse("Aria the Bard").unwrap()),
            model: Some(Some(ModelName::parse("gpt-4o").unwrap())),
            ..Default::default()
        };
        p.update_profile(changes, now()).unwrap();
        let events = p.take_uncommitted_events();
        let [DomainEvent::PersonalityProfileUpdated { changed, profile }] = events.as_slice()
        else {
            panic!("expected one update, got {events:?}");
        };
        assert_eq!(changed, &[ProfileField::Model]);
        assert_eq!(
            profile.model.as_ref().map(ModelName::as_str),
            Some("gpt-4o")
        );
    }

    #[test]
    fn an_update_that_changes_nothing_is_refused() {
        let mut p = aria();
        let same = ProfileChanges {
            prompt: Some(Prompt::parse("You sing.").unwrap()),
            ..Default::default()
        };
        assert_eq!(
            p.update_profile(same, now()),
            Err(DomainError::NothingToUpdate)
        );
    }

    #[test]
    fn the_fold_of_the_events_equals_the_state() {
        let mut p = aria();
        let at = now();
        p.add_alias(Alias::parse("singer").unwrap(), at).unwrap();
        p.remove_alias(Alias::parse("bard").unwrap(), at).unwrap();
        let changes = ProfileChanges {
            avatar_url: Some(Some(AvatarUrl::parse("https://x.example/a.png").unwrap())),
            ..Default::default()
        };
        p.update_profile(changes, at).unwrap();
        let events = p.take_uncommitted_events();
        let folded = Personality::from_history(p.id, events.iter().map(|e| (e, at))).unwrap();
        assert_eq!(folded.version, p.version);
        assert_eq!(folded.aliases, p.aliases);
        assert_eq!(folded.profile, p.profile);
    }

    #[test]
    fn a_removed_personality_folds_to_nothing() {
        let mut p = aria();
        p.remove(now());
        let events = p.take_uncommitted_events();
        assert!(p.is_removed());
        let [_, DomainEvent::PersonalityRemoved { name, aliases, .. }] = events.as_slice() else {
            panic!("{events:?}");
        };
        assert_eq!(name.as_str(), "Aria");
        assert_eq!(aliases.len(), 1);
        assert!(Personality::from_history(p.id, events.iter().map(|e| (e, now()))).is_none());
    }

    /// Aria (aliases bard, muse) removed at `removed_at`, as `replay` rebuilds her.
    fn removed_at(removed_at: DateTime<Utc>) -> (Personality, Vec<DomainEvent>) {
        let mut p = aria();
        p.add_alias(Alias::parse("muse").unwrap(), removed_at)
            .unwrap();
        p.remove(removed_at);
        let events = p.take_uncommitted_events();
        let replayed = Personality::replay(p.id, events.iter().map(|e| (e, removed_at))).unwrap();
        (replayed, events)
    }

    #[test]
    fn a_removed_personality_comes_back_without_the_taken_aliases_and_the_fold_agrees() {
        let removed = now() - Duration::days(29);
        let (mut p, mut history) = removed_at(removed);
        assert!(p.is_removed());
        let at = now();
        p.restore(&[Alias::parse("bard").unwrap()], at).unwrap();
        assert!(!p.is_removed());
        assert_eq!(p.aliases(), [Alias::parse("muse").unwrap()]);
        assert_eq!(p.version(), 4);
        let events = p.take_uncommitted_events();
        let [DomainEvent::PersonalityRestored {
            name,
            aliases,
            left_out,
            ..
        }] = events.as_slice()
        else {
            panic!("{events:?}");
        };
        assert_eq!(name.as_str(), "Aria");
        assert_eq!(aliases, &[Alias::parse("muse").unwrap()]);
        assert_eq!(left_out, &[Alias::parse("bard").unwrap()]);
        history.extend(events);
        let times = [removed, removed, removed, at];
        let folded = Personality::from_history(p.id, history.iter().zip(times)).unwrap();
        assert_eq!(folded, p);
    }

    #[test]
    fn a_removal_older_than_30_days_is_not_restored() {
        let (mut p, _) = removed_at(now() - Duration::days(31));
        let refused = p.restore(&[], now());
        assert_eq!(
            refused,
            Err(DomainError::RestoreExpired {
                name: "Aria".into(),
                days: 30
            })
        );
        assert_eq!(
            refused.unwrap_err().to_string(),
            "\"Aria\" was removed more than 30 days ago and can no longer be restored."
        );
        assert!(p.take_uncommitted_events().is_empty());
    }

    #[test]
    fn a_personality_that_is_not_removed_is_not_restored() {
        let mut p = aria();
        p.take_uncommitted_events();
        assert_eq!(
            p.restore(&[], now()),
            Err(DomainError::NotRemoved("Aria".into()))
        );
        assert!(p.take_uncommitted_events().is_empty());
    }

    #[test]
    fn events_round_trip_through_json() {
        let mut p = aria();
        for event in p.take_uncommitted_events() {
            let json = serde_json::to_string(&event).unwrap();
            assert!(json.contains("\"type\":\"PersonalityCreated\""));
            assert_eq!(serde_json::from_str::<DomainEvent>(&json).unwrap(), event);
        }
    }
}
