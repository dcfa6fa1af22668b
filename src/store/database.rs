use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::checkpointer::{self, JOBS_PER_CHECKPOINT};
use super::{migrations, StoreError};
use crate::events::panic_message;

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

/// The WAL file is cut back to this size when SQLite checkpoints it.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The SQLite database: one connection, used by a thread of its own for one unit of work at
/// a time. SQLite allows one writer anyway; this keeps every command's reads and writes in
/// one transaction, and the async runtime never waits on disk.
#[derive(Clone)]
pub struct Database {
    /// Where `call` sends its work; the database thread ends when the last clone is gone.
    jobs: mpsc::Sender<Job>,
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
}

/// One unit of work for the database thread.
type Job = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens (creating the file and its folder if needed) and migrates the database.
    pub fn open(path: &Path, synchronous: Synchronous) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        super::files::create_parent(path).map_err(|e| open_error(e.to_string()))?;
        // Created here rather than by SQLite, so that it (and the WAL and SHM files SQLite
        // gives the same permissions) is private from the start.
        super::files::open_private_file(path).map_err(|e| open_error(e.to_string()))?;
        let mut conn = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        configure(&conn, synchronous).map_err(|e| open_error(e.to_string()))?;
        migrations::run(&mut conn)?;
        let checkpoints = checkpointer::spawn(path)
            .map_err(|e| open_error(format!("cannot start the checkpoint thread: {e}")))?;
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("personae-db".into())
            .spawn(move || run_jobs(&queue, &checkpoints))
            .map_err(|e| open_error(format!("cannot start the database thread: {e}")))?;
        Ok(Self {
            jobs,
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path.to_owned()),
        })
    }

    /// Where the database file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one unit of database work on the database thread, so the async runtime never
    /// waits on disk. The closure gets the connection to itself for its whole duration.
    pub async fn call<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = {
                // A poisoned lock means a closure panicked mid-work; SQLite rolled its
                // transaction back when the `Transaction` was dropped, so the connection is
                // sound.
                let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
                catch_unwind(AssertUnwindSafe(|| work(&mut guard)))
            };
            // Released before answering: once the caller has its answer, only its own
            // clones keep the connection open.
            drop(conn);
            let outcome = outcome.unwrap_or_else(|panic| {
                Err(StoreError::Task(format!(
                    "database work panicked: {}",
                    panic_message(panic.as_ref())
                )))
            });
            // The caller may have stopped waiting; the work is done either way.
            let _ = reply.send(outcome);
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Task("the database thread has stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Task("the database thread dropped the work".into()))?
    }

    /// Runs `work` in a write transaction (IMMEDIATE: it sees what it writes over, even with
    /// another process on the file) and commits; then runs `after_commit` with what `work`
    /// returned, still on the database thread, before the next unit of work. An error from
    /// `work` rolls everything back and skips `after_commit`.
    pub async fn write<W, A, R, T, E>(&self, work: W, after_commit: A) -> Result<T, E>
    where
        W: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        A: FnOnce(R) -> T + Send + 'static,
        R: Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcome = match work(&tx) {
                Ok(done) => done,
                Err(e) => return Ok(Err(e)),
            };
            tx.commit()?;
            Ok(Ok(after_commit(outcome)))
        })
        .await?
    }

    /// Runs work synchronously on the calling thread: for start-up, tools and benchmarks,
    /// never from async code on the runtime.
    pub fn call_blocking<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError>,
    {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
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

/// How long the database thread looks for its next unit of work before it sleeps. On a
/// virtual machine, waking a sleeping thread costs tens of microseconds; a command's next
/// call usually comes sooner than this, and the command path stays within its floor of 3×
/// bare SQL only with it (BENCHMARKS.md §3).
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(100);

/// The database thread: runs each unit of work in turn until every sender is gone, and
/// asks the checkpoint thread for a checkpoint every `JOBS_PER_CHECKPOINT` of them. With
/// more than one core it looks for the next one a little while before it sleeps.
fn run_jobs(queue: &mpsc::Receiver<Job>, checkpoints: &mpsc::SyncSender<()>) {
    let spin = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    let mut since_checkpoint = 0;
    loop {
        let job = match queue.try_recv() {
            Ok(job) => job,
            Err(mpsc::TryRecvError::Disconnected) => return,
            Err(mpsc::TryRecvError::Empty) => match spin.then(|| spin_for_job(queue)).flatten() {
                Some(job) => job,
                None => match queue.recv() {
                    Ok(job) => job,
                    Err(mpsc::RecvError) => return,
                },
            },
        };
        job();
        since_checkpoint += 1;
        if since_checkpoint == JOBS_PER_CHECKPOINT {
            since_checkpoint = 0;
            // Full: a checkpoint is running or asked for, and it copies these pages too.
            let _ = checkpoints.try_send(());
        }
    }
}

/// Looks for the next unit of work until `SPIN_BEFORE_SLEEP` passes, yielding the core
/// between looks to whatever else wants it (such as the thread about to send the job).
fn spin_for_job(queue: &mpsc::Receiver<Job>) -> Option<Job> {
    let started = std::time::Instant::now();
    while started.elapsed() < SPIN_BEFORE_SLEEP {
        match queue.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::TryRecvError::Empty) => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Disconnected) => return None,
        }
    }
    None
}

