//! The command line as a host runs it: the real binary on the database in `dir/data`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `personae args…` in `dir`, with nothing from this process's environment.
pub fn personae(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_personae"))
        .args(args)
        .env_clear()
        .env("DATABASE_PATH", dir.join("data/personae.db"))
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

/// What a call that must succeed prints.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = personae(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one JSON document a `--json` call prints.
pub fn json(dir: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(dir, args)).expect("one JSON document")
}

/// The user's mistake: exit code 1, one line on stderr (returned), and nothing changed.
pub fn refused(dir: &Path, args: &[&str]) -> String {
    let before = ok(dir, &["events", "list", "--json"]);
    let out = personae(dir, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
    assert_eq!(
        ok(dir, &["events", "list", "--json"]),
        before,
        "nothing changed"
    );
    stderr
}
