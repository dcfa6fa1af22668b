use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{
    Alias, AvatarUrl, CardExtensions, DisplayName, MaxTokens, ModelName, PersonalityName, Prompt,
    Scope, ServerId, Setting, Settings, Temperature, UserId,
};

/// What a personality looks and sounds like: everything `update` may change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub display_name: DisplayName,
    pub avatar_url: Option<AvatarUrl>,
    pub prompt: Prompt,
    /// `None` means the configured default model.
    pub model: Option<ModelName>,
    /// Answers only in age-restricted channels, never in DMs. Absent in events recorded
    /// before the flag existed: those personalities weren't NSFW.
    #[serde(default)]
    pub nsfw: bool,
    /// The sampling temperature; `None` leaves it to the endpoint. Absent in events
    /// recorded before personalities had their own sampling.
    #[serde(default)]
    pub temperature: Option<Temperature>,
    /// The longest answer in tokens; `None` is the host's cap (LLM_MAX_TOKENS).
    #[serde(default)]
    pub max_tokens: Option<MaxTokens>,
}

/// One field of a [`Profile`], as listed in `PersonalityProfileUpdated::changed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileField {
    DisplayName,
    AvatarUrl,
    Prompt,
    Model,
    Nsfw,
    Temperature,
    MaxTokens,
}

impl ProfileField {
    /// Every field, in declaration order.
    pub const ALL: [ProfileField; 7] = [
        Self::DisplayName,
        Self::AvatarUrl,
        Self::Prompt,
        Self::Model,
        Self::Nsfw,
        Self::Temperature,
        Self::MaxTokens,
    ];

    /// The field's name as commands show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DisplayName => "display name",
            Self::AvatarUrl => "avatar",
            Self::Prompt => "prompt",
            Self::Model => "model",
            Self::Nsfw => "nsfw",
            Self::Temperature => "temperature",
            Self::MaxTokens => "max tokens",
        }
    }
}

/// Something that happened to a personality or to a server's settings. Named in the past
/// tense; stored forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum DomainEvent {
    /// A personality was registered.
    PersonalityCreated {
        name: PersonalityName,
        owner_id: UserId,
        /// Its home server, or global. Absent in events recorded before personalities had
        /// a home server: those were usable everywhere, so they read as global.
        #[serde(default)]
        scope: Scope,
        profile: Profile,
        aliases: Vec<Alias>,
        /// The `extensions` of the character card it was imported from, kept for the
        /// card it is exported as. Absent for personalities not made from a card.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        card_extensions: Option<CardExtensions>,
    },
    /// Some profile fields changed; `profile` is the whole new profile.
    PersonalityProfileUpdated {
        changed: Vec<ProfileField>,
        profile: Profile,
    },
    /// A personality was removed. Carries what handlers need to forget it without a lookup.
    PersonalityRemoved {
        name: PersonalityName,
        display_name: DisplayName,
        aliases: Vec<Alias>,
    },
    /// A removed personality came back as it was removed. Carries its whole state, so
    /// handlers know it again without a lookup; `aliases` are those restored, `left_out`
    /// those another personality had taken meanwhile.
    PersonalityRestored {
        name: PersonalityName,
        owner_id: UserId,
        scope: Scope,
        profile: Profile,
        aliases: Vec<Alias>,
        left_out: Vec<Alias>,
    },
    /// The personality now also answers to `alias`.
    PersonalityAliasAdded { alias: Alias },
    /// The personality no longer answers to `alias`.
    PersonalityAliasRemoved { alias: Alias },
    /// The personality of `server` became global: usable in every server.
    PersonalityMadeGlobal { server: ServerId },
    /// A server's settings changed; `settings` are the whole new settings.
    ServerSettingsChanged {
        server: ServerId,
        changed: Vec<Setting>,
        settings: Settings,
    },
}

impl DomainEvent {
    /// The event's type, for subscriptions and filters.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::PersonalityCreated { .. } => EventType::PersonalityCreated,
            Self::PersonalityProfileUpdated { .. } => EventType::PersonalityProfileUpdated,
            Self::PersonalityRemoved { .. } => EventType::PersonalityRemoved,
            Self::PersonalityRestored { .. } => EventType::PersonalityRestored,
            Self::PersonalityAliasAdded { .. } => EventType::PersonalityAliasAdded,
            Self::PersonalityAliasRemoved { .. } => EventType::PersonalityAliasRemoved,
            Self::PersonalityMadeGlobal { .. } => EventType::PersonalityMadeGlobal,
            Self::ServerSettingsChanged { .. } => EventType::ServerSettingsChanged,
        }
    }
}

/// The kinds of [`DomainEvent`], by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    PersonalityCreated,
    PersonalityProfileUpdated,
    PersonalityRemoved,
    PersonalityRestored,
    PersonalityAliasAdded,
    PersonalityAliasRemoved,
    PersonalityMadeGlobal,
    ServerSettingsChanged,
}

impl EventType {
    /// Every event type, in declaration order.
    pub const ALL: [EventType; 8] = [
        Self::PersonalityCreated,
        Self::PersonalityProfileUpdated,
        Self::PersonalityRemoved,
        Self::PersonalityRestored,
        Self::PersonalityAliasAdded,
        Self::PersonalityAliasRemoved,
        Self::PersonalityMadeGlobal,
        Self::ServerSettingsChanged,
    ];

    /// The name stored in the events table and shown by the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PersonalityCreated => "PersonalityCreated",
            Self::PersonalityProfileUpdated => "PersonalityProfileUpdated",
            Self::PersonalityRemoved => "PersonalityRemoved",
            Self::PersonalityRestored => "PersonalityRestored",
            Self::PersonalityAliasAdded => "PersonalityAliasAdded",
            Self::PersonalityAliasRemoved => "PersonalityAliasRemoved",
            Self::PersonalityMadeGlobal => "PersonalityMadeGlobal",
            Self::ServerSettingsChanged => "ServerSettingsChanged",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(EventType::as_str).collect();
                format!("unknown event type \"{s}\" (one of: {})", names.join(", "))
            })
    }
}
