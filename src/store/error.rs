use thiserror::Error;

/// A failure of the SQLite store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// SQLite refused or failed the statement.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The aggregate changed since it was read: reload and try again.
    #[error("the personality was changed by someone else at the same time")]
    Conflict,
    /// A stored row could not be read back (corruption, or a newer schema).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// The blocking task running the work panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
    /// The database file or its folder could not be opened.
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
}

impl StoreError {
    /// True when SQLite reported that the database is busy or locked by another connection.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

impl StoreError {
    /// True when SQLite can't write: the disk is full or the database is read-only.
    pub fn is_unwritable(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::ReadOnly)
        )
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
