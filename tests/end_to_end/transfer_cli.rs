//! `personae export` and `personae import` as a host moves personalities between bots:
//! the real binary on real databases.

use std::path::Path;

use base64::Engine;
use serde_json::{json, Value};

use crate::host::{ok, personae};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("one JSON document")
}

fn events(dir: &Path) -> Vec<Value> {
    match json_of(&ok(dir, &["events", "list", "--json"])) {
        Value::Array(events) => events,
        other => panic!("{other}"),
    }
}

/// The personalities as `list --json` shows them, without what a new database assigns.
fn personalities(dir: &Path) -> Vec<Value> {
    let Value::Array(list) = json_of(&ok(dir, &["personality", "list", "--json"])) else {
        panic!("a list")
    };
    list.into_iter()
        .map(|mut p| {
            for assigned in ["id", "version", "created_at", "updated_at"] {
                p.as_object_mut().unwrap().remove(assigned);
            }
            p
        })
        .collect()
}

/// A PNG of one pixel with these text chunks (keyword, text) after the image data, as
/// SillyTavern writes cards.
fn png_with(texts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut push = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&[0, 0, 0, 0]);
    };
    push(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    push(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 0, 1, 0, 1]);
    for (keyword, text) in texts {
        let mut data = keyword.as_bytes().to_vec();
        data.push(0);
        data.extend_from_slice(text);
        push(b"tEXt", &data);
    }
    push(b"IEND", &[]);
    png
}

fn base64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(text)
        .into_bytes()
}

fn card(spec: &str, name: &str, description: &str) -> Value {
    json!({"spec": spec, "spec_version": if spec == "chara_card_v3" { "3.0" } else { "2.0" },
           "data": {"name": name, "description": description, "personality": "curious",
                    "first_mes": "Hello, {{user}}.", "tags": ["fantasy"],
                    "extensions": {"talkativeness": "0.5", "depth_prompt": {"depth": 4, "prompt": "x"}}}})
}

/// A database with a server's personality (aliases, model, avatar, NSFW), a global one,
/// and one imported from a PNG card.
fn seeded(dir: &Path) {
    ok(
        dir,
        &[
            "personality",
            "create",
            "Aria",
            "--owner",
            "7001",
            "--server",
            "8001",
            "--display-name",
            "Aria the Bard",
            "--prompt",
            "You sing.",
            "--model",
            "small",
            "--avatar-url",
            "https://example.com/aria.png",
            "--alias",
            "bard",
            "--alias",
            "singer",
        ],
    );
    ok(
        dir,
        &[
            "personality",
            "update",
            "Aria",
            "--server",
            "8001",
            "--nsfw",
            "true",
            "--temperature",
            "0.7",
            "--max-tokens",
            "300",
        ],
    );
    ok(
        dir,
        &[
            "personality",
            "create",
            "Sage",
            "--owner",
            "7002",
            "--global",
            "--prompt",
            "Advise.",
        ],
    );
    let png = png_with(&[(
        "chara",
        &base64(&card("chara_card_v2", "Seraphina", "{{char}} guards the forest.").to_string()),
    )]);
    std::fs::write(dir.join("seraphina.png"), png).unwrap();
    ok(
        dir,
        &[
            "import",
            "seraphina.png",
            "--owner",
            "7003",
            "--server",
            "8002",
        ],
    );
}

