use std::fmt;

use serde::{Deserialize, Serialize};

use super::ServerId;

/// Where a personality lives: the server it was created in, or every server (global).
/// Stored as the home server's id, absent for a global personality: personalities made
/// before servers were the unit of trust had none, and were usable everywhere.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(from = "Option<ServerId>", into = "Option<ServerId>")]
pub enum Scope {
    /// Usable in every server that allows global personalities, and in DMs.
    #[default]
    Global,
    /// Belongs to this server: usable there only, managed by its admins.
    Server(ServerId),
}

impl Scope {
    /// The home server, `None` for a global personality.
    pub fn server(self) -> Option<ServerId> {
        match self {
            Scope::Global => None,
            Scope::Server(id) => Some(id),
        }
    }

    /// True for a global personality.
    pub fn is_global(self) -> bool {
        self == Scope::Global
    }
}

impl From<Option<ServerId>> for Scope {
    fn from(server: Option<ServerId>) -> Self {
        server.map_or(Scope::Global, Scope::Server)
    }
}

impl From<Scope> for Option<ServerId> {
    fn from(scope: Scope) -> Self {
        scope.server()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Server(id) => write!(f, "server {id}"),
        }
    }
}
