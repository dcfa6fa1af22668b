//! Group commit: write work that queues up while the database thread is busy shares one
//! transaction, each piece in a savepoint of its own.
//!
//! A commit costs SQLite far more than the statements before it: it appends every page
//! the transaction changed to the WAL, checksums them and updates the WAL index, under a
//! file lock. Commands that arrive together change mostly the same pages (the tail of the
//! events table and of its indexes), so one commit for all of them writes those pages once.
//!
//! Each member still succeeds or fails on its own: a member whose work fails is rolled
//! back to its savepoint and the others go on. If the transaction as a whole is lost (its
//! commit fails, or an error makes SQLite roll everything back), each member that had
//! succeeded runs again in a transaction of its own, so that a command only ever fails
//! with its own error. Nobody is answered before the commit that holds their work.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use rusqlite::Connection;

use super::StoreError;
use crate::events::panic_message;

/// Members one group commit takes at most: the first one's answer waits for the last.
const MAX_MEMBERS: usize = 32;

/// A piece of write work with its caller waiting. See [`Database::write`](super::Database::write).
pub(super) trait Member: Send {
    /// Runs the work in the open transaction; false when it failed and its changes must be
    /// undone. May run again if the transaction it ran in was lost.
    fn run(&mut self, conn: &Connection) -> bool;
    /// The transaction holding the work committed: runs the after-commit step.
    fn committed(&mut self, conn: &Connection);
    /// The transaction holding the work could not begin or commit.
    fn failed(&mut self, error: StoreError);
    /// Sends the outcome to the caller.
    fn reply(self: Box<Self>);
}

/// What a group commit leaves to do once the connection is released.
pub(super) struct Finished {
    /// Members whose outcome is decided, to be answered.
    pub(super) answered: Vec<Box<dyn Member>>,
    /// A job taken from the queue that can't join the group, to run next.
    pub(super) next: Option<super::database::Job>,
}

/// Runs `first` and whatever write work is queued behind it (up to `MAX_MEMBERS`) in one
/// transaction and commits it. Stops at the first queued job that is not write work and
/// hands it back.
pub(super) fn run(
    conn: &Connection,
    first: Box<dyn Member>,
    queue: &mpsc::Receiver<super::database::Job>,
) -> Finished {
    let mut answered = Vec::with_capacity(4);
    if let Err(error) = run_cached(conn, "BEGIN IMMEDIATE") {
        let mut first = first;
        first.failed(error.into());
        answered.push(first);
        return Finished {
            answered,
            next: None,
        };
    }
    let mut members: Vec<Box<dyn Member>> = Vec::with_capacity(4);
    let mut first = first;
    // The first member needs no savepoint: if it fails, nothing else is in the transaction.
    if !first.run(conn) {
        rollback(conn);
        answered.push(first);
        return Finished {
            answered,
            next: None,
        };
    }
    members.push(first);
    let mut next = None;
    let mut lost = false;
    while members.len() < MAX_MEMBERS {
        let mut member = match queue.try_recv() {
            Ok(super::database::Job::Write(member)) => member,
            Ok(other) => {
                next = Some(other);
                break;
            }
            Err(_) => break,
        };
        if run_cached(conn, "SAVEPOINT member").is_err() {
            // It runs on its own, with the others, once the transaction is rolled back.
            members.push(member);
            lost = true;
            break;
        }
        if member.run(conn) {
            if run_cached(conn, "RELEASE member").is_err() {
                members.push(member);
                lost = true;
                break;
            }
            members.push(member);
        } else {
            answered.push(member);
            // Some errors (a full disk, I/O) make SQLite roll back the whole transaction.
            if conn.is_autocommit()
                || conn
                    .execute_batch("ROLLBACK TO member; RELEASE member")
                    .is_err()
            {
                lost = true;
                break;
            }
        }
    }
    if !lost {
        match run_cached(conn, "COMMIT") {
            Ok(()) => {
                for member in &mut members {
                    member.committed(conn);
                }
                answered.append(&mut members);
                return Finished { answered, next };
            }
            Err(error) if members.len() == 1 => {
                rollback(conn);
                let mut member = members.remove(0);
                member.failed(error.into());
                answered.push(member);
                return Finished { answered, next };
            }
            Err(_) => {}
        }
    }
    rollback(conn);
    lost_members(conn, members, &mut answered);
    Finished { answered, next }
}