#[test]
fn an_export_imported_into_a_fresh_database_gives_equal_personalities_under_one_correlation_id() {
    let from = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    seeded(from.path());
    let out = ok(from.path(), &["export", "all.json"]);
    assert_eq!(out.trim(), "Exported 3 personalities to all.json.");
    let exported = std::fs::read_to_string(from.path().join("all.json")).unwrap();
    let document = json_of(&exported);
    assert_eq!(
        (&document["format"], &document["version"]),
        (&json!("personae-export"), &json!(1))
    );
    std::fs::write(to.path().join("all.json"), &exported).unwrap();

    let out = ok(to.path(), &["import", "all.json"]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("Imported ")).count(),
        4,
        "{out}"
    );
    assert_eq!(personalities(to.path()), personalities(from.path()));
    let aria = &document["personalities"][0];
    assert_eq!(
        (aria["temperature"].as_f64(), aria["max_tokens"].as_u64()),
        (Some(0.7), Some(300))
    );
    let created = events(to.path());
    assert_eq!(created.len(), 3);
    assert!(created
        .iter()
        .all(|e| e["correlation_id"] == created[0]["correlation_id"]));

    // The card's extensions came along: a re-export of the copy is the same document.
    let again = ok(to.path(), &["export"]);
    let strip = |mut d: Value| {
        d.as_object_mut().unwrap().remove("exported_at");
        d
    };
    assert_eq!(strip(json_of(&again)), strip(document));
    let card = json_of(&ok(
        to.path(),
        &["export", "--card", "seraphina", "--server", "8002"],
    ));
    assert_eq!(card["spec"], "chara_card_v2");
    assert_eq!(
        card["data"]["extensions"]["depth_prompt"],
        json!({"depth": 4, "prompt": "x"})
    );
    assert_eq!(card["data"]["extensions"]["talkativeness"], "0.5");
}

#[test]
fn an_exported_card_imported_elsewhere_gives_the_same_personality() {
    let from = tempfile::tempdir().unwrap();
    let to = tempfile::tempdir().unwrap();
    seeded(from.path());
    ok(
        from.path(),
        &["export", "--card", "bard", "--server", "8001", "aria.json"],
    );
    std::fs::copy(from.path().join("aria.json"), to.path().join("aria.json")).unwrap();
    ok(
        to.path(),
        &["import", "aria.json", "--owner", "7001", "--server", "8001"],
    );
    let aria = |dir: &Path| {
        personalities(dir)
            .into_iter()
            .find(|p| p["name"] == "Aria")
            .expect("Aria")
    };
    assert_eq!(aria(to.path()), aria(from.path()));
}

#[test]
fn a_card_becomes_a_personality_as_the_readme_says_and_ccv3_wins_over_chara() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v2 = card("chara_card_v2", "Old Name", "old");
    let v3 = card(
        "chara_card_v3",
        "Nova ✨",
        "{{char}} travels between stars with {{user}}.",
    );
    let png = png_with(&[
        ("ccv3", &base64(&v3.to_string())),
        ("chara", &base64(&v2.to_string())),
    ]);
    std::fs::write(d.join("nova.png"), png).unwrap();
    ok(
        d,
        &["import", "nova.png", "--owner", "7001", "--server", "8001"],
    );
    let info = json_of(&ok(
        d,
        &["personality", "info", "Nova", "--server", "8001", "--json"],
    ));
    assert_eq!(info["display_name"], "Nova ✨");
    assert_eq!(
        info["prompt"],
        "Nova ✨ travels between stars with the user.\n\nNova ✨'s personality: curious\n\n\
         Nova ✨ opens a conversation with:\nHello, the user."
    );
}

