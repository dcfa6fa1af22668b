//! SQLite storage: state and events in one transaction, checkpoints, dead letters and
//! conversation tracking. rusqlite is blocking, so every unit of work runs on the
//! database's own thread ([`Database::call`], [`Database::write`]).

mod answer_rows;
mod backup;
mod checkpointer;
mod checks;
mod conversation_rows;
mod database;
mod error;
mod event_log;
pub(crate) mod event_rows;
mod files;
mod migrations;
mod personality_repository;
pub(crate) mod personality_rows;
mod run_lock;
mod settings_rows;

pub use backup::{backup, BackupContents, BackupError};
pub use checks::storage_problems;
pub use database::{Database, Synchronous};
pub use error::StoreError;
pub use migrations::latest_version as latest_schema_version;
pub use run_lock::{RunLock, RunLockError};
