//! The background WAL checkpointer: copies committed pages from the WAL into the database
//! file on a connection and a thread of its own, shortly after commits.
//!
//! A checkpoint syncs the WAL and the database file (milliseconds on many disks). Left to
//! SQLite's automatic checkpoints, that wait would fall on whichever command crossed the
//! threshold. Here it runs beside the commands instead.
//!
//! When it runs matters too. A checkpoint takes CPU and disk from the command thread while it
//! copies, and what it copies grows with the time since the last one. Commands that arrive
//! meanwhile queue behind the commands it slows down. On a 200 ms clock, checkpoints took
//! 13–48 ms each at 10,000 commands/s. Run 20 ms after the first commit since the last
//! checkpoint, they took the p99 of commands arriving at 3,000 a second from 1.05–1.78 ms to
//! 0.46–1.45 ms, and the slowest command of a run from ~20 ms to ~5 ms (BENCHMARKS.md §2).
//! A bot with nothing to write never wakes this thread.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::database::{set_synchronous, Synchronous};

/// How long the checkpointer waits after the first commit since its last checkpoint, so
/// that the commits of the next few milliseconds share the checkpoint. It also bounds what
/// a power cut can take with `synchronous=NORMAL`: a commit is on disk once a checkpoint
/// has synced the WAL after it.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(20);

/// What the WAL file is cut back to once the database is idle. SQLite reuses the WAL from
/// its start once everything in it is checkpointed, but never shrinks the file by itself:
/// a burst of writes that outran the checkpointer (sustained writes grow the WAL by ~20 kB
/// a command) would otherwise leave the file at its largest for as long as the bot runs.
pub(super) const WAL_SIZE_LIMIT: u64 = 32 * 1024 * 1024;

/// How long the database must have had no commit before an oversized WAL is cut back.
/// Cutting it back frees its pages from the page cache: ~100 ms of kernel work for a few
/// hundred MB, during which no command commits. SQLite's own `journal_size_limit` does
/// it in the first commit after the WAL starts over, in the middle of the traffic that
/// grew it: those were the open loop's 100–150 ms stalls (BENCHMARKS.md §2).
const IDLE_BEFORE_SHRINK: Duration = Duration::from_secs(1);

/// Which checkpoint to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Copies what it can without waiting for anyone: after commits.
    Passive,
    /// Copies everything and cuts the WAL file to nothing: when idle, and the WAL is
    /// oversized. It waits for no one either; if a command holds the write lock it fails
    /// and is tried again at the next idle moment.
    Truncate,
}

/// What the checkpointer's thread is told.
enum Signal {
    /// Work that may have committed has finished.
    Committed,
    /// The database is closing.
    Stop,
}

/// Wakes the checkpointer after work that may have committed, at most once per
/// checkpoint: ringing while a checkpoint is already due costs one atomic operation.
#[derive(Clone)]
pub(super) struct Bell {
    signals: mpsc::Sender<Signal>,
    /// True from the first ring after a checkpoint began until the next one begins.
    due: Arc<AtomicBool>,
}

impl Bell {
    /// Says that work that may have committed has just finished.
    pub(super) fn ring(&self) {
        if !self.due.swap(true, Ordering::SeqCst) {
            // Without a checkpointer thread nobody listens; SQLite checkpoints on close.
            let _ = self.signals.send(Signal::Committed);
        }
    }
}