/// Runs each member whose transaction was lost again, alone: it commits, or fails with an
/// error of its own.
fn lost_members(
    conn: &Connection,
    members: Vec<Box<dyn Member>>,
    answered: &mut Vec<Box<dyn Member>>,
) {
    for mut member in members {
        if let Err(error) = run_cached(conn, "BEGIN IMMEDIATE") {
            member.failed(error.into());
        } else if !member.run(conn) {
            rollback(conn);
        } else {
            match run_cached(conn, "COMMIT") {
                Ok(()) => member.committed(conn),
                Err(error) => {
                    rollback(conn);
                    member.failed(error.into());
                }
            }
        }
        answered.push(member);
    }
}

/// Runs one statement without arguments from the connection's statement cache: these run
/// several times per command, and parsing them each time shows in profiles.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Rolls back whatever transaction is open, if SQLite has not already.
fn rollback(conn: &Connection) {
    if !conn.is_autocommit() {
        if let Err(error) = conn.execute_batch("ROLLBACK") {
            tracing::error!(%error, "rolling back a failed transaction failed");
        }
    }
}

/// Where a member is.
enum State<R, T, E> {
    Pending,
    /// Its work ran in a transaction not yet committed.
    Ran(R),
    Done(Result<T, E>),
}

/// A member made of its work, its after-commit step and its caller's reply channel.
pub(super) struct WriteJob<W, A, R, T, E> {
    work: W,
    after_commit: Option<A>,
    state: State<R, T, E>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<W, A, R, T, E> WriteJob<W, A, R, T, E> {
    pub(super) fn new(
        work: W,
        after_commit: A,
        reply: tokio::sync::oneshot::Sender<Result<T, E>>,
    ) -> Self {
        Self {
            work,
            after_commit: Some(after_commit),
            state: State::Pending,
            reply,
        }
    }
}

/// The error a caller gets when its database work panicked.
pub(super) fn panicked(panic: Box<dyn std::any::Any + Send>) -> StoreError {
    StoreError::Task(format!(
        "the database work panicked: {}",
        panic_message(&*panic)
    ))
}

impl<W, A, R, T, E> Member for WriteJob<W, A, R, T, E>
where
    W: Fn(&Connection) -> Result<R, E> + Send,
    A: FnOnce(&Connection, R) -> T + Send,
    R: Send,
    T: Send,
    E: From<StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let outcome = catch_unwind(AssertUnwindSafe(|| (self.work)(conn)));
        match outcome {
            Ok(Ok(ran)) => {
                self.state = State::Ran(ran);
                true
            }
            Ok(Err(error)) => {
                self.state = State::Done(Err(error));
                false
            }
            Err(panic) => {
                self.state = State::Done(Err(panicked(panic).into()));
                false
            }
        }
    }

    fn committed(&mut self, conn: &Connection) {
        let State::Ran(ran) = std::mem::replace(&mut self.state, State::Pending) else {
            return;
        };
        let Some(after_commit) = self.after_commit.take() else {
            return;
        };
        self.state = State::Done(
            catch_unwind(AssertUnwindSafe(|| after_commit(conn, ran)))
                .map_err(|panic| panicked(panic).into()),
        );
    }

    fn failed(&mut self, error: StoreError) {
        self.state = State::Done(Err(error.into()));
    }

    fn reply(self: Box<Self>) {
        let outcome = match self.state {
            State::Done(outcome) => outcome,
            // Never left undecided by `run`; answered rather than dropped all the same.
            State::Pending | State::Ran(_) => Err(StoreError::Task(
                "the database work was neither committed nor failed".into(),
            )
            .into()),
        };
        // The caller may have stopped waiting; the work is settled either way.
        let _ = self.reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use futures::future::BoxFuture;
    use futures::FutureExt;
    use rusqlite::{Connection, OptionalExtension};

    use crate::store::{Database, StoreError, Synchronous};

    /// A database with a table `t (n PRIMARY KEY)` and a child table whose foreign key is
    /// checked at commit (`DEFERRABLE INITIALLY DEFERRED`), so that a commit can be made
    /// to fail.
    fn database(dir: &tempfile::TempDir) -> Database {
        let db = Database::open(&dir.path().join("group.db"), Synchronous::Normal).unwrap();
        db.call_blocking(|c| {
            Ok(c.execute_batch(
                "CREATE TABLE t (n INTEGER PRIMARY KEY);
                 CREATE TABLE child (parent INTEGER REFERENCES t(n) DEFERRABLE INITIALLY DEFERRED);",
            )?)
        })
        .unwrap();
        db
    }

    /// How a member's work behaves.
    #[derive(Clone, Copy)]
    enum Work {
        /// Inserts its number into `t`.
        Insert,
        /// Inserts, then fails.
        Fail,
        /// Inserts, then panics.
        Panic,
        /// Inserts, then rolls back the whole transaction and fails, as SQLite does on
        /// some errors (a full disk).
        LoseTransaction,
        /// Inserts a row whose foreign key fails the commit.
        FailCommit,
    }

    /// A write of `n` behaving as `how`; the future resolves to `n` when it committed.
    /// `runs` counts how often the work ran. The write is queued before this returns.
    fn write(
        db: &Database,
        n: i64,
        how: Work,
        runs: &Arc<AtomicUsize>,
    ) -> BoxFuture<'static, Result<i64, StoreError>> {
        let runs = Arc::clone(runs);
        let mut future = Box::pin({
            let db = db.clone();
            async move {
                db.write(
                    move |conn: &Connection| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        conn.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                        match how {
                            Work::Insert => Ok(n),
                            Work::Fail => Err(StoreError::Conflict),
                            Work::Panic => panic!("work {n} panics"),
                            Work::LoseTransaction => {
                                conn.execute_batch("ROLLBACK")?;
                                Err(StoreError::Corrupt(format!("work {n} lost it")))
                            }
                            Work::FailCommit => {
                                conn.execute("INSERT INTO child (parent) VALUES (?1)", [-n])?;
                                Ok(n)
                            }
                        }
                    },
                    |_, n| n,
                )
                .await
            }
        });
        // The first poll queues the work, which can't be done yet: the thread is held.
        assert!((&mut future).now_or_never().is_none());
        future
    }

    /// Holds the database thread until the returned sender is dropped or sent to, so that
    /// work queues up behind it.
    fn hold(db: &Database) -> (std::sync::mpsc::Sender<()>, BoxFuture<'static, ()>) {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let db = db.clone();
        let held = tokio::spawn(async move {
            db.call(move |_| {
                let _ = started_tx.send(());
                let _ = released.recv_timeout(Duration::from_secs(10));
                Ok(())
            })
            .await
        });
        started
            .recv_timeout(Duration::from_secs(10))
            .expect("the database thread took the holding job");
        (release, async move { held.await.unwrap().unwrap() }.boxed())
    }

    fn stored(db: &Database) -> Vec<i64> {
        db.call_blocking(|c| {
            let mut stmt = c.prepare("SELECT n FROM t ORDER BY n")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .unwrap()
    }

    /// What writes queued together did.
    struct Outcome {
        results: Vec<Result<i64, StoreError>>,
        /// What `t` holds afterwards.
        stored: Vec<i64>,
        /// How often work ran, all writes together.
        runs: usize,
        db: Database,
        _dir: tempfile::TempDir,
    }

    /// Queues the writes of `plan` behind the held database thread, so that they meet in
    /// one group commit, then lets them run.
    async fn run_together(plan: &[(i64, Work)]) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, held) = hold(&db);
        let writes: Vec<_> = plan
            .iter()
            .map(|&(n, how)| write(&db, n, how, &runs))
            .collect();
        release.send(()).unwrap();
        held.await;
        let results = futures::future::join_all(writes).await;
        Outcome {
            results,
            stored: stored(&db),
            runs: runs.load(Ordering::SeqCst),
            db,
            _dir: dir,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_together_commit_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, held) = hold(&db);
        // The first write's after-commit step looks at the file through a second
        // connection: it sees every write of the group, committed at once.
        let path = db.path().to_owned();
        let mut seen = Box::pin({
            let db = db.clone();
            async move {
                db.write(
                    |c: &Connection| {
                        Ok::<_, StoreError>(c.execute("INSERT INTO t VALUES (1)", [])?)
                    },
                    move |_, _| {
                        let other = Connection::open(&path).unwrap();
                        other
                            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))
                            .unwrap()
                    },
                )
                .await
            }
        });
        assert!((&mut seen).now_or_never().is_none());
        let others: Vec<_> = (2..=5)
            .map(|n| write(&db, n, Work::Insert, &runs))
            .collect();
        release.send(()).unwrap();
        held.await;
        assert_eq!(seen.await.unwrap(), 5, "one commit for all five");
        for (n, result) in (2..=5).zip(futures::future::join_all(others).await) {
            assert_eq!(result.unwrap(), n);
        }
        assert_eq!(stored(&db), vec![1, 2, 3, 4, 5]);
        assert_eq!(runs.load(Ordering::SeqCst), 4, "each work ran once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_member_is_undone_alone() {
        let outcome = run_together(&[
            (1, Work::Fail),
            (2, Work::Insert),
            (3, Work::Fail),
            (4, Work::Panic),
            (5, Work::Insert),
        ])
        .await;
        let results = &outcome.results;
        assert!(matches!(results[0], Err(StoreError::Conflict)));
        assert_eq!(results[1].as_ref().unwrap(), &2);
        assert!(matches!(results[2], Err(StoreError::Conflict)));
        match &results[3] {
            Err(StoreError::Task(message)) => {
                assert!(message.contains("work 4 panics"), "{message}")
            }
            other => panic!("expected the panic, got {other:?}"),
        }
        assert_eq!(results[4].as_ref().unwrap(), &5);
        assert_eq!(outcome.stored, vec![2, 5]);
        assert_eq!(outcome.runs, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn when_the_transaction_is_lost_the_others_run_again_alone_and_commit() {
        let outcome = run_together(&[
            (1, Work::Insert),
            (2, Work::Insert),
            (3, Work::LoseTransaction),
            (4, Work::Insert),
        ])
        .await;
        let results = &outcome.results;
        assert_eq!(results[0].as_ref().unwrap(), &1);
        assert_eq!(results[1].as_ref().unwrap(), &2);
        match &results[2] {
            Err(StoreError::Corrupt(message)) => assert_eq!(message, "work 3 lost it"),
            other => panic!("expected its own error, got {other:?}"),
        }
        assert_eq!(results[3].as_ref().unwrap(), &4);
        assert_eq!(outcome.stored, vec![1, 2, 4]);
        // 1 and 2 ran twice (in the lost transaction, then alone); 3 once; 4 once, alone.
        assert_eq!(outcome.runs, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_fails_only_the_member_that_caused_it() {
        let outcome =
            run_together(&[(1, Work::Insert), (2, Work::FailCommit), (3, Work::Insert)]).await;
        let results = &outcome.results;
        assert_eq!(results[0].as_ref().unwrap(), &1);
        match &results[1] {
            Err(error @ StoreError::Sqlite(_)) => {
                assert!(error.to_string().contains("FOREIGN KEY"), "{error}")
            }
            other => panic!("expected the commit's error, got {other:?}"),
        }
        assert_eq!(results[2].as_ref().unwrap(), &3);
        assert_eq!(outcome.stored, vec![1, 3]);
        // Each ran in the group, then again alone.
        assert_eq!(outcome.runs, 6);
        let orphans: Option<i64> = outcome
            .db
            .call_blocking(|c| {
                Ok(c.query_row("SELECT parent FROM child", [], |r| r.get(0))
                    .optional()?)
            })
            .unwrap();
        assert_eq!(orphans, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_work_queued_between_writes_runs_after_the_writes_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, held) = hold(&db);
        let first = write(&db, 1, Work::Insert, &runs);
        let read = {
            let db = db.clone();
            let mut read = Box::pin(async move {
                db.call(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0))?))
                    .await
            });
            assert!((&mut read).now_or_never().is_none());
            read
        };
        let last = write(&db, 2, Work::Insert, &runs);
        release.send(()).unwrap();
        held.await;
        assert_eq!(first.await.unwrap(), 1);
        assert_eq!(
            read.await.unwrap(),
            1,
            "the read sees the write queued before it only"
        );
        assert_eq!(last.await.unwrap(), 2);
        assert_eq!(stored(&db), vec![1, 2]);
    }
}
