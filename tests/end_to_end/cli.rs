//! The admin command line, as a host uses it: the real binary on a real database.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::host::{json, ok, personae, refused};

#[test]
fn a_host_creates_inspects_changes_and_removes_a_personality() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(
        d,
        &[
            "personality",
            "create",
            "Aria",
            "--owner",
            "123",
            "--global",
            "--display-name",
            "Aria the Bard",
            "--prompt",
            "You sing.",
            "--alias",
            "bard",
            "--alias",
            "The  Singer",
        ],
    );
    assert!(out.starts_with("Created Aria"), "{out}");
    assert!(
        d.join("data/personae.db").exists(),
        "the data folder is created"
    );

    let info = json(d, &["personality", "info", "@BARD", "--json"]);
    for field in [
        "id",
        "name",
        "display_name",
        "avatar_url",
        "prompt",
        "model",
        "owner_id",
        "aliases",
        "version",
        "created_at",
        "updated_at",
    ] {
        assert!(info.get(field).is_some(), "{field} missing from {info}");
    }
    assert_eq!(info["aliases"], serde_json::json!(["bard", "the singer"]));
    assert_eq!(info["owner_id"], "123");
    assert_eq!(info["model"], Value::Null);

    ok(
        d,
        &[
            "personality",
            "update",
            "the singer",
            "--model",
            "gpt-4o",
            "--avatar-url",
            "https://x.example/a.png",
        ],
    );
    ok(d, &["personality", "alias", "Aria", "lyra"]);
    ok(d, &["personality", "unalias", "Aria", "bard"]);
    let list = json(d, &["personality", "list", "--owner", "123", "--json"]);
    assert_eq!(list[0]["version"], 4);
    assert_eq!(
        list[0]["aliases"],
        serde_json::json!(["lyra", "the singer"])
    );
    assert_eq!(
        json(d, &["personality", "list", "--owner", "999", "--json"]),
        serde_json::json!([])
    );

    let events = json(d, &["events", "list", "--json"]);
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "PersonalityCreated",
            "PersonalityProfileUpdated",
            "PersonalityAliasAdded",
            "PersonalityAliasRemoved"
        ]
    );
    for field in [
        "sequence",
        "event_id",
        "type",
        "aggregate_id",
        "aggregate_version",
        "occurred_at",
        "actor",
        "correlation_id",
        "causation_id",
        "payload",
    ] {
        assert!(
            events[0].get(field).is_some(),
            "{field} missing from {}",
            events[0]
        );
    }
    assert_eq!(events[0]["actor"], "admin:cli");
    assert_eq!(
        events[1]["payload"]["changed"],
        serde_json::json!(["avatar_url", "model"])
    );
    let filtered = json(
        d,
        &[
            "events",
            "list",
            "--type",
            "PersonalityAliasAdded",
            "--json",
        ],
    );
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    let after = json(d, &["events", "list", "--after", "3", "--json"]);
    assert_eq!(after[0]["sequence"], 4);
    let correlation = events[2]["correlation_id"].as_str().unwrap();
    let by_correlation = json(
        d,
        &["events", "list", "--correlation", correlation, "--json"],
    );
    assert_eq!(by_correlation.as_array().unwrap().len(), 1);

    assert!(ok(d, &["events", "verify"]).starts_with(
        "ok: the stored state matches the events for 1 personality (1 current, 0 removed)"
    ));
    ok(d, &["personality", "remove", "lyra"]);
    assert_eq!(
        json(d, &["personality", "list", "--json"]),
        serde_json::json!([])
    );
    // The name and aliases are free again at once.
    ok(
        d,
        &[
            "personality",
            "create",
            "aria",
            "--owner",
            "5",
            "--global",
            "--alias",
            "lyra",
        ],
    );
    assert!(ok(d, &["events", "verify"]).starts_with(
        "ok: the stored state matches the events for 2 personalities (1 current, 1 removed)"
    ));
}

