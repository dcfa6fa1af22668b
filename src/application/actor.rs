use std::fmt;

use uuid::Uuid;

use crate::domain::UserId;

/// Who asks for a change, and with which rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A Discord user; `admin` when listed in BOT_ADMIN_IDS.
    User { id: UserId, admin: bool },
    /// The host's command line, on the same machine as the database: a bot admin.
    CommandLine,
}

impl Actor {
    /// True when the actor may change any personality.
    pub fn is_admin(&self) -> bool {
        match self {
            Actor::User { admin, .. } => *admin,
            Actor::CommandLine => true,
        }
    }

    /// The Discord user behind the actor, if any.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Actor::User { id, .. } => Some(*id),
            Actor::CommandLine => None,
        }
    }

    /// True when the actor may change a personality owned by `owner`.
    pub fn may_change(&self, owner: UserId) -> bool {
        self.is_admin() || self.user_id() == Some(owner)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User { id, .. } => write!(f, "user:{id}"),
            Actor::CommandLine => f.write_str("admin:cli"),
        }
    }
}

/// Who acts and why: travels with a command into every event it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub actor: Actor,
    /// Ties everything one request caused together (a Discord interaction id, or fresh).
    pub correlation_id: String,
    /// The id of what directly caused the command (the interaction), if any.
    pub causation_id: Option<String>,
}

impl RequestContext {
    /// A context with a fresh correlation id (the command line, tests).
    pub fn new(actor: Actor) -> Self {
        Self {
            actor,
            correlation_id: Uuid::now_v7().to_string(),
            causation_id: None,
        }
    }

    /// A context for a Discord interaction: its id correlates everything it causes.
    pub fn interaction(actor: Actor, interaction_id: u64) -> Self {
        Self {
            actor,
            correlation_id: interaction_id.to_string(),
            causation_id: Some(interaction_id.to_string()),
        }
    }
}
