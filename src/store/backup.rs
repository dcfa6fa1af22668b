//! `personae backup`: a consistent copy of the live database, taken with SQLite's online
//! backup API while the bot may be writing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// What a finished copy holds, read from the copy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupContents {
    /// Size of the copy in bytes.
    pub bytes: u64,
    /// `PRAGMA user_version`: the schema version.
    pub schema_version: i64,
    /// Personalities stored now.
    pub personalities: i64,
    /// Names and aliases.
    pub keys: i64,
    /// Events stored.
    pub events: i64,
    /// The last event's sequence number (0 when there is none).
    pub last_sequence: i64,
    /// Durable subscribers' checkpoints.
    pub checkpoints: i64,
    /// Dead letters.
    pub dead_letters: i64,
    /// Sent-message mappings, active conversations and channel activations.
    pub conversation_rows: i64,
}

/// Why a backup could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// There is nothing to back up at that path.
    #[error("there is no database at {0} (check DATABASE_PATH)")]
    NoDatabase(String),
    /// The target exists: a backup never overwrites.
    #[error("{0} already exists; choose a new file name (a backup never overwrites one)")]
    TargetExists(String),
    /// The copy failed its integrity check; it was deleted.
    #[error("the copy failed SQLite's integrity check and was deleted: {0}")]
    Integrity(String),
    /// Reading, copying or writing failed.
    #[error("{context}: {source}")]
    Store {
        context: String,
        #[source]
        source: StoreError,
    },
}

/// How long the copy waits for a writer holding a lock it needs.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Copies the database at `source` to `target` in one read transaction, so the copy is the
/// database as it was at one instant: every commit before the copy started is in it, none
/// after. In WAL mode the bot's writes go on meanwhile. The copy is written beside `target`
/// under a temporary name, checked with `PRAGMA integrity_check`, then renamed into place,
/// so `target` is either a sound copy or absent.
pub fn backup(source: &Path, target: &Path) -> Result<BackupContents, BackupError> {
    if !source.is_file() {
        return Err(BackupError::NoDatabase(source.display().to_string()));
    }
    if target.exists() {
        return Err(BackupError::TargetExists(target.display().to_string()));
    }
    let partial = partial_path(target);
    let result = copy_and_check(source, &partial).and_then(|contents| {
        std::fs::rename(&partial, target)
            .map_err(|e| store_error("moving the copy into place", e))?;
        Ok(contents)
    });
    if result.is_err() {
        // Whatever is left of a failed copy is of no use and must not pass for a backup.
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn copy_and_check(source: &Path, partial: &Path) -> Result<BackupContents, BackupError> {
    let _ = std::fs::remove_file(partial);
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| store_error(&format!("opening {}", source.display()), e))?;
    from.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| store_error("setting the busy time-out", e))?;
    let mut to = Connection::open(partial)
        .map_err(|e| store_error(&format!("creating {}", partial.display()), e))?;
    {
        let backup =
            Backup::new(&from, &mut to).map_err(|e| store_error("starting the copy", e))?;
        copy_in_one_step(&backup)?;
    }
    drop(from);
    let integrity = integrity_check(&to).map_err(|e| store_error("checking the copy", e))?;
    if integrity != "ok" {
        return Err(BackupError::Integrity(integrity));
    }
    let contents = contents(&to).map_err(|e| store_error("reading the copy", e))?;
    to.close()
        .map_err(|(_, e)| store_error("closing the copy", e))?;
    let bytes = std::fs::metadata(partial)
        .map_err(|e| store_error("reading the copy's size", e))?
        .len();
    Ok(BackupContents { bytes, ..contents })
}

/// Copies every page in one step (-1), so in one read transaction: a consistent snapshot.
/// Copying in several steps would start over whenever the bot commits in between. A step
/// refused for a lock is tried again until [`BUSY_TIMEOUT`].
fn copy_in_one_step(backup: &Backup<'_, '_>) -> Result<(), BackupError> {
    let started = std::time::Instant::now();
    loop {
        let step = backup
            .step(-1)
            .map_err(|e| store_error("copying the database", e))?;
        match step {
            StepResult::Done => return Ok(()),
            // Not expected with -1, but harmless: the next step goes on.
            StepResult::More => {}
            _ if started.elapsed() > BUSY_TIMEOUT => {
                return Err(store_error(
                    "copying the database",
                    StoreError::Busy(format!(
                        "the database stayed locked for {} s",
                        BUSY_TIMEOUT.as_secs()
                    )),
                ))
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// `PRAGMA integrity_check`, its lines joined: "ok" when the file is sound.
pub fn integrity_check(conn: &Connection) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows.join("\n"))
}

fn contents(conn: &Connection) -> rusqlite::Result<BackupContents> {
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    Ok(BackupContents {
        bytes: 0,
        schema_version: count("PRAGMA user_version")?,
        personalities: count("SELECT COUNT(*) FROM personalities")?,
        keys: count("SELECT COUNT(*) FROM personality_keys")?,
        events: count("SELECT COUNT(*) FROM events")?,
        last_sequence: count("SELECT COALESCE(MAX(sequence), 0) FROM events")?,
        checkpoints: count("SELECT COUNT(*) FROM subscriber_checkpoints")?,
        dead_letters: count("SELECT COUNT(*) FROM dead_letters")?,
        conversation_rows: count(
            "SELECT (SELECT COUNT(*) FROM conversation_messages)
                  + (SELECT COUNT(*) FROM active_conversations)
                  + (SELECT COUNT(*) FROM channel_activations)",
        )?,
    })
}

/// `backup.db` → `backup.db.partial`, in the same folder so the rename is atomic.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn store_error(context: &str, e: impl Into<StoreErrorSource>) -> BackupError {
    BackupError::Store {
        context: context.to_owned(),
        source: e.into().0,
    }
}

/// Lets [`store_error`] take SQLite's and the file system's errors alike.
struct StoreErrorSource(StoreError);

impl From<rusqlite::Error> for StoreErrorSource {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.into())
    }
}

impl From<StoreError> for StoreErrorSource {
    fn from(e: StoreError) -> Self {
        Self(e)
    }
}

impl From<std::io::Error> for StoreErrorSource {
    fn from(e: std::io::Error) -> Self {
        Self(StoreError::Backend(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_never_overwrites_and_needs_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let missing = backup(&dir.path().join("none.db"), &dir.path().join("b.db")).unwrap_err();
        assert!(matches!(missing, BackupError::NoDatabase(_)), "{missing}");
        let source = dir.path().join("live.db");
        drop(super::super::Database::open(&source, super::super::Synchronous::Normal).unwrap());
        let target = dir.path().join("copy.db");
        std::fs::write(&target, b"keep me").unwrap();
        let exists = backup(&source, &target).unwrap_err();
        assert!(matches!(exists, BackupError::TargetExists(_)), "{exists}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
    }
}