#[test]
fn mistakes_exit_with_code_1_one_line_and_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "personality",
            "create",
            "Aria",
            "--owner",
            "123",
            "--global",
            "--alias",
            "bard",
        ],
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["personality", "create", "aria", "--owner", "5", "--global"],
            "name: \"aria\" is already taken",
        ),
        (
            &[
                "personality",
                "create",
                "Nova",
                "--owner",
                "abc",
                "--global",
            ],
            "owner: \"abc\" is not a Discord user id",
        ),
        (
            &[
                "personality",
                "create",
                "Nova",
                "--owner",
                "5",
                "--global",
                "--display-name",
                "Clyde",
            ],
            "display_name: ",
        ),
        (
            &[
                "personality",
                "create",
                "Nova",
                "--owner",
                "5",
                "--global",
                "--avatar-url",
                "javascript:alert(1)",
            ],
            "avatar_url: ",
        ),
        (
            &[
                "personality",
                "create",
                "Nova",
                "--owner",
                "5",
                "--global",
                "--alias",
                "BARD",
            ],
            "alias: \"bard\" is already taken by an alias of \"Aria\"",
        ),
        (
            &["personality", "alias", "nobody", "x"],
            "No personality is called \"nobody\". Without --server SERVER_ID only global \
             personalities are looked up.",
        ),
        (
            &["personality", "info", "nobody", "--server", "8001"],
            "No personality is called \"nobody\".",
        ),
        (
            &[
                "personality",
                "create",
                "Nova",
                "--owner",
                "5",
                "--server",
                "x1",
            ],
            "server: \"x1\" is not a Discord server id",
        ),
        (
            &["personality", "unalias", "Aria", "nope"],
            "alias: \"nope\" is not an alias",
        ),
        (
            &["personality", "update", "Aria"],
            "Nothing to update: give --display-name",
        ),
        (
            &["personality", "update", "Aria", "--model", ""],
            "Nothing to update: it already has every value given.",
        ),
        (
            &["personality", "update", "Aria", "--model", "a b"],
            "model: ",
        ),
        (&["events", "list", "--type", "Bogus"], "Unknown event type"),
        (
            &["events", "replay", "--subscriber", "nobody"],
            "No durable subscriber is named \"nobody\"",
        ),
    ];
    for (args, expected) in cases {
        let stderr = refused(d, args);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.trim_end().ends_with('.'), "a sentence: {stderr}");
    }
}

#[test]
fn every_argument_and_option_has_a_description_in_the_help() {
    let dir = tempfile::tempdir().unwrap();
    for command in [
        &["personality", "create"][..],
        &["personality", "update"],
        &["personality", "alias"],
        &["personality", "unalias"],
        &["personality", "remove"],
        &["personality", "list"],
        &["personality", "info"],
        &["events", "list"],
        &["events", "replay"],
        &["events", "dead-letters"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = ok(dir.path(), &args);
        let bare: Vec<&str> = help
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('<') || l.starts_with('-'))
            .filter(|l| !l.contains("  "))
            .collect();
        assert!(bare.is_empty(), "{command:?}: no description for {bare:?}");
    }
}

#[test]
fn a_bad_configuration_value_names_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_personae"))
        .args(["personality", "list"])
        .env_clear()
        .env("BOT_ADMIN_IDS", "12,alice")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: BOT_ADMIN_IDS: \"alice\" is not a Discord user id"),
        "{stderr}"
    );
}

#[test]
fn verify_finds_a_stored_state_that_differs_from_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "personality",
            "create",
            "Aria",
            "--owner",
            "123",
            "--global",
        ],
    );
    let conn = rusqlite::Connection::open(d.join("data/personae.db")).unwrap();
    conn.execute("UPDATE personalities SET prompt = 'tampered'", [])
        .unwrap();
    drop(conn);
    let out = personae(d, &["events", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Aria") && stderr.contains("profile differs"),
        "{stderr}"
    );
}

