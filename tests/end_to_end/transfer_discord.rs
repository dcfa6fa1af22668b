//! `/personality export` and `/personality import` through the fake Discord: files as
//! ephemeral attachments, attachments downloaded from the (fake) CDN, and who may do what.

use base64::Engine;
use personae_fakes::discord::CommandSpec;
use personae_testkit::bot::{create_step, Bot, BotOptions, ADMIN, WAIT};
use personae_testkit::users::{bool_option, personality, run, text_option, MANAGER_PERMISSIONS};
use serde_json::{json, Value};

const OWNER: &str = "7001";
const OTHER: &str = "7002";
const MANAGER: &str = "7004";
const OTHER_SERVER_MANAGER: &str = "7301";

async fn aria_bot() -> Bot {
    Bot::start_with(BotOptions {
        setup: vec![create_step(
            "Aria",
            &[
                "--alias",
                "bard",
                "--prompt",
                "You sing.",
                "--display-name",
                "Aria the Bard",
            ],
        )],
        ..Default::default()
    })
    .await
}

fn export_as(user: &str, options: Vec<Value>) -> CommandSpec {
    let mut spec = personality(user, "export", options);
    match user {
        MANAGER => MANAGER_PERMISSIONS.clone_into(&mut spec.permissions),
        OTHER_SERVER_MANAGER => {
            spec.guild_id = Some("8002".to_owned());
            "6101".clone_into(&mut spec.channel_id);
            MANAGER_PERMISSIONS.clone_into(&mut spec.permissions);
        }
        _ => {}
    }
    spec
}

/// `/personality import file:` with `bytes` attached (uploaded to the fake CDN first),
/// by `user`; returns the bot's answer (the follow-up after its deferral).
async fn import(bot: &Bot, user: &str, filename: &str, bytes: &[u8]) -> String {
    let attachment = bot
        .discord
        .upload_attachment(filename, "application/octet-stream", bytes);
    let spec = personality(
        user,
        "import",
        vec![json!({"name": "file", "type": 11, "value": attachment["id"]})],
    );
    let (id, callback) = run(bot, spec).await;
    assert_eq!(callback["data"]["flags"], 64, "ephemeral: {callback}");
    if callback["type"] == 4 {
        return callback["data"]["content"].as_str().unwrap().to_owned();
    }
    assert_eq!(callback["type"], 5, "deferred: {callback}");
    let followups = bot
        .discord
        .wait_interaction_followups(&id, 1, WAIT)
        .await
        .unwrap();
    assert_eq!(followups[0]["flags"], 64, "ephemeral: {followups:?}");
    followups[0]["content"].as_str().unwrap().to_owned()
}

