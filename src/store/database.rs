use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rusqlite::Connection;

use super::checkpointer::{Bell, Checkpointer, WAL_SIZE_LIMIT};
use super::group_commit::{self, Member, WriteJob};
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

/// How long the database thread keeps looking for the next unit of work before it sleeps.
/// Waking a sleeping thread on another core takes tens of microseconds on virtual
/// machines, as long as the work itself; a command's next call (or the next command of a
/// burst) usually comes sooner than this.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(100);

/// The SQLite database. One connection, used by one thread of its own one unit of work at a
/// time: SQLite allows one writer anyway, this keeps every command's reads and writes in
/// one transaction, and the async runtime never waits on disk. Write work queued behind a
/// busy thread is committed together (see [`Database::write`]).
///
/// WAL checkpoints run on a second connection in a thread of their own, shortly after
/// commits (see `src/store/checkpointer.rs`).
#[derive(Clone)]
pub struct Database {
    /// Declared before `conn`: the last clone stops the checkpointer first, so that the
    /// command connection closes last and, as the last connection, checkpoints and
    /// removes the WAL as SQLite does on close.
    checkpointer: Arc<Checkpointer>,
    /// Where `call` sends its work; the database thread ends when the last clone is gone.
    jobs: Arc<mpsc::Sender<Job>>,
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
}

