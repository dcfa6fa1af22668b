use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::{migrations, StoreError};

/// How hard SQLite works to make a commit survive a power cut (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// WAL + NORMAL: a commit survives a crash of personae; a power cut may lose the last
    /// few commits (never corrupts).
    #[default]
    Normal,
    /// WAL + FULL: every commit is on disk before it is acknowledged.
    Full,
}

impl FromStr for Synchronous {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            other => Err(format!("\"{other}\" is not one of: normal, full")),
        }
    }
}

/// How often the background checkpointer copies committed pages from the WAL into the
/// database file.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(200);

/// The SQLite database. One connection, used from tokio's blocking pool one unit of work
/// at a time: SQLite allows one writer anyway, and this keeps every command's reads and
/// writes in one transaction.
///
/// WAL checkpoints run on a second connection in a thread of their own: a checkpoint
/// syncs the WAL and the database file (milliseconds on many disks), and left to SQLite's
/// automatic checkpoints that wait would fall on whichever command crossed the threshold.
#[derive(Clone)]
pub struct Database {
    /// Declared before `conn`: the last clone stops the checkpointer first, so that the
    /// command connection closes last and, as the last connection, checkpoints and
    /// removes the WAL as SQLite does on close.
    _checkpointer: Arc<Checkpointer>,
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish()
    }
}

impl Database {
    /// Opens (creating the file and its folder if needed) and migrates the database.
    pub fn open(path: &Path, synchronous: Synchronous) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(e.to_string()))?;
        }
        let mut conn = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        configure(&conn, synchronous).map_err(|e| open_error(e.to_string()))?;
        migrations::run(&mut conn)?;
        let checkpointer = Checkpointer::start(path, synchronous);
        if checkpointer.thread.is_some() {
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(|e| open_error(e.to_string()))?;
        }
        Ok(Self {
            _checkpointer: Arc::new(checkpointer),
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path.to_owned()),
        })
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one unit of database work on the blocking pool, so the async runtime never
    /// waits on disk. The closure gets the connection to itself for its whole duration.
    pub async fn call<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A poisoned lock means a previous closure panicked mid-work; SQLite rolled its
            // transaction back when the `Transaction` was dropped, so the connection is sound.
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Runs work synchronously on the calling thread: for start-up, tools and benchmarks,
    /// never from async code on the runtime.
    pub fn call_blocking<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError>,
    {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut guard)
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        self.call(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let rows: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(rows.join("\n"))
        })
        .await
    }
}

fn configure(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    set_synchronous(conn, synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn set_synchronous(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    let sync = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)
}

/// The thread that checkpoints the WAL; stopped (and joined) when dropped.
struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing `path` on a connection of its own. If that fails the database
    /// still works, with SQLite's automatic checkpoints on the command connection.
    fn start(path: &Path, synchronous: Synchronous) -> Self {
        let none = Self {
            stop: None,
            thread: None,
        };
        // The checkpoint's syncs follow the setting of the connection that runs it.
        let conn = match Connection::open(path)
            .and_then(|conn| set_synchronous(&conn, synchronous).map(|()| conn))
        {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "no background WAL checkpoints; commands will run them");
                return none;
            }
        };
        let (stop, stopped) = mpsc::channel();
        match std::thread::Builder::new()
            .name("personae-checkpoint".into())
            .spawn(move || checkpoint_until_stopped(&conn, &stopped))
        {
            Ok(thread) => Self {
                stop: Some(stop),
                thread: Some(thread),
            },
            Err(error) => {
                tracing::warn!(%error, "no background WAL checkpoints; commands will run them");
                none
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // A panic in the thread already went to stderr; nothing more to do with it.
            let _ = thread.join();
        }
    }
}

/// Checkpoints every `CHECKPOINT_INTERVAL` until the sender is dropped. PASSIVE never
/// waits for the command connection: it copies what it can and leaves the rest for the
/// next round.
fn checkpoint_until_stopped(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    let mut failing = false;
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_INTERVAL) {
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            Ok(()) => failing = false,
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "WAL checkpoint failed; trying again");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn committed_pages_reach_the_database_file_without_a_command_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.db");
        let db = Database::open(&path, Synchronous::Normal).unwrap();
        let automatic: i64 = db
            .call(|c| Ok(c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(automatic, 0, "commands never checkpoint");
        let before = std::fs::metadata(&path).unwrap().len();
        db.call(|c| {
            c.execute_batch("CREATE TABLE blobs (b BLOB)")?;
            c.execute("INSERT INTO blobs VALUES (zeroblob(200000))", [])?;
            Ok(())
        })
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::metadata(&path).unwrap().len() < before + 200_000 {
            assert!(Instant::now() < deadline, "no checkpoint within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn the_last_clone_stops_the_checkpointer_and_sqlite_removes_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("close.db");
        let db = Database::open(&path, Synchronous::Normal).unwrap();
        let clone = db.clone();
        db.call(|c| Ok(c.execute_batch("CREATE TABLE t (x)")?))
            .await
            .unwrap();
        drop(db);
        drop(clone);
        assert!(!dir.path().join("close.db-wal").exists());
    }
}