/// Each personality as name | owner | home server | display name | prompt | keys.
fn stored(bot: &Bot) -> Vec<String> {
    let conn = bot.db();
    let mut stmt = conn
        .prepare(
            "SELECT p.name || '|' || p.owner_id || '|' || COALESCE(p.home_server, 'global') || '|' \
             || p.display_name || '|' || p.prompt || '|' || \
             (SELECT group_concat(key, ',') FROM (SELECT key FROM personality_keys k \
              WHERE k.personality_id = p.id ORDER BY key)) \
             FROM personalities p ORDER BY p.name",
        )
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn those_who_manage_a_personality_get_it_as_an_ephemeral_file_and_no_one_else_does() {
    let bot = aria_bot().await;
    for (user, allowed) in [
        (OWNER, true),
        (MANAGER, true),
        (ADMIN, true),
        (OTHER, false),
        (OTHER_SERVER_MANAGER, false),
    ] {
        let spec = export_as(user, vec![text_option("personality", "bard")]);
        let (id, response) = run(&bot, spec).await;
        assert_eq!(response["type"], 4, "{user}: {response}");
        assert_eq!(
            response["data"]["flags"], 64,
            "{user}: ephemeral: {response}"
        );
        let files = bot.discord.interaction_files(&id);
        if allowed {
            assert_eq!(files.len(), 1, "{user}");
            assert_eq!(files[0].filename, "aria.personae.json");
            assert_eq!(
                response["data"]["attachments"][0]["filename"],
                "aria.personae.json"
            );
            let document: Value = serde_json::from_slice(&files[0].bytes).unwrap();
            assert_eq!(document["format"], "personae-export");
            let aria = &document["personalities"][0];
            assert_eq!(
                (
                    &aria["name"],
                    &aria["display_name"],
                    &aria["prompt"],
                    &aria["aliases"]
                ),
                (
                    &json!("Aria"),
                    &json!("Aria the Bard"),
                    &json!("You sing."),
                    &json!(["bard"])
                )
            );
            assert_eq!(
                (&aria["owner_id"], &aria["home_server"]),
                (&json!(OWNER), &json!("8001"))
            );
        } else {
            assert!(files.is_empty(), "{user}: no file");
            let content = response["data"]["content"].as_str().unwrap();
            assert!(
                content.contains("Only the owner") || content.starts_with("No personality is"),
                "{user}: {content}"
            );
        }
    }
    bot.assert_valid_requests();
}

#[tokio::test]
async fn an_exported_card_imported_by_another_member_becomes_theirs_in_this_server() {
    let bot = aria_bot().await;
    let spec = export_as(
        OWNER,
        vec![
            text_option("personality", "Aria"),
            bool_option("as_card", true),
        ],
    );
    let (id, _) = run(&bot, spec).await;
    let files = bot.discord.interaction_files(&id);
    assert_eq!(files[0].filename, "aria.card.json");
    let card: Value = serde_json::from_slice(&files[0].bytes).unwrap();
    assert_eq!(card["spec"], "chara_card_v2");
    assert_eq!(card["data"]["description"], "You sing.");

    // Free the name and alias, then bring Aria back from the card as another member.
    bot.cli(&["personality", "remove", "Aria", "--server", "8001"])
        .await;
    let answer = import(&bot, OTHER, "aria.card.json", &files[0].bytes).await;
    assert_eq!(answer, "Imported **Aria**.");
    assert_eq!(
        stored(&bot),
        [format!(
            "Aria|{OTHER}|8001|Aria the Bard|You sing.|aria,bard"
        )]
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_png_card_is_imported_and_each_refusal_is_named() {
    let bot = aria_bot().await;
    let card = json!({"spec": "chara_card_v3", "spec_version": "3.0",
        "data": {"name": "Nova", "description": "{{char}} maps the stars for {{user}}."}});
    let png = png_card(&card.to_string());
    let answer = import(&bot, OTHER, "nova.png", &png).await;
    assert_eq!(answer, "Imported **Nova**.");
    let again = import(&bot, OTHER, "nova.png", &png).await;
    assert!(
        again.starts_with("**Nova** was not imported: name: \"Nova\" is already taken"),
        "{again}"
    );
    assert!(stored(&bot).contains(&format!(
        "Nova|{OTHER}|8001|Nova|Nova maps the stars for the user.|nova"
    )));
    bot.assert_valid_requests();
}

#[tokio::test]
async fn the_members_own_limit_applies_to_an_import() {
    let bot = aria_bot().await;
    let personalities: Vec<Value> = (1..=11)
        .map(|i| {
            json!({"name": format!("P{i:02}"), "display_name": format!("P{i:02}"),
                        "owner_id": "42", "home_server": "9999"})
        })
        .collect();
    let document = json!({"format": "personae-export", "version": 1,
                          "personalities": personalities});
    let answer = import(&bot, OTHER, "many.json", document.to_string().as_bytes()).await;
    let lines: Vec<&str> = answer.lines().collect();
    assert_eq!(lines.len(), 11, "{answer}");
    assert_eq!(lines[9], "Imported **P10**.");
    assert!(
        lines[10].starts_with(
            "**P11** was not imported: You already own as many personalities in this server as it allows (10)"
        ),
        "{answer}"
    );
    // Whatever the file said, they are the member's, in this server.
    let rows = stored(&bot);
    assert_eq!(
        rows.iter()
            .filter(|r| r.contains(&format!("|{OTHER}|8001|")))
            .count(),
        10
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_member_without_the_commands_permission_cannot_import() {
    let bot = aria_bot().await;
    let before = stored(&bot);
    let card = json!({"spec": "chara_card_v2", "data": {"name": "Nova"}}).to_string();
    let attachment =
        bot.discord
            .upload_attachment("nova.json", "application/json", card.as_bytes());
    let mut spec = personality(
        "7003",
        "import",
        vec![json!({"name": "file", "type": 11, "value": attachment["id"]})],
    );
    // View Channels only: no Send Messages.
    "1024".clone_into(&mut spec.permissions);
    let (_, response) = run(&bot, spec).await;
    let content = response["data"]["content"].as_str().unwrap();
    assert!(content.contains("You need the"), "{content}");
    assert_eq!(stored(&bot), before);
    assert!(bot.discord.cdn_downloads().is_empty(), "never downloaded");
    bot.assert_valid_requests();
}

#[tokio::test]
async fn hostile_files_are_refused_with_one_line_and_change_nothing() {
    let bot = aria_bot().await;
    let before = stored(&bot);
    let events = || {
        bot.db()
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let events_before = events();
    for (name, bytes, expected) in [
        (
            "plain.png",
            png_with_text("Comment", b"hello"),
            "holds no character card",
        ),
        (
            "broken.png",
            png_with_text("chara", b"***"),
            "not valid base64",
        ),
        (
            "fake.png",
            b"not a png at all".to_vec(),
            "neither a personae export",
        ),
        (
            "nameless.json",
            br#"{"spec":"chara_card_v2","data":{"name":""}}"#.to_vec(),
            "The card has no name",
        ),
        (
            "deep.json",
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            "neither a personae export",
        ),
        (
            "deep-card.json",
            format!(
                "{{\"spec\":\"chara_card_v2\",\"data\":{{\"name\":\"A\",\"tags\":{}{}}}}}",
                "[".repeat(5000),
                "]".repeat(5000)
            )
            .into_bytes(),
            "deeper than 64 levels",
        ),
    ] {
        let answer = import(&bot, OTHER, name, &bytes).await;
        assert_eq!(answer.lines().count(), 1, "{name}: {answer}");
        assert!(answer.contains(expected), "{name}: {answer}");
    }
    assert_eq!(stored(&bot), before);
    assert_eq!(events(), events_before);
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_file_over_the_size_cap_is_refused_before_it_is_downloaded() {
    let bot = aria_bot().await;
    let big = vec![b' '; 8 * 1024 * 1024 + 1];
    let answer = import(&bot, OTHER, "big.json", &big).await;
    assert!(answer.contains("larger than 8 MiB"), "{answer}");
    assert!(bot.discord.cdn_downloads().is_empty(), "not downloaded");
    bot.assert_valid_requests();
}

fn png_with_text(keyword: &str, text: &[u8]) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut push = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        png.extend_from_slice(kind);
        png.extend_from_slice(data);
        png.extend_from_slice(&[0, 0, 0, 0]);
    };
    push(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    push(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 0, 1, 0, 1]);
    let mut data = keyword.as_bytes().to_vec();
    data.push(0);
    data.extend_from_slice(text);
    push(b"tEXt", &data);
    push(b"IEND", &[]);
    png
}

fn png_card(json: &str) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(json);
    png_with_text("chara", encoded.as_bytes())
}
