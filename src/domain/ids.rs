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

/// A Discord user id (a snowflake). Serialized as a string, as Discord does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(u64);

impl UserId {
    /// Wraps a snowflake; zero is not a valid Discord id.
    pub fn new(id: u64) -> Result<Self, DomainError> {
        if id == 0 {
            return Err(DomainError::invalid(
                "owner",
                "a Discord user id is a positive number",
            ));
        }
        Ok(Self(id))
    }

    /// The snowflake as a number.
    pub fn get(&self) -> u64 {
        self.0
    }
}

impl FromStr for UserId {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = s.trim().parse::<u64>().map_err(|_| {
            DomainError::invalid(
                "owner",
                format!("\"{s}\" is not a Discord user id (digits only)"),
            )
        })?;
        Self::new(id)
    }
}

impl TryFrom<String> for UserId {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<UserId> for String {
    fn from(value: UserId) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