/// How long SQLite waits for another connection's lock before it reports "busy".
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Switches the file to WAL. Switching needs the file to itself and SQLite reports "busy"
/// at once, without waiting, when another process opens the same new file at that moment;
/// so this waits here, as long as the busy timeout.
fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn configure(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    set_wal(conn)?;
    let sync = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    // The checkpoint thread copies the log back (`checkpointer.rs`), not the commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_checkpoint_thread_copies_the_log_back_and_commits_never_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.db");
        let db = Database::open(&path, Synchronous::Normal).unwrap();
        db.call(|c| Ok(c.execute_batch("CREATE TABLE t (x BLOB)")?))
            .await
            .unwrap();
        let file_len = || std::fs::metadata(&path).unwrap().len();
        let insert = || {
            db.write(
                |tx| Ok::<_, StoreError>(tx.execute("INSERT INTO t VALUES (zeroblob(16384))", [])?),
                |_| (),
            )
        };
        let before = file_len();
        // With the CREATE, one unit of work short of a request for a checkpoint, and
        // past SQLite's own threshold of 1,000 pages in the log.
        for _ in 2..JOBS_PER_CHECKPOINT {
            insert().await.unwrap();
        }
        assert_eq!(file_len(), before, "a commit copied the log back");
        insert().await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file_len() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within 10 s of the request"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let rows: i64 = db
            .call(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(rows, i64::from(JOBS_PER_CHECKPOINT) - 1);
    }

    #[tokio::test]
    async fn a_failed_write_changes_nothing_and_a_panicking_one_leaves_the_database_usable() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("writes.db"), Synchronous::Normal).unwrap();
        db.call(|c| Ok(c.execute_batch("CREATE TABLE t (x)")?))
            .await
            .unwrap();
        let failed: Result<(), StoreError> = db
            .write(
                |tx| {
                    tx.execute("INSERT INTO t VALUES (1)", [])?;
                    Err(StoreError::Conflict)
                },
                |()| (),
            )
            .await;
        assert!(matches!(failed, Err(StoreError::Conflict)));
        let panicked: Result<(), StoreError> = db
            .write(
                |tx| {
                    tx.execute("INSERT INTO t VALUES (2)", [])?;
                    panic!("boom")
                },
                |()| (),
            )
            .await;
        assert!(matches!(panicked, Err(StoreError::Task(m)) if m.contains("boom")));
        let after = db
            .write(
                |tx| Ok::<_, StoreError>(tx.execute("INSERT INTO t VALUES (3)", [])?),
                |inserted| inserted,
            )
            .await
            .unwrap();
        assert_eq!(after, 1);
        let rows: Vec<i64> = db
            .call(|c| {
                let mut stmt = c.prepare("SELECT x FROM t")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, vec![3]);
    }

    #[tokio::test]
    async fn the_last_clone_closes_the_connection_and_sqlite_removes_the_wal() {
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
