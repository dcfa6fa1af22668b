use thiserror::Error;

/// A rule of the domain was broken. The message is meant for the Discord user who broke it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A value did not satisfy its field's rule: fix the value and try again.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The personality already has this alias: nothing to do.
    #[error("alias: \"{0}\" is already an alias of this personality")]
    AliasAlreadyPresent(String),
    /// The alias is not one of this personality's: check the spelling.
    #[error("alias: \"{0}\" is not an alias of this personality")]
    AliasNotPresent(String),
    /// The personality reached the alias limit: remove one first.
    #[error("alias: a personality can have at most {0} aliases")]
    TooManyAliases(usize),
    /// The personality is global already.
    #[error("\"{0}\" is already global")]
    AlreadyGlobal(String),
    /// Only a removed personality can be restored: this one exists.
    #[error("\"{0}\" is not removed: there is nothing to restore.")]
    NotRemoved(String),
    /// The removal is older than the restore window: the personality is gone for good.
    #[error("\"{name}\" was removed more than {days} days ago and can no longer be restored.")]
    RestoreExpired { name: String, days: i64 },
    /// An update that changes nothing.
    #[error("Nothing to update: it already has every value given")]
    NothingToUpdate,
}

impl DomainError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
