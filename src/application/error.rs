use thiserror::Error;

use super::StoreError;
use crate::domain::DomainError;

/// Everything a personality command can fail with. Every variant but `Storage` is the
/// user's to fix, and its message says how, in words fit for a Discord reply.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// No personality has that name or alias: check the spelling (`/personality list`).
    #[error("No personality is called \"{0}\".")]
    NotFound(String),
    /// Only the owner, the home server's managers or a bot admin may change a personality.
    #[error("Only the owner of \"{0}\", the managers of its server or a bot admin can change it.")]
    NotOwner(String),
    /// Only a bot admin (or the host's command line) may do this.
    #[error("Only a bot admin can {0}.")]
    AdminOnly(&'static str),
    /// Only the server's managers (Manage Server) or a bot admin may change its settings.
    #[error(
        "Only members with Manage Server in this server, or a bot admin, can change its settings."
    )]
    NotServerManager,
    /// The server lets only its managers create personalities.
    #[error("In this server only members with Manage Server can create personalities.")]
    CreationClosed,
    /// Global personalities are turned off in this server.
    #[error(
        "\"{0}\" is a global personality, and this server has turned global personalities off."
    )]
    GlobalsOff(String),
    /// Personalities don't answer in this channel (the server's channel settings).
    #[error("Personalities don't answer in this channel; this server's settings leave it out.")]
    ChannelClosed,
    /// A new personality needs a home server, or must be made global.
    #[error("server: give the server the personality belongs to (--server ID), or --global.")]
    ServerRequired,
    /// The member owns as many personalities in this server as it allows.
    #[error(
        "You already own as many personalities in this server as it allows ({0}); remove one first."
    )]
    OwnerLimit(usize),
    /// Restoring would take its owner past the server's limit, whoever restores it.
    #[error(
        "Its owner already owns as many personalities in this server as it allows ({0}); one must be removed before it can be restored."
    )]
    RestoreOverLimit(usize),
    /// The name is another personality's name or alias: pick another.
    #[error("name: \"{name}\" is already taken by {holder}.")]
    NameTaken { name: String, holder: String },
    /// The alias is another personality's name or alias: pick another.
    #[error("alias: \"{alias}\" is already taken by {holder}.")]
    AliasTaken { alias: String, holder: String },
    /// A value broke its field's rule.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// Another domain rule refused the change (duplicate alias, nothing to update, …).
    #[error("{0}")]
    Rejected(DomainError),
    /// No personality with that name was removed where the command looked (or it was
    /// restored since): check the name, and the server.
    #[error("No personality called \"{0}\" was removed here.")]
    NothingToRestore(String),
    /// Only the former owner, the home server's managers or a bot admin may restore it.
    #[error(
        "Only the former owner of \"{0}\", the managers of its server or a bot admin can restore it."
    )]
    NotFormerOwner(String),
    /// Another personality took the removed one's name (as its name or an alias) meanwhile:
    /// that one must be removed, or lose the alias, first.
    #[error("Can't restore \"{name}\": its name is now taken by {holder}.")]
    RestoreNameTaken { name: String, holder: String },
    /// The owner must be named (the command line has no user of its own).
    #[error("owner: give the Discord user id of the owner (--owner)")]
    OwnerRequired,
    /// An NSFW personality can't be activated where it may not answer.
    #[error("\"{0}\" is NSFW: it can only be activated in an age-restricted channel.")]
    NsfwOutsideAgeRestricted(String),
    /// The personality was removed while the command was on its way.
    #[error("\"{0}\" was removed a moment ago.")]
    Removed(String),
    /// Only a Discord member can do this (not the command line).
    #[error("only a Discord member can do this")]
    MemberOnly,
    /// Someone changed the personality at the same moment: try again.
    #[error("\"{0}\" was changed by someone else at the same moment; try again.")]
    Conflict(String),
    /// Storage failed: not the user's fault; logged with the correlation id.
    #[error("storage failure: {0}")]
    Storage(#[from] StoreError),
}

impl ServiceError {
    /// True when the user caused the error (and can fix it); false for failures of ours.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ServiceError::Storage(_))
    }
}

impl From<DomainError> for ServiceError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { field, reason } => ServiceError::Invalid { field, reason },
            other => ServiceError::Rejected(other),
        }
    }
}
