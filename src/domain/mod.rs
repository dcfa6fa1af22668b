//! The Personality and ServerSettings aggregates, their value objects, events and errors.
//! No I/O lives here.

mod alias;
mod avatar_url;
mod card_extensions;
mod display_name;
mod error;
mod events;
mod ids;
mod key;
mod model;
mod name;
mod personality;
mod prompt;
mod sampling;
mod scope;
mod settings;
mod text;

pub use alias::{Alias, MAX_ALIASES};
pub use avatar_url::AvatarUrl;
pub use card_extensions::CardExtensions;
pub use display_name::DisplayName;
pub use error::DomainError;
pub use events::{DomainEvent, EventType, Profile, ProfileField};
pub use ids::{AggregateId, ChannelId, PersonalityId, ServerId, UserId};
pub use key::{normalize_key as lookup_key, push_key};
pub use model::ModelName;
pub use name::PersonalityName;
pub use personality::{
    NewPersonality, Personality, ProfileChanges, StoredPersonality, RESTORE_WINDOW_DAYS,
};
pub use prompt::Prompt;
pub use sampling::{MaxTokens, Temperature};
pub use scope::Scope;
pub use settings::{
    ChannelMode, MemberLimit, ServerSettings, Setting, SettingChange, Settings,
    DEFAULT_MEMBER_LIMIT, MAX_LISTED_CHANNELS, MAX_MEMBER_LIMIT,
};
