use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::DomainError;

/// Identity of a personality: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonalityId(Uuid);

impl PersonalityId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an id read from storage.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for PersonalityId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PersonalityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A Discord id (a snowflake) with its own type: serialized as a string, as Discord does;
/// zero is not a valid id. `$field` names the field in error messages, `$what` the thing.
macro_rules! snowflake {
    ($(#[$doc:meta])* $name:ident, $field:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(u64);

        impl $name {
            /// Wraps a snowflake; zero is not a valid Discord id.
            pub fn new(id: u64) -> Result<Self, DomainError> {
                if id == 0 {
                    return Err(DomainError::invalid(
                        $field,
                        concat!("a Discord ", $what, " id is a positive number"),
                    ));
                }
                Ok(Self(id))
            }

            /// The snowflake as a number.
            pub fn get(&self) -> u64 {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = DomainError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let id = s.trim().parse::<u64>().map_err(|_| {
                    DomainError::invalid(
                        $field,
                        format!(concat!("\"{}\" is not a Discord ", $what, " id (digits only)"), s),
                    )
                })?;
                Self::new(id)
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

snowflake!(
    /// A Discord user id.
    UserId,
    "owner",
    "user"
);

snowflake!(
    /// A Discord server (guild) id.
    ServerId,
    "server",
    "server"
);

snowflake!(
    /// A Discord channel id.
    ChannelId,
    "channel",
    "channel"
);

/// What a stored event is about: a personality, or a server's settings. Stored as the
/// personality's UUID, or as `server:<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AggregateId {
    Personality(PersonalityId),
    ServerSettings(ServerId),
}

impl AggregateId {
    /// The personality, when the events are a personality's.
    pub fn personality(self) -> Option<PersonalityId> {
        match self {
            Self::Personality(id) => Some(id),
            Self::ServerSettings(_) => None,
        }
    }
}

impl From<PersonalityId> for AggregateId {
    fn from(id: PersonalityId) -> Self {
        Self::Personality(id)
    }
}

const SERVER_SETTINGS_PREFIX: &str = "server:";

impl fmt::Display for AggregateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Personality(id) => id.fmt(f),
            Self::ServerSettings(server) => write!(f, "{SERVER_SETTINGS_PREFIX}{server}"),
        }
    }
}

impl FromStr for AggregateId {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(server) = s.strip_prefix(SERVER_SETTINGS_PREFIX) {
            return Ok(Self::ServerSettings(server.parse()?));
        }
        Uuid::parse_str(s)
            .map(|id| Self::Personality(PersonalityId::from_uuid(id)))
            .map_err(|_| {
                DomainError::invalid(
                    "aggregate",
                    format!("\"{s}\" is neither a personality id nor server:<id>"),
                )
            })
    }
}

impl TryFrom<String> for AggregateId {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<AggregateId> for String {
    fn from(value: AggregateId) -> Self {
        value.to_string()
    }
}
