//! Copies the write-ahead log back into the database file on a thread of its own.
//!
//! A checkpoint ends with a disk flush of the database file, which takes 1–15 ms on a VPS
//! disk. SQLite's automatic checkpoint runs inside the commit that crosses its threshold and
//! makes that command wait, so it is off (`database.rs`): the database thread asks this
//! thread for checkpoints instead, and no command waits for one.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{Connection, OpenFlags};

/// Units of work the database thread runs between two requests for a checkpoint: about as
/// many write-ahead-log pages as SQLite's own threshold (1,000) with the few pages a
/// command writes.
pub(super) const JOBS_PER_CHECKPOINT: u32 = 256;

/// Starts the checkpoint thread for the database at `path`. It runs a checkpoint for each
/// request sent on the returned channel (requests made while one runs are folded into it)
/// and ends once the channel's sender is dropped.
pub(super) fn spawn(path: &Path) -> std::io::Result<mpsc::SyncSender<()>> {
    let (requests, queue) = mpsc::sync_channel::<()>(1);
    let path: PathBuf = path.to_owned();
    std::thread::Builder::new()
        .name("personae-checkpoint".into())
        .spawn(move || {
            for () in queue {
                if let Err(e) = checkpoint(&path) {
                    tracing::warn!(
                        error = %e,
                        "a background checkpoint failed; the next one, or closing the \
                         database, copies the log instead"
                    );
                }
            }
        })?;
    Ok(requests)
}

/// One passive checkpoint (it never blocks the writer) on a connection opened for it, so
/// that between checkpoints the database thread's connection is the file's only one.
fn checkpoint(path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(super::database::BUSY_TIMEOUT)?;
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}