#[test]
fn each_conflict_gets_its_own_line_naming_the_personality_and_the_rest_is_imported_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "personality",
            "create",
            "Bard",
            "--owner",
            "7001",
            "--server",
            "8001",
        ],
    );
    let document = json!({"format": "personae-export", "version": 1, "personalities": [
        {"name": "Aria", "display_name": "Aria", "owner_id": "7001", "home_server": "8001",
         "aliases": ["bard", "singer"]},
        {"name": "Bard", "display_name": "Bard", "owner_id": "7001", "home_server": "8001"},
        {"name": "Cleo", "display_name": "Discord Cleo", "owner_id": "7001", "home_server": "8001"},
        {"name": "Dora", "display_name": "Dora", "owner_id": "7001", "home_server": "8001",
         "aliases": ["singer"]},
    ]});
    std::fs::write(d.join("team.json"), document.to_string()).unwrap();
    let before = events(d);

    let dry = personae(d, &["import", "team.json", "--dry-run"]);
    assert_eq!(dry.status.code(), Some(1));
    assert_eq!(events(d), before, "a dry run changes nothing");

    let out = personae(d, &["import", "team.json"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0].starts_with("Aria: alias: \"bard\" is already taken"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("Bard: name: \"Bard\" is already taken"),
        "{stderr}"
    );
    assert!(lines[2].starts_with("Cleo: display_name: "), "{stderr}");
    assert_eq!(
        lines[3],
        "error: 3 of 4 personalities were refused (see the lines above); 1 imported."
    );
    // Aria was refused whole: "singer" stayed free, so Dora has it.
    let names: Vec<_> = personalities(d).iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, [json!("Bard"), json!("Dora")]);
    assert_eq!(
        String::from_utf8(dry.stderr)
            .unwrap()
            .replace("would be refused", "were refused")
            .replace("would be imported", "imported"),
        stderr,
        "the dry run said what the import did"
    );
}

#[test]
fn hostile_files_are_refused_with_one_line_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "personality",
            "create",
            "Aria",
            "--owner",
            "7001",
            "--server",
            "8001",
        ],
    );
    let nested = format!(
        "{{\"spec\":\"chara_card_v2\",\"data\":{{\"name\":\"A\",\"tags\":{}{}}}}}",
        "[".repeat(1_000_000),
        "]".repeat(1_000_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "big.json",
            vec![b' '; 8 * 1024 * 1024 + 1],
            "larger than 8388608 bytes",
        ),
        (
            "types.json",
            card("chara_card_v2", "A", "x")
                .to_string()
                .replace("\"curious\"", "5")
                .into_bytes(),
            "invalid type: integer `5`",
        ),
        (
            "bad64.png",
            png_with(&[("chara", b"%%%not base64%%%")]),
            "not valid base64",
        ),
        (
            "plain.png",
            png_with(&[("Comment", b"hello")]),
            "holds no character card",
        ),
        (
            "fake.png",
            b"GIF89a this is no PNG".to_vec(),
            "neither a personae export nor a character card",
        ),
        ("deep.json", nested.into_bytes(), "deeper than 64 levels"),
        (
            "nameless.json",
            card("chara_card_v2", "  ", "x").to_string().into_bytes(),
            "The card has no name",
        ),
        (
            "v1.json",
            json!({"spec": "chara_card_v1", "data": {"name": "A"}})
                .to_string()
                .into_bytes(),
            "chara_card_v2 and chara_card_v3",
        ),
    ];
    let before = events(d);
    for (file, bytes, expected) in cases {
        std::fs::write(d.join(file), bytes).unwrap();
        for extra in [&[][..], &["--dry-run"][..]] {
            let mut args = vec!["import", file, "--owner", "7001", "--server", "8001"];
            args.extend_from_slice(extra);
            let out = personae(d, &args);
            assert_eq!(out.status.code(), Some(1), "{file}");
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{file}: one line: {stderr}");
            assert!(stderr.contains(expected), "{file}: {stderr}");
        }
    }
    assert_eq!(events(d), before, "nothing changed");
}

#[test]
fn a_card_needs_an_owner_and_a_server_and_an_export_never_overwrites_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "personality",
            "create",
            "Aria",
            "--owner",
            "7001",
            "--server",
            "8001",
        ],
    );
    std::fs::write(
        d.join("card.json"),
        card("chara_card_v2", "Nova", "x").to_string(),
    )
    .unwrap();
    for (args, expected) in [
        (
            &["import", "card.json", "--owner", "7001"][..],
            "give --server SERVER_ID or --global",
        ),
        (
            &["import", "card.json", "--server", "8001"][..],
            "give --owner USER_ID",
        ),
        (&["export", "card.json"][..], "never overwrites"),
        (
            &["export", "--card", "Aria"][..],
            "only global personalities are looked up",
        ),
    ] {
        let out = personae(d, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(personalities(d).len(), 1);
}