/// One unit of work for the database thread.
pub(super) enum Job {
    /// Work that locks the connection itself and has it to itself.
    Call(Box<dyn FnOnce() + Send>),
    /// Write work, run in the transaction of a group commit.
    Write(Box<dyn Member>),
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
        if checkpointer.is_running() {
            // The checkpointer copies the WAL, and cuts it back when the database is idle
            // rather than in a command's commit (see `src/store/checkpointer.rs`).
            conn.pragma_update(None, "wal_autocheckpoint", 0)
                .and_then(|()| conn.pragma_update(None, "journal_size_limit", -1))
                .map_err(|e| open_error(e.to_string()))?;
        }
        let conn = Arc::new(Mutex::new(conn));
        let (jobs, queue) = mpsc::channel::<Job>();
        // The thread holds the connection only while it works (see `run_jobs`).
        let weak = Arc::downgrade(&conn);
        let bell = checkpointer.bell();
        std::thread::Builder::new()
            .name("personae-db".into())
            .spawn(move || run_jobs(&queue, &weak, &bell))
            .map_err(|e| open_error(format!("cannot start the database thread: {e}")))?;
        Ok(Self {
            checkpointer: Arc::new(checkpointer),
            jobs: Arc::new(jobs),
            conn,
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
        let job: Box<dyn FnOnce() + Send> = Box::new(move || {
            let outcome = {
                // A poisoned lock means a closure panicked mid-work; SQLite rolled its
                // transaction back when the `Transaction` was dropped, so the connection is
                // sound.
                let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                catch_unwind(AssertUnwindSafe(|| work(&mut guard)))
            };
            // Released before answering: once the caller has its answer, only its own
            // clones keep the connection open.
            drop(conn);
            let outcome = outcome.unwrap_or_else(|panic| Err(group_commit::panicked(panic)));
            // The caller may have stopped waiting; the work is done either way.
            let _ = reply.send(outcome);
        });
        self.jobs
            .send(Job::Call(job))
            .map_err(|_| StoreError::Task("the database thread has stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Task("the database thread dropped the work".into()))?
    }

    /// Runs `work` in a write transaction (IMMEDIATE: it sees what it writes over, even
    /// with another process on the file), commits, then runs `after_commit` with what
    /// `work` returned, still on the database thread, before the next transaction.
    ///
    /// Write work that arrives while the thread is busy is committed together, each piece
    /// in a savepoint of its own (see `src/store/group_commit.rs`); it succeeds
    /// or fails on its own all the same. `work` may run more than once, so it must only
    /// read and write the database, and it runs inside the transaction, so it must not
    /// begin or end one. An error from `work` rolls back its changes.
    pub async fn write<W, A, R, T, E>(&self, work: W, after_commit: A) -> Result<T, E>
    where
        W: Fn(&Connection) -> Result<R, E> + Send + 'static,
        A: FnOnce(&Connection, R) -> T + Send + 'static,
        R: Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job::Write(Box::new(WriteJob::new(
                work,
                after_commit,
                reply,
            ))))
            .map_err(|_| StoreError::Task("the database thread has stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Task("the database thread dropped the work".into()))?
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
        let before = guard.total_changes();
        let result = work(&mut guard);
        let changed = guard.total_changes() != before;
        drop(guard);
        if changed {
            self.checkpointer.ring();
        }
        result
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
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Without the background checkpointer, SQLite cuts the WAL back itself, in the
    // commit that starts it over (see `WAL_SIZE_LIMIT`).
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

pub(super) fn set_synchronous(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    let sync = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)
}

/// The database thread: runs each unit of work in turn until every sender is gone. After
/// each it looks for the next a little while before sleeping (see `SPIN_BEFORE_SLEEP`),
/// unless there is only one core to share. After a unit of work that changed rows, it rings
/// the checkpointer's bell; reads (the bot's once-a-second look for the command line's
/// changes among them) leave the checkpointer asleep.
///
/// It holds the connection only while it runs write work, and answers after letting go:
/// once a caller has its answer, only the `Database` clones keep the connection open, so
/// dropping the last one closes it (and removes the WAL) at once.
fn run_jobs(queue: &mpsc::Receiver<Job>, conn: &Weak<Mutex<Connection>>, bell: &Bell) {
    let spin = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    let mut next = None;
    let mut changes = 0;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match queue.try_recv() {
                Ok(job) => job,
                Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => {
                    match spin.then(|| spin_for_job(queue)).flatten() {
                        Some(job) => job,
                        None => match queue.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                    }
                }
            },
        };
        match job {
            Job::Call(work) => work(),
            Job::Write(first) => next = commit_group(conn, first, queue),
        }
        // Rows inserted, updated or deleted on the connection so far, rolled back or not: a
        // spurious ring only costs a checkpoint with nothing to copy.
        if let Some(conn) = conn.upgrade() {
            let now = conn
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .total_changes();
            if now != changes {
                changes = now;
                bell.ring();
            }
        }
    }
}

/// Runs a group commit (see `src/store/group_commit.rs`) starting with `first`,
/// answers its members and returns the job that ended it, if any.
fn commit_group(
    conn: &Weak<Mutex<Connection>>,
    first: Box<dyn Member>,
    queue: &mpsc::Receiver<Job>,
) -> Option<Job> {
    // Every `Database` is gone: nobody is waiting for the answer.
    let conn = conn.upgrade()?;
    let finished = {
        // See `call` on poisoning.
        let guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        group_commit::run(&guard, first, queue)
    };
    drop(conn);
    for member in finished.answered {
        member.reply();
    }
    finished.next
}

/// Looks for the next job until `SPIN_BEFORE_SLEEP` passes, yielding the core between
/// looks so that whatever else wants it (such as the runtime thread about to send the next
/// job) gets it.
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
    async fn a_wal_grown_past_the_limit_is_cut_back_once_idle_not_in_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("limit.db");
        let wal = dir.path().join("limit.db-wal");
        let db = Database::open(&path, Synchronous::Normal).unwrap();
        // One transaction larger than the limit: the WAL has to grow past it.
        let blobs = (WAL_SIZE_LIMIT / 1_000_000 + 8) as usize;
        db.call(move |c| {
            let tx = c.transaction()?;
            tx.execute_batch("CREATE TABLE blobs (b BLOB)")?;
            for _ in 0..blobs {
                tx.execute("INSERT INTO blobs VALUES (zeroblob(1000000))", [])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(grown > WAL_SIZE_LIMIT, "the WAL grew to {grown} bytes");
        // Once the checkpointer has copied it all, the next commit starts the WAL over. It
        // does not cut the file back: freeing hundreds of MB would stall that command.
        let deadline = Instant::now() + Duration::from_secs(10);
        let before = db.checkpointer.runs();
        while db.checkpointer.runs() == before {
            assert!(Instant::now() < deadline, "no checkpoint after the commit");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        db.call(|c| Ok(c.execute("INSERT INTO blobs VALUES (x'00')", [])?))
            .await
            .unwrap();
        assert!(std::fs::metadata(&wal).unwrap().len() > WAL_SIZE_LIMIT);
        // With nothing committed for a while, the checkpointer cuts it back.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::fs::metadata(&wal).map_or(0, |m| m.len()) > WAL_SIZE_LIMIT {
            assert!(Instant::now() < deadline, "the WAL stayed at {grown} bytes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // And the database goes on as before.
        let rows: i64 = db
            .call(|c| Ok(c.query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(rows, blobs as i64 + 1);
    }

    #[tokio::test]
    async fn an_idle_database_runs_no_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("idle.db"), Synchronous::Normal).unwrap();
        db.call(|c| Ok(c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1)")?))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while db.checkpointer.runs() == 0 {
            assert!(Instant::now() < deadline, "no checkpoint after a commit");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let after_the_commit = db.checkpointer.runs();
        // Reads, like the bot's look for the command line's changes, do not wake it.
        for _ in 0..5 {
            let rows: i64 = db
                .call(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
                .await
                .unwrap();
            assert_eq!(rows, 1);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(db.checkpointer.runs(), after_the_commit);
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
