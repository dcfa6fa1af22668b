use thiserror::Error;

use crate::domain::ServerId;

/// A failure of the store behind the repositories, whichever database it is.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The aggregate changed since it was read: reload and try again.
    #[error("the personality was changed by someone else at the same time")]
    Conflict,
    /// A name or alias key the change adds is already held by another personality.
    #[error("\"{key}\" is already taken")]
    KeyTaken {
        /// The normalized key.
        key: String,
        /// Who holds it.
        holder: KeyHolder,
    },
    /// The server lets only its managers create personalities.
    #[error("only the server's managers may create personalities there")]
    CreationClosed,
    /// The owner has as many personalities in the home server as the server allows.
    #[error("the owner already has {0} personalities in this server")]
    OwnerLimit(usize),
    /// Another writer kept the database locked past the wait: try again shortly.
    #[error("the database is busy: {0}")]
    Busy(String),
    /// The database can't be written: the disk is full or the file is read-only.
    #[error("the database can't be written: {0}")]
    Unwritable(String),
    /// The database was written by a newer personae: upgrade personae, or restore a backup
    /// this one wrote. Nothing is changed.
    #[error("the database has schema version {found}, newer than this personae ({known}); upgrade personae")]
    NewerSchema { found: usize, known: usize },
    /// A stored row could not be read back (corruption, or a newer schema).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The work could not run: the database's thread stopped, or the work panicked.
    #[error("database task failed: {0}")]
    Task(String),
    /// The database file or its folder could not be opened.
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
    /// The database refused or failed a statement for another reason.
    #[error("database error: {0}")]
    Backend(String),
}

/// Who holds a name-or-alias key, for errors that say what the key is taken by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHolder {
    /// The holder's name, as its creator typed it.
    pub personality_name: String,
    /// True when the key is the holder's name, false when it is one of its aliases.
    pub is_name: bool,
    /// The holder's home server; `None` for a global personality.
    pub server: Option<ServerId>,
}

impl KeyHolder {
    /// "the personality "Aria"" or "an alias of "Aria"", with the server when it is
    /// another one than `here`'s.
    pub fn describe(&self, here: Option<ServerId>) -> String {
        let what = if self.is_name {
            format!("the personality \"{}\"", self.personality_name)
        } else {
            format!("an alias of \"{}\"", self.personality_name)
        };
        match self.server {
            Some(server) if Some(server) != here => format!("{what} in server {server}"),
            Some(_) => what,
            None => format!("{what} (a global personality)"),
        }
    }
}

impl StoreError {
    /// True when another writer held the database past the wait.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Busy(_))
    }

    /// True when the database can't be written: the disk is full or the file is read-only.
    pub fn is_unwritable(&self) -> bool {
        matches!(self, StoreError::Unwritable(_))
    }

    /// True when `error`, or anything it was caused by, is a database from a newer personae:
    /// the host's to fix (upgrade personae), not a fault to retry.
    pub fn is_newer_schema_in(error: &anyhow::Error) -> bool {
        error
            .chain()
            .any(|cause| matches!(cause.downcast_ref(), Some(StoreError::NewerSchema { .. })))
    }
}