/// The checkpointer's thread; stopped (and joined) when dropped.
pub(super) struct Checkpointer {
    bell: Bell,
    thread: Option<JoinHandle<()>>,
    /// Checkpoints run so far.
    runs: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Starts checkpointing `path` on a connection of its own. If that fails the database
    /// still works, with SQLite's automatic checkpoints on the command connection.
    pub(super) fn start(path: &Path, synchronous: Synchronous) -> Self {
        let (signals, received) = mpsc::channel();
        let mut checkpointer = Self {
            bell: Bell {
                signals,
                due: Arc::new(AtomicBool::new(false)),
            },
            thread: None,
            runs: Arc::new(AtomicU64::new(0)),
        };
        // The checkpoint's syncs follow the setting of the connection that runs it.
        let conn = match Connection::open(path)
            .and_then(|conn| set_synchronous(&conn, synchronous).map(|()| conn))
        {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "no background WAL checkpoints; commands will run them");
                return checkpointer;
            }
        };
        let due = Arc::clone(&checkpointer.bell.due);
        let runs = Arc::clone(&checkpointer.runs);
        let mut failing = false;
        let wal = wal_path(path);
        let checkpoint = move |mode: Mode| {
            let sql = match mode {
                Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
                Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
            };
            match conn.query_row(sql, [], |_| Ok(())) {
                Ok(()) => failing = false,
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, ?mode, "WAL checkpoint failed; trying again after the next commit, or the next idle second");
                }
                Err(_) => {}
            }
            runs.fetch_add(1, Ordering::SeqCst);
            // A WAL that is gone (or unreadable) is not oversized.
            std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_SIZE_LIMIT)
        };
        match std::thread::Builder::new()
            .name("personae-checkpoint".into())
            .spawn(move || checkpoint_after_commits(&received, &due, checkpoint))
        {
            Ok(thread) => checkpointer.thread = Some(thread),
            Err(error) => {
                tracing::warn!(%error, "no background WAL checkpoints; commands will run them");
            }
        }
        checkpointer
    }

    /// Whether the thread runs (if not, SQLite's automatic checkpoints must stay on).
    pub(super) fn is_running(&self) -> bool {
        self.thread.is_some()
    }

    /// What the database thread rings after each unit of work that changed rows.
    pub(super) fn bell(&self) -> Bell {
        self.bell.clone()
    }

    /// Rings the bell (for work done outside the database thread).
    pub(super) fn ring(&self) {
        self.bell.ring();
    }

    /// How many checkpoints have run.
    #[cfg(test)]
    pub(super) fn runs(&self) -> u64 {
        self.runs.load(Ordering::SeqCst)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // The database thread holds a bell too, so the channel stays open: say it.
        let _ = self.bell.signals.send(Signal::Stop);
        if let Some(thread) = self.thread.take() {
            // A panic in the thread already went to stderr; nothing more to do with it.
            let _ = thread.join();
        }
    }
}

