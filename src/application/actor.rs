use std::fmt;

use uuid::Uuid;

use crate::domain::{Scope, ServerId, UserId};

/// Who asks for a change, and with which rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A Discord user; `admin` when listed in BOT_ADMIN_IDS; `server_manager` when they have
    /// Manage Server in the server the request comes from.
    User {
        id: UserId,
        admin: bool,
        server_manager: bool,
    },
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

    /// True when the actor manages the server the request comes from.
    pub fn is_server_manager(&self) -> bool {
        matches!(
            self,
            Actor::User {
                server_manager: true,
                ..
            }
        )
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

/// Who acts, where and why: travels with a command into every event it causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub actor: Actor,
    /// The server the request comes from (`None`: a DM, or the command line without
    /// `--server`). Names are looked up among this server's personalities and the global
    /// ones, and new personalities belong to it.
    pub server: Option<ServerId>,
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
            server: None,
            correlation_id: Uuid::now_v7().to_string(),
            causation_id: None,
        }
    }

    /// The same request, made in `server`.
    #[must_use]
    pub fn in_server(self, server: Option<ServerId>) -> Self {
        Self { server, ..self }
    }

    /// True when the actor may manage a personality of `owner` in `scope` (change it,
    /// remove it, read its prompt): its owner, a bot admin, or a manager of its home server
    /// acting from there.
    pub fn may_manage(&self, owner: UserId, scope: Scope) -> bool {
        self.actor.is_admin()
            || self.actor.user_id() == Some(owner)
            || (self.actor.is_server_manager()
                && self.server.is_some()
                && scope == Scope::from(self.server))
    }

    /// True when the actor may change the settings of `server`: a bot admin, or a member
    /// with Manage Server acting from there.
    pub fn may_manage_server(&self, server: ServerId) -> bool {
        self.actor.is_admin() || (self.actor.is_server_manager() && self.server == Some(server))
    }

    /// A context for a Discord interaction: its id correlates everything it causes.
    pub fn interaction(actor: Actor, interaction_id: u64) -> Self {
        Self {
            actor,
            server: None,
            correlation_id: interaction_id.to_string(),
            causation_id: Some(interaction_id.to_string()),
        }
    }
}