#[test]
fn replay_delivers_stored_events_to_a_subscriber_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "personality",
            "create",
            "Aria",
            "--owner",
            "123",
            "--global",
        ],
    );
    ok(d, &["personality", "alias", "Aria", "bard"]);
    let out = ok(
        d,
        &["events", "replay", "--subscriber", "audit", "--from", "1"],
    );
    assert!(
        out.contains("2 handled") && out.contains("checkpoint 2"),
        "{out}"
    );
    let out = ok(
        d,
        &["events", "replay", "--subscriber", "audit", "--from", "2"],
    );
    assert!(out.contains("1 handled"), "{out}");
    assert!(ok(d, &["events", "dead-letters"]).contains("No dead letters."));
}

#[test]
fn eight_processes_opening_a_new_database_at_once_all_succeed() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let children: Vec<_> = (0..8)
            .map(|i| {
                Command::new(env!("CARGO_BIN_EXE_personae"))
                    .args([
                        "personality",
                        "create",
                        &format!("P{i}"),
                        "--owner",
                        "1",
                        "--global",
                    ])
                    .env_clear()
                    .env("DATABASE_PATH", d.join("data/personae.db"))
                    .current_dir(d)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("the binary starts")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let list = json(d, &["personality", "list", "--json"]);
        assert_eq!(list.as_array().map(Vec::len), Some(8), "round {round}");
    }
}

/// A database with three personalities, closed (its WAL folded in).
fn three_personalities(d: &Path) -> std::path::PathBuf {
    for (name, alias) in [("Aria", "bard"), ("Nova", "star"), ("Lyra", "harp")] {
        ok(
            d,
            &[
                "personality",
                "create",
                name,
                "--owner",
                "5",
                "--global",
                "--alias",
                alias,
            ],
        );
    }
    d.join("data/personae.db")
}

fn verify_fails(dir: &Path, database: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_personae"))
        .args(["events", "verify"])
        .env_clear()
        .env("DATABASE_PATH", database)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !out.status.success(),
        "verify passed a broken file: {stderr}"
    );
    stderr
}

#[test]
fn verify_reports_a_key_row_deleted_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let db = three_personalities(dir.path());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "DELETE FROM personality_keys WHERE kind = 'name' AND key = 'nova'",
        [],
    )
    .unwrap();
    conn.execute("DELETE FROM personality_keys WHERE key = 'harp'", [])
        .unwrap();
    drop(conn);
    let stderr = verify_fails(dir.path(), &db);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("(Nova)") && l.contains("no row in the key table")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("(Lyra)") && l.contains("harp")),
        "{stderr}"
    );
    assert!(
        lines.last().unwrap().contains("found 2 problems"),
        "{stderr}"
    );
}

#[test]
fn verify_reports_a_damaged_copy_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = three_personalities(dir.path());
    let copy = dir.path().join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    let (page_size, root): (i64, i64) = {
        let conn = rusqlite::Connection::open(&copy).unwrap();
        (
            conn.query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap(),
            conn.query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'personalities_by_owner'",
                [],
                |r| r.get(0),
            )
            .unwrap(),
        )
    };
    // The end of an index page holds its entries: scribble over them.
    let mut bytes = std::fs::read(&copy).unwrap();
    let page_end = (root * page_size) as usize;
    for b in &mut bytes[page_end - 200..page_end] {
        *b = 0x55;
    }
    std::fs::write(&copy, bytes).unwrap();
    let stderr = verify_fails(dir.path(), &copy);
    assert!(stderr.contains("SQLite integrity check"), "{stderr}");
    assert!(
        ok(dir.path(), &["events", "verify"]).starts_with("ok:"),
        "the original is untouched"
    );
}

#[test]
fn read_only_commands_refuse_a_missing_database_naming_it_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["personality", "list"][..],
        &["personality", "info", "aria"],
        &["events", "list"],
        &["events", "verify"],
    ] {
        let out = personae(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("data/personae.db"), "{stderr}");
        assert!(
            !dir.path().join("data").exists(),
            "{args:?} created a folder"
        );
    }
}