/// Sleeps until a commit, waits `CHECKPOINT_DELAY` for the commits that follow it, then
/// checkpoints; until told to stop. PASSIVE never waits for the command connection: it
/// copies what it can, and a commit it could not include rings again. `checkpoint` says
/// whether the WAL file is left larger than `WAL_SIZE_LIMIT`; if so, the WAL is cut back
/// once no commit came for `IDLE_BEFORE_SHRINK`.
fn checkpoint_after_commits(
    signals: &mpsc::Receiver<Signal>,
    due: &AtomicBool,
    mut checkpoint: impl FnMut(Mode) -> bool,
) {
    let mut oversized = false;
    loop {
        let next = if oversized {
            match signals.recv_timeout(IDLE_BEFORE_SHRINK) {
                Err(RecvTimeoutError::Timeout) => {
                    oversized = checkpoint(Mode::Truncate);
                    continue;
                }
                Ok(signal) => Ok(signal),
                Err(RecvTimeoutError::Disconnected) => Err(()),
            }
        } else {
            signals.recv().map_err(|_| ())
        };
        match next {
            Ok(Signal::Committed) => {}
            Ok(Signal::Stop) | Err(()) => return,
        }
        match signals.recv_timeout(CHECKPOINT_DELAY) {
            Err(RecvTimeoutError::Timeout) | Ok(Signal::Committed) => {}
            Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
        // Cleared before the checkpoint starts: a commit that rings from here on is either
        // in this checkpoint or wakes the next one.
        due.store(false, Ordering::SeqCst);
        oversized = checkpoint(Mode::Passive);
    }
}

/// The WAL file SQLite keeps beside the database at `path`.
fn wal_path(path: &Path) -> std::path::PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    /// The checkpoint loop on a thread, with checkpoints that report when they start and
    /// finish only when the test lets them.
    struct Harness {
        bell: Bell,
        started: mpsc::Receiver<()>,
        finish: mpsc::Sender<()>,
        thread: Option<JoinHandle<()>>,
    }

    impl Harness {
        fn start() -> Self {
            let (signals, received) = mpsc::channel();
            let bell = Bell {
                signals,
                due: Arc::new(AtomicBool::new(false)),
            };
            let (started_tx, started) = mpsc::channel();
            let (finish, finish_rx) = mpsc::channel::<()>();
            let due = Arc::clone(&bell.due);
            let thread = std::thread::spawn(move || {
                checkpoint_after_commits(&received, &due, |_| {
                    started_tx.send(()).unwrap();
                    finish_rx.recv().unwrap();
                    false
                })
            });
            Self {
                bell,
                started,
                finish,
                thread: Some(thread),
            }
        }

        fn checkpoint_starts_within(&self, wait: Duration) -> bool {
            self.started.recv_timeout(wait).is_ok()
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            let _ = self.bell.signals.send(Signal::Stop);
            let _ = self.finish.send(());
            if let Some(thread) = self.thread.take() {
                thread.join().unwrap();
            }
        }
    }

    #[test]
    fn nothing_committed_means_no_checkpoint() {
        let harness = Harness::start();
        assert!(!harness.checkpoint_starts_within(CHECKPOINT_DELAY * 10));
    }

    #[test]
    fn commits_close_together_share_one_checkpoint() {
        let harness = Harness::start();
        for _ in 0..5 {
            harness.bell.ring();
        }
        assert!(harness.checkpoint_starts_within(WAIT));
        harness.finish.send(()).unwrap();
        assert!(!harness.checkpoint_starts_within(CHECKPOINT_DELAY * 10));
    }

    #[test]
    fn a_commit_during_a_checkpoint_gets_a_checkpoint_of_its_own() {
        let harness = Harness::start();
        harness.bell.ring();
        assert!(harness.checkpoint_starts_within(WAIT));
        // This commit may have come too late for the running checkpoint to copy it.
        harness.bell.ring();
        harness.finish.send(()).unwrap();
        assert!(
            harness.checkpoint_starts_within(WAIT),
            "a commit during a checkpoint was left for whenever the next commit comes"
        );
        harness.finish.send(()).unwrap();
    }

    #[test]
    fn the_checkpoint_waits_for_the_commits_that_follow_the_first() {
        let harness = Harness::start();
        let rung = std::time::Instant::now();
        harness.bell.ring();
        assert!(harness.checkpoint_starts_within(WAIT));
        assert!(rung.elapsed() >= CHECKPOINT_DELAY);
        harness.finish.send(()).unwrap();
    }

    #[test]
    fn an_oversized_wal_is_cut_back_only_once_commits_stop() {
        let (signals, received) = mpsc::channel();
        let bell = Bell {
            signals,
            due: Arc::new(AtomicBool::new(false)),
        };
        let (modes_tx, modes) = mpsc::channel();
        let due = Arc::clone(&bell.due);
        let thread = std::thread::spawn(move || {
            checkpoint_after_commits(&received, &due, |mode| {
                modes_tx.send(mode).unwrap();
                // Every PASSIVE checkpoint leaves the WAL oversized; TRUNCATE cuts it.
                mode == Mode::Passive
            });
        });
        // Commits keep coming, less than `IDLE_BEFORE_SHRINK` apart.
        let busy_until = std::time::Instant::now() + IDLE_BEFORE_SHRINK * 3 / 2;
        while std::time::Instant::now() < busy_until {
            bell.ring();
            std::thread::sleep(IDLE_BEFORE_SHRINK / 10);
        }
        let during: Vec<Mode> = modes.try_iter().collect();
        assert!(!during.is_empty());
        assert!(
            during.iter().all(|&mode| mode == Mode::Passive),
            "cut back while commits came: {during:?}"
        );
        // Then they stop: the last ring's PASSIVE checkpoint may still come, then the cut.
        let mut after = Vec::new();
        while after.last() != Some(&Mode::Truncate) {
            after.push(
                modes
                    .recv_timeout(WAIT)
                    .expect("the WAL was never cut back"),
            );
        }
        assert!(after.len() <= 2, "{after:?}");
        // Cut back, it is left alone.
        assert!(modes.recv_timeout(IDLE_BEFORE_SHRINK * 2).is_err());
        let _ = bell.signals.send(Signal::Stop);
        thread.join().unwrap();
    }
}
