//! One bot per database: two `personae run` on one file would both connect to Discord and
//! both answer every message. The bot holds an advisory lock on a file beside the database
//! (`personae.db.lock`) for as long as it runs; the operating system releases it when the
//! process ends, however it ends. The command line never takes it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::files;

/// Why the run lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    /// Another process holds it.
    #[error("Another personae is already running on this database: {holder} holds the lock {}. Stop it first, or give this one its own DATABASE_PATH.", path.display())]
    Held { path: PathBuf, holder: String },
    /// The lock file could not be created or locked.
    #[error("Cannot take the lock {}: {reason}.", path.display())]
    Io { path: PathBuf, reason: String },
}

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Where the lock of the database at `database` is.
    pub fn path_for(database: &Path) -> PathBuf {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of the database at `database`, or says who holds it.
    pub fn acquire(database: &Path) -> Result<Self, RunLockError> {
        let path = Self::path_for(database);
        let io_error = |e: &dyn std::fmt::Display| RunLockError::Io {
            path: path.clone(),
            reason: e.to_string(),
        };
        files::create_parent(&path).map_err(|e| io_error(&e))?;
        let mut file = files::open_private_file(&path).map_err(|e| io_error(&e))?;
        // Called by path: std's own `File::try_lock` (Rust 1.89) would shadow the trait's.
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another process".to_owned(),
                    pid => format!("process {pid}"),
                };
                return Err(RunLockError::Held { path, holder });
            }
            Err(fs4::TryLockError::Error(e)) => return Err(io_error(&e)),
        }
        // The pid is for the person reading the refusal; the lock itself is what counts.
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(file, "{}", std::process::id()))
            .and_then(|()| file.flush());
        written.map_err(|e| io_error(&e))?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data/personae.db");
        let first = RunLock::acquire(&db).unwrap();
        let refused = RunLock::acquire(&db).unwrap_err().to_string();
        assert!(refused.contains("personae.db.lock"), "{refused}");
        assert!(
            refused.contains(&format!("process {}", std::process::id())),
            "{refused}"
        );
        drop(first);
        assert!(RunLock::acquire(&db).is_ok());
    }
}