#[test]
fn the_database_option_wins_over_database_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let other = d.join("elsewhere.db");
    let out = Command::new(env!("CARGO_BIN_EXE_personae"))
        .args([
            "personality",
            "create",
            "Aria",
            "--owner",
            "1",
            "--global",
            "--database",
        ])
        .arg(&other)
        .env_clear()
        .env("DATABASE_PATH", d.join("data/personae.db"))
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(other.exists());
    assert!(!d.join("data").exists());
}

#[test]
fn usage_mistakes_exit_1_and_help_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["personality", "frobnicate"][..],
        &["personality", "create", "Aria"],
        &["events", "list", "--after", "soon"],
        &[],
    ] {
        let out = personae(dir.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
    assert_eq!(personae(dir.path(), &["--help"]).status.code(), Some(0));
}

#[test]
fn the_command_line_prints_no_info_lines_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_personae"))
            .args(args)
            .env_clear()
            .env("DATABASE_PATH", d.join("data/personae.db"))
            .env("RUST_LOG", "info")
            .current_dir(d)
            .output()
            .unwrap()
    };
    let out = run(&["personality", "create", "Aria", "--owner", "1", "--global"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no log lines");
    let out = run(&[
        "-v",
        "personality",
        "create",
        "Nova",
        "--owner",
        "1",
        "--global",
    ]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("INFO"),
        "-v shows them"
    );
}

#[test]
fn read_only_commands_start_no_event_subscribers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &["personality", "create", "Aria", "--owner", "1", "--global"],
    );
    let db = d.join("data/personae.db");
    let checkpoints = || -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM subscriber_checkpoints", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM subscriber_checkpoints", [])
        .unwrap();
    for args in [
        &["personality", "list"][..],
        &["personality", "info", "aria"],
        &["events", "list"],
        &["events", "verify"],
        &["events", "dead-letters"],
    ] {
        ok(d, args);
        assert_eq!(checkpoints(), 0, "{args:?} ran the subscribers");
    }
}

#[test]
fn a_host_sets_a_servers_settings_and_bad_values_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "server",
            "set",
            "8001",
            "--channels",
            "listed",
            "--list-channel",
            "6001",
            "--list-channel",
            "6002",
            "--member-limit",
            "3",
        ],
    );
    for (args, says) in [
        (&["server", "set", "8001"][..], "Nothing to change"),
        (
            &["server", "set", "8001", "--channels", "nowhere"],
            "channels: \"nowhere\" is not one of",
        ),
        (
            &["server", "set", "8001", "--member-limit", "0"],
            "member_limit: must be between 1 and 1000",
        ),
        (
            &["server", "set", "8001", "--unlist-channel", "9"],
            "channel 9 is not on the list",
        ),
        (
            &["server", "set", "8001", "--member-limit", "3"],
            "Nothing to update",
        ),
        (
            &["server", "set", "0", "--globals", "false"],
            "server: a Discord server id is a positive number",
        ),
    ] {
        let stderr = refused(d, args);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    ok(
        d,
        &[
            "server",
            "set",
            "8001",
            "--unlist-channel",
            "6002",
            "--globals",
            "false",
        ],
    );
    let shown = json(d, &["server", "show", "8001", "--json"]);
    assert_eq!(shown["channels"], "listed");
    assert_eq!(shown["listed_channels"], serde_json::json!(["6001"]));
    assert_eq!(shown["globals"], false);
    assert_eq!(shown["member_limit"], 3);
    assert_eq!(shown["version"], 2);
    let fresh = json(d, &["server", "show", "8002", "--json"]);
    assert_eq!(
        (fresh["version"].as_i64(), fresh["member_limit"].as_i64()),
        (Some(0), Some(10))
    );
    let events = json(
        d,
        &[
            "events",
            "list",
            "--type",
            "ServerSettingsChanged",
            "--json",
        ],
    );
    assert_eq!(events.as_array().map(Vec::len), Some(2));
    assert_eq!(
        events[1]["payload"]["changed"],
        serde_json::json!(["listed_channels", "globals"])
    );
    assert!(ok(d, &["events", "verify"]).contains("the settings of 1 server"));
}
