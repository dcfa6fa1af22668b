//! SQLite storage: state and events in one transaction, checkpoints, dead letters and
//! conversation tracking. rusqlite is blocking, so every unit of work runs on the
//! database's own thread: reads and single statements through [`Database::call`], write
//! transactions through [`Database::write`], which commits the writes that queue up
//! together (group commit).

mod checkpointer;
pub(crate) mod conversation_rows;
mod database;
mod error;
mod event_log;
pub(crate) mod event_rows;
mod group_commit;
mod migrations;
pub(crate) mod personality_rows;

pub use conversation_rows::{ConversationRows, Forgotten};
pub use database::{Database, Synchronous};
pub use error::StoreError;
pub use event_rows::{EventFilter, NewEvent};
pub use personality_rows::KeyOwner;
