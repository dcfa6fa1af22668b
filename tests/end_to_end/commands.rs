//! End to end: the slash commands of the real bot, against the fake Discord. Each test starts
//! its own bot with its own database, plays users through interactions and checks both the
//! answer Discord would show and the state the bot stored.

use personae_fakes::discord::{CommandSpec, ComponentSpec, MessageSpec, ModalSpec};
use personae_testkit::bot::{create_step, Bot, BotOptions, ADMIN, WAIT};
use personae_testkit::users::{
    answer, bool_option, command, focused, personality, run, text_option,
};
use serde_json::{json, Value};

const ALICE: &str = "7001";
const BOB: &str = "7002";
/// The message flag of answers only the user sees.
const EPHEMERAL: u64 = 64;
/// VIEW_CHANNEL | SEND_MESSAGES: a member without Manage Messages.
const PLAIN_MEMBER: &str = "3072";

// ---- playing the users ----

/// The choices of an autocomplete answer, by value.
async fn suggestions(bot: &Bot, spec: CommandSpec) -> Vec<String> {
    let id = bot.discord.autocomplete(spec).await;
    let response = bot
        .discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap();
    assert_eq!(response["type"], 8, "{response}");
    response["data"]["choices"]
        .as_array()
        .expect("choices")
        .iter()
        .map(|c| c["value"].as_str().expect("string values").to_owned())
        .collect()
}

async fn click(bot: &Bot, user: &str, custom_id: &str, message_id: &str) -> Value {
    let id = bot
        .discord
        .button_click(ComponentSpec {
            user_id: user.to_owned(),
            user_name: format!("user{user}"),
            custom_id: custom_id.to_owned(),
            message_id: message_id.to_owned(),
            ..Default::default()
        })
        .await;
    bot.discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- bot logs ---\n{}", bot.logs()))
}

fn content(response: &Value) -> &str {
    response["data"]["content"].as_str().unwrap_or_default()
}

fn is_ephemeral(response: &Value) -> bool {
    response["data"]["flags"].as_u64().unwrap_or(0) & EPHEMERAL != 0
}

/// A private answer (type 4, ephemeral) with exactly this text.
#[track_caller]
fn assert_private(response: &Value, expected: &str) {
    assert_eq!(response["type"], 4, "{response}");
    assert_eq!(content(response), expected, "{response}");
    assert!(is_ephemeral(response), "should be ephemeral: {response}");
}

/// A private answer (type 4, ephemeral) whose text starts so (the rest is the service's wording).
#[track_caller]
fn assert_private_starting(response: &Value, start: &str) {
    assert_eq!(response["type"], 4, "{response}");
    assert!(content(response).starts_with(start), "{response}");
    assert!(content(response).ends_with('.'), "one sentence: {response}");
    assert!(is_ephemeral(response), "should be ephemeral: {response}");
}

/// The custom ids of the buttons on a message or in a callback's data.
fn button_ids(data: &Value) -> Vec<String> {
    data["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|b| b["custom_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn original_message_id(bot: &Bot, interaction_id: &str) -> String {
    let original = bot
        .discord
        .interaction_original(interaction_id)
        .expect("an original response");
    original["id"].as_str().expect("message id").to_owned()
}

// ---- reading the bot's database ----

#[derive(Debug, PartialEq)]
struct Stored {
    owner_id: String,
    display_name: String,
    avatar_url: Option<String>,
    prompt: String,
    model: Option<String>,
}

fn stored(bot: &Bot, name: &str) -> Option<Stored> {
    let db = bot.db();
    let mut stmt = db
        .prepare("SELECT owner_id, display_name, avatar_url, prompt, model FROM personalities WHERE name = ?1")
        .unwrap();
    let mut rows = stmt
        .query_map([name], |r| {
            Ok(Stored {
                owner_id: r.get(0)?,
                display_name: r.get(1)?,
                avatar_url: r.get(2)?,
                prompt: r.get(3)?,
                model: r.get(4)?,
            })
        })
        .unwrap();
    rows.next().map(Result::unwrap)
}

fn stored_aliases(bot: &Bot, name: &str) -> Vec<String> {
    let db = bot.db();
    let mut stmt = db
        .prepare(
            "SELECT k.key FROM personality_keys k JOIN personalities p ON p.id = k.personality_id \
             WHERE p.name = ?1 AND k.kind = 'alias' ORDER BY k.key",
        )
        .unwrap();
    let aliases = stmt.query_map([name], |r| r.get(0)).unwrap();
    aliases.map(Result::unwrap).collect()
}

fn count(bot: &Bot, sql: &str) -> i64 {
    bot.db().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A bot whose database already holds these personalities (made with the admin command line).
async fn bot_with(steps: Vec<Vec<String>>) -> Bot {
    Bot::start_with(BotOptions {
        setup: steps,
        ..Default::default()
    })
    .await
}

fn owned_by(owner: &str, name: &str) -> Vec<String> {
    [
        "personality",
        "create",
        name,
        "--owner",
        owner,
        "--server",
        "8001",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect()
}

// ---- registration ----

/// (name, type, required, autocomplete) of each option.
type OptionSpec = (&'static str, u64, bool, bool);

fn options_of(command: &Value) -> Vec<(String, u64, bool, bool)> {
    command["options"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["type"].as_u64().unwrap(),
                o["required"] == true,
                o["autocomplete"] == true,
            )
        })
        .collect()
}

fn expect_options(command: &Value, expected: &[OptionSpec]) {
    let expected: Vec<(String, u64, bool, bool)> = expected
        .iter()
        .map(|(n, t, r, a)| ((*n).to_string(), *t, *r, *a))
        .collect();
    assert_eq!(
        options_of(command),
        expected,
        "options of {}",
        command["name"]
    );
}

fn descriptions_fit(value: &Value, path: &str) {
    let description = value["description"].as_str().unwrap_or_default();
    assert!(
        !description.is_empty() && description.chars().count() <= 100,
        "{path}: description {description:?}"
    );
    for option in value["options"].as_array().into_iter().flatten() {
        descriptions_fit(option, &format!("{path} {}", option["name"]));
    }
}

#[tokio::test]
async fn every_command_is_registered_with_its_options_and_permissions() {
    let bot = Bot::start().await;
    let commands = bot.discord.registered_commands();
    let find = |name: &str| {
        commands
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("/{name} is not registered: {commands:#?}"))
            .clone()
    };
    let mut names: Vec<&str> = commands
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "Delete answer",
            "Personality info",
            "Regenerate",
            "activate",
            "autorespond",
            "deactivate",
            "help",
            "personality",
            "reset",
            "settings"
        ]
    );
    for c in &commands {
        if c["type"] == 3 {
            // Message actions (the Apps menu) have no description and no options.
            assert!(c.get("description").is_none_or(|d| d == ""), "{c}");
            assert!(
                c.get("options")
                    .is_none_or(|o| o.as_array().is_none_or(Vec::is_empty)),
                "{c}"
            );
        } else {
            descriptions_fit(c, c["name"].as_str().unwrap());
        }
    }

    let personality = find("personality");
    assert_eq!(
        personality["default_member_permissions"], "2048",
        "SEND_MESSAGES"
    );
    let subcommands: Vec<&str> = personality["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["type"], 1, "{} is a subcommand", s["name"]);
            s["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        subcommands,
        [
            "create", "update", "prompt", "alias", "unalias", "remove", "restore", "list", "info",
            "history", "revert", "global", "export", "import"
        ]
    );
    let sub = |name: &str| {
        personality["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    // Discord's option types: 3 string, 5 boolean, 11 attachment.
    let (string, boolean, attachment) = (3, 5, 11);
    expect_options(
        &sub("export"),
        &[
            ("personality", string, true, true),
            ("as_card", boolean, false, false),
        ],
    );
    expect_options(&sub("import"), &[("file", attachment, true, false)]);
    expect_options(
        &sub("create"),
        &[
            ("name", string, true, false),
            ("display_name", string, false, false),
            ("prompt", string, false, false),
            ("model", string, false, false),
            ("avatar_url", string, false, false),
            ("alias", string, false, false),
            ("global", boolean, false, false),
        ],
    );
    expect_options(
        &sub("update"),
        &[
            ("personality", string, true, true),
            ("display_name", string, false, false),
            ("prompt", string, false, false),
            ("model", string, false, false),
            ("avatar_url", string, false, false),
            ("nsfw", boolean, false, false),
            ("temperature", string, false, false),
            ("max_tokens", string, false, false),
        ],
    );
    expect_options(&sub("prompt"), &[("personality", string, true, true)]);
    expect_options(
        &sub("alias"),
        &[
            ("personality", string, true, true),
            ("alias", string, true, false),
        ],
    );
    expect_options(
        &sub("unalias"),
        &[
            ("personality", string, true, true),
            ("alias", string, true, true),
        ],
    );
    expect_options(&sub("remove"), &[("personality", string, true, true)]);
    expect_options(
        &sub("list"),
        &[
            ("mine", boolean, false, false),
            ("public", boolean, false, false),
        ],
    );
    expect_options(
        &sub("info"),
        &[
            ("personality", string, true, true),
            ("public", boolean, false, false),
        ],
    );
    expect_options(&sub("global"), &[("personality", string, true, true)]);
    expect_options(
        &sub("history"),
        &[
            ("personality", string, true, true),
            ("page", 4, false, false),
        ],
    );
    expect_options(
        &sub("revert"),
        &[
            ("personality", string, true, true),
            ("revision", 4, true, false),
        ],
    );
    expect_options(&sub("restore"), &[("name", string, true, false)]);
    // Guild-only: in DMs Discord checks no server permissions.
    assert_eq!(
        personality["contexts"],
        json!([0]),
        "guild only: {personality}"
    );
    let create = sub("create");
    let max_length = |option: &str| {
        create["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == option)
            .unwrap()["max_length"]
            .clone()
    };
    assert_eq!(max_length("name"), 64);
    assert_eq!(max_length("prompt"), 6000);
    let update = sub("update");
    let model = update["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "model")
        .unwrap();
    assert!(
        model["description"]
            .as_str()
            .unwrap()
            .contains("\"default\""),
        "{model}"
    );
    let avatar = update["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "avatar_url")
        .unwrap();
    assert!(
        avatar["description"].as_str().unwrap().contains("\"none\""),
        "{avatar}"
    );

    for name in ["activate", "deactivate"] {
        let c = find(name);
        assert_eq!(
            c["default_member_permissions"], "8192",
            "/{name} needs MANAGE_MESSAGES"
        );
        assert_eq!(c["contexts"], json!([0]), "/{name} is for servers only");
    }
    expect_options(&find("activate"), &[("personality", string, true, true)]);
    expect_options(&find("deactivate"), &[]);

    let settings = find("settings");
    assert_eq!(
        settings["default_member_permissions"], "32",
        "/settings is shown to MANAGE_GUILD"
    );
    assert_eq!(
        settings["contexts"],
        json!([0]),
        "/settings is for servers only"
    );
    let setting = |name: &str| {
        settings["options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("/settings {name}: {settings}"))
            .clone()
    };
    // Discord's option types: 4 integer, 7 channel.
    let (integer, channel) = (4, 7);
    expect_options(&setting("show"), &[]);
    expect_options(&setting("channels"), &[("answer_in", integer, true, false)]);
    assert_eq!(
        setting("channels")["options"][0]["choices"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    expect_options(
        &setting("list-channel"),
        &[("channel", channel, true, false)],
    );
    expect_options(
        &setting("unlist-channel"),
        &[("channel", channel, true, false)],
    );
    expect_options(&setting("globals"), &[("enabled", boolean, true, false)]);
    let limit = setting("member-limit");
    expect_options(&limit, &[("limit", integer, true, false)]);
    assert_eq!(
        (
            limit["options"][0]["min_value"].as_f64(),
            limit["options"][0]["max_value"].as_f64()
        ),
        (Some(1.0), Some(1000.0))
    );
    expect_options(
        &setting("member-create"),
        &[("allowed", boolean, true, false)],
    );
    expect_options(&find("autorespond"), &[("enabled", boolean, true, false)]);
    expect_options(&find("reset"), &[]);
    for name in ["autorespond", "reset", "help"] {
        assert!(
            find(name)["default_member_permissions"].is_null(),
            "/{name} is for everyone"
        );
    }
    bot.assert_valid_requests();
}

// ---- create ----

#[tokio::test]
async fn create_stores_the_personality_and_says_how_to_talk_to_it() {
    let bot = Bot::start().await;
    let (id, response) = run(
        &bot,
        personality(
            ALICE,
            "create",
            vec![
                text_option("name", "Aria"),
                text_option("display_name", "Aria the Bard"),
                text_option("prompt", "You are Aria.\nYou sing."),
                text_option("model", "llama3.1:8b"),
                text_option("avatar_url", "https://cdn.example.com/aria.png"),
                text_option("alias", "Bard"),
            ],
        ),
    )
    .await;
    assert_private(
        &response,
        "Created **Aria** — talk to it with @aria or @bard.",
    );
    assert_eq!(
        stored(&bot, "Aria").expect("stored"),
        Stored {
            owner_id: ALICE.into(),
            display_name: "Aria the Bard".into(),
            avatar_url: Some("https://cdn.example.com/aria.png".into()),
            prompt: "You are Aria.\nYou sing.".into(),
            model: Some("llama3.1:8b".into()),
        }
    );
    assert_eq!(stored_aliases(&bot, "Aria"), ["bard"]);
    let correlation: String = bot
        .db()
        .query_row(
            "SELECT correlation_id FROM events WHERE event_type = 'PersonalityCreated'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(correlation, id, "the interaction id correlates the event");
    bot.assert_valid_requests();
}

#[tokio::test]
async fn create_refuses_invalid_values_and_taken_names_with_the_field_and_the_rule() {
    let bot = bot_with(vec![create_step("Aria", &["--alias", "bard"])]).await;
    let long = "x".repeat(81);
    let cases = [
        (
            vec![
                text_option("name", "Nova"),
                text_option("display_name", &long),
            ],
            "display_name: must be at most 80 characters (got 81).",
        ),
        (
            vec![
                text_option("name", "Nova"),
                text_option("display_name", "Discord Bot"),
            ],
            "display_name: Discord does not allow \"discord\" in a webhook name.",
        ),
        (
            vec![text_option("name", "a.b")],
            "name: may only contain letters, digits, spaces, '-' and '_' (found '.').",
        ),
        (
            vec![
                text_option("name", "Nova"),
                text_option("avatar_url", "ftp://example.com/a.png"),
            ],
            "avatar_url: must start with http:// or https:// (not ftp:).",
        ),
    ];
    for (options, expected) in cases {
        let response = answer(&bot, personality(ALICE, "create", options)).await;
        assert_private(&response, expected);
    }
    let taken = [
        (
            vec![text_option("name", "ARIA")],
            "name: \"ARIA\" is already taken by ",
        ),
        (
            vec![text_option("name", "Nova"), text_option("alias", "bard")],
            "alias: \"bard\" is already taken by ",
        ),
    ];
    for (options, start) in taken {
        let response = answer(&bot, personality(ALICE, "create", options)).await;
        assert_private_starting(&response, start);
    }
    assert_eq!(
        count(&bot, "SELECT COUNT(*) FROM personalities"),
        1,
        "nothing was created"
    );
    bot.assert_valid_requests();
}

// ---- update ----

#[tokio::test]
async fn update_changes_the_given_fields_and_the_words_default_and_none_clear_them() {
    let bot = bot_with(vec![create_step(
        "Aria",
        &[
            "--model",
            "gpt-4o",
            "--avatar-url",
            "https://cdn.example.com/a.png",
            "--prompt",
            "Old.",
        ],
    )])
    .await;
    let response = answer(
        &bot,
        personality(
            ALICE,
            "update",
            vec![
                text_option("personality", "aria"),
                text_option("display_name", "Aria the Bard"),
                text_option("model", "Default"),
                text_option("avatar_url", "none"),
            ],
        ),
    )
    .await;
    assert_private(
        &response,
        "Updated **Aria**: display name **Aria the Bard**, model back to the default, avatar removed.",
    );
    let aria = stored(&bot, "Aria").unwrap();
    assert_eq!(aria.display_name, "Aria the Bard");
    assert_eq!((aria.model, aria.avatar_url), (None, None));
    assert_eq!(aria.prompt, "Old.", "fields not given stay");

    let response = answer(
        &bot,
        personality(
            ALICE,
            "update",
            vec![
                text_option("personality", "Aria"),
                text_option("model", "llama3.1:8b"),
            ],
        ),
    )
    .await;
    assert_private(&response, "Updated **Aria**: model `llama3.1:8b`.");
    assert_eq!(
        stored(&bot, "Aria").unwrap().model.as_deref(),
        Some("llama3.1:8b")
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn update_refuses_an_empty_update_an_unknown_personality_and_a_bad_value() {
    let bot = bot_with(vec![create_step("Aria", &[])]).await;
    let before = count(&bot, "SELECT COUNT(*) FROM events");
    let empty = answer(
        &bot,
        personality(ALICE, "update", vec![text_option("personality", "Aria")]),
    )
    .await;
    assert_private(
        &empty,
        "Nothing to update: give at least one of display_name, prompt, model, avatar_url, nsfw, temperature or max_tokens.",
    );
    let unknown = answer(
        &bot,
        personality(
            ALICE,
            "update",
            vec![
                text_option("personality", "Nobody"),
                text_option("model", "x"),
            ],
        ),
    )
    .await;
    assert_private(&unknown, "No personality is called \"Nobody\".");
    let bad = answer(
        &bot,
        personality(
            ALICE,
            "update",
            vec![
                text_option("personality", "Aria"),
                text_option("model", "gpt 4"),
            ],
        ),
    )
    .await;
    assert_private(
        &bad,
        "model: may only contain A-Z, a-z, 0-9 and . _ : / - (found ' ').",
    );
    let same = answer(
        &bot,
        personality(
            ALICE,
            "update",
            vec![
                text_option("personality", "Aria"),
                text_option("display_name", "Aria"),
            ],
        ),
    )
    .await;
    assert_private(
        &same,
        "Nothing to update: it already has every value given.",
    );
    assert_eq!(
        count(&bot, "SELECT COUNT(*) FROM events"),
        before,
        "nothing changed"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn only_the_owner_or_a_bot_admin_may_change_a_personality() {
    let bot = bot_with(vec![create_step("Aria", &[])]).await;
    let refused = answer(
        &bot,
        personality(
            BOB,
            "update",
            vec![
                text_option("personality", "Aria"),
                text_option("display_name", "Mine"),
            ],
        ),
    )
    .await;
    assert_private(
        &refused,
        "Only the owner of \"Aria\", the managers of its server or a bot admin can change it.",
    );
    let refused = answer(
        &bot,
        personality(
            BOB,
            "alias",
            vec![
                text_option("personality", "Aria"),
                text_option("alias", "mine"),
            ],
        ),
    )
    .await;
    assert_private(
        &refused,
        "Only the owner of \"Aria\", the managers of its server or a bot admin can change it.",
    );
    assert_eq!(stored(&bot, "Aria").unwrap().display_name, "Aria");
    assert!(stored_aliases(&bot, "Aria").is_empty());

    let admin = answer(
        &bot,
        personality(
            ADMIN,
            "update",
            vec![
                text_option("personality", "Aria"),
                text_option("display_name", "Moderated"),
            ],
        ),
    )
    .await;
    assert_private(&admin, "Updated **Aria**: display name **Moderated**.");
    assert_eq!(stored(&bot, "Aria").unwrap().display_name, "Moderated");
    bot.assert_valid_requests();
}

// ---- aliases ----

#[tokio::test]
async fn aliases_are_added_and_removed_and_their_rules_are_explained() {
    let bot = bot_with(vec![create_step("Aria", &[]), owned_by(BOB, "Nova")]).await;
    let added = answer(
        &bot,
        personality(
            ALICE,
            "alias",
            vec![
                text_option("personality", "aria"),
                text_option("alias", "The  Bard"),
            ],
        ),
    )
    .await;
    assert_private(&added, "**Aria** now also answers to @the bard.");
    assert_eq!(stored_aliases(&bot, "Aria"), ["the bard"]);

    let taken = answer(
        &bot,
        personality(
            ALICE,
            "alias",
            vec![
                text_option("personality", "Aria"),
                text_option("alias", "nova"),
            ],
        ),
    )
    .await;
    assert_private_starting(&taken, "alias: \"nova\" is already taken by ");
    let twice = answer(
        &bot,
        personality(
            ALICE,
            "alias",
            vec![
                text_option("personality", "Aria"),
                text_option("alias", "the bard"),
            ],
        ),
    )
    .await;
    assert_private(
        &twice,
        "alias: \"the bard\" is already an alias of this personality.",
    );

    let removed = answer(
        &bot,
        personality(
            ALICE,
            "unalias",
            vec![
                text_option("personality", "@the bard"),
                text_option("alias", "THE BARD"),
            ],
        ),
    )
    .await;
    assert_private(&removed, "**Aria** no longer answers to @the bard.");
    assert!(stored_aliases(&bot, "Aria").is_empty());
    let absent = answer(
        &bot,
        personality(
            ALICE,
            "unalias",
            vec![
                text_option("personality", "Aria"),
                text_option("alias", "bard"),
            ],
        ),
    )
    .await;
    assert_private(
        &absent,
        "alias: \"bard\" is not an alias of this personality.",
    );
    bot.assert_valid_requests();
}

// ---- autocomplete ----

#[tokio::test]
async fn autocomplete_suggests_matching_names_and_aliases_and_only_changeable_ones_for_changes() {
    let bot = bot_with(vec![
        create_step("Aria", &["--alias", "singer"]),
        create_step("Maria", &[]),
        create_step("Zed", &["--alias", "arrow"]),
        owned_by(BOB, "Ariel"),
        owned_by(BOB, "Nova"),
    ])
    .await;
    let info = personality(ALICE, "info", vec![focused("personality", "AR")]);
    assert_eq!(
        suggestions(&bot, info).await,
        ["Aria", "Ariel", "Zed", "Maria"],
        "names, then aliases, then substrings"
    );
    let by_alias = personality(ALICE, "info", vec![focused("personality", "@sing")]);
    assert_eq!(suggestions(&bot, by_alias).await, ["Aria"]);

    let update = personality(ALICE, "update", vec![focused("personality", "ar")]);
    assert_eq!(
        suggestions(&bot, update).await,
        ["Aria", "Zed", "Maria"],
        "only alice's own"
    );
    let remove = personality(BOB, "remove", vec![focused("personality", "")]);
    assert_eq!(
        suggestions(&bot, remove).await,
        ["Ariel", "Nova"],
        "only bob's own"
    );
    let admin = personality(ADMIN, "prompt", vec![focused("personality", "")]);
    assert_eq!(
        suggestions(&bot, admin).await,
        ["Aria", "Ariel", "Maria", "Nova", "Zed"],
        "a bot admin may change all"
    );
    let activate = command(BOB, "activate", vec![focused("personality", "a")]);
    assert_eq!(
        suggestions(&bot, activate).await,
        ["Aria", "Ariel", "Zed", "Maria", "Nova"],
        "anyone may activate any"
    );

    let unalias = personality(
        ALICE,
        "unalias",
        vec![text_option("personality", "Aria"), focused("alias", "s")],
    );
    assert_eq!(suggestions(&bot, unalias).await, ["singer"]);
    let zed = personality(
        ALICE,
        "unalias",
        vec![text_option("personality", "Zed"), focused("alias", "")],
    );
    assert_eq!(suggestions(&bot, zed).await, ["arrow"]);
    let bobs = personality(
        ALICE,
        "unalias",
        vec![text_option("personality", "Ariel"), focused("alias", "")],
    );
    assert!(
        suggestions(&bot, bobs).await.is_empty(),
        "not alice's to change"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn autocomplete_answers_at_most_25_choices() {
    let steps = (0..30)
        .map(|i| create_step(&format!("p{i:02}"), &[]))
        .collect();
    let bot = bot_with(steps).await;
    let all = suggestions(
        &bot,
        personality(ALICE, "info", vec![focused("personality", "p")]),
    )
    .await;
    assert_eq!(all.len(), 25);
    assert_eq!(all[0], "p00");
    bot.assert_valid_requests();
}

// ---- remove ----

/// Runs `/personality remove` for alice and returns the interaction id, the answer and the
/// custom ids of its buttons.
async fn ask_to_remove(bot: &Bot, name: &str) -> (String, Value, Vec<String>) {
    let (id, response) = run(
        bot,
        personality(ALICE, "remove", vec![text_option("personality", name)]),
    )
    .await;
    let buttons = button_ids(&response["data"]);
    (id, response, buttons)
}

#[tokio::test]
async fn remove_asks_first_and_removes_on_confirm() {
    let bot = bot_with(vec![create_step("Aria", &["--alias", "bard"])]).await;
    let (id, question, buttons) = ask_to_remove(&bot, "aria").await;
    assert_eq!(question["type"], 4);
    assert!(is_ephemeral(&question));
    assert!(
        content(&question).starts_with("Remove **Aria**? Its name and aliases become free"),
        "{question}"
    );
    assert_eq!(buttons.len(), 2, "{question}");
    assert!(
        buttons.iter().all(|b| b.contains(&id)),
        "custom ids are unique per invocation: {buttons:?}"
    );
    assert!(
        stored(&bot, "Aria").is_some(),
        "nothing is removed before the answer"
    );

    let message = original_message_id(&bot, &id);
    let done = click(&bot, ALICE, &buttons[0], &message).await;
    assert_eq!(done["type"], 7, "the question is replaced: {done}");
    assert_eq!(
        content(&done),
        "Removed **Aria**. /personality restore brings it back within 30 days."
    );
    assert_eq!(
        done["data"]["components"],
        json!([]),
        "the buttons are gone"
    );
    assert!(stored(&bot, "Aria").is_none());
    assert_eq!(
        count(&bot, "SELECT COUNT(*) FROM personality_keys"),
        0,
        "name and alias are free"
    );
    let correlation: String = bot
        .db()
        .query_row(
            "SELECT correlation_id FROM events WHERE event_type = 'PersonalityRemoved'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(correlation, id);
    bot.assert_valid_requests();
}

/// The JSON log lines whose message is `message`.
fn log_lines(logs: &str, message: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == message)
        .collect()
}

#[tokio::test]
async fn one_correlation_id_follows_a_command_from_the_interaction_to_every_handler() {
    let bot = Bot::start_with(BotOptions {
        env: vec![("LOG_FORMAT".into(), "json".into())],
        ..Default::default()
    })
    .await;
    let (id, _) = run(
        &bot,
        personality(ALICE, "create", vec![text_option("name", "Aria")]),
    )
    .await;
    let logs = bot.logs();
    let actor = format!("user:{ALICE}");
    // The service's own line, then each handler's: the profile cache and the audit trail.
    for message in ["committed", "profile cache refreshed", "domain event"] {
        let lines = log_lines(&logs, message);
        assert_eq!(lines.len(), 1, "one {message:?} line:\n{logs}");
        let spans = lines[0]["spans"].as_array().expect("the spans of the line");
        let command = spans
            .iter()
            .find(|s| s["name"] == "command")
            .unwrap_or_else(|| panic!("{message:?} runs in the command's span: {}", lines[0]));
        assert_eq!(command["correlation_id"], id.as_str(), "{}", lines[0]);
        assert_eq!(command["actor"], actor.as_str(), "{}", lines[0]);
        assert_eq!(command["operation"], "register", "{}", lines[0]);
        if message != "committed" {
            let handler = &lines[0]["span"];
            assert_eq!(handler["name"], "handler", "{}", lines[0]);
            assert_eq!(handler["correlation_id"], id.as_str(), "{}", lines[0]);
            assert_eq!(handler["actor"], actor.as_str(), "{}", lines[0]);
        }
    }
    assert_eq!(
        log_lines(&logs, "domain event")[0]["span"]["handler"],
        "audit"
    );
}

#[tokio::test]
async fn a_cancelled_remove_keeps_the_personality() {
    let bot = bot_with(vec![create_step("Aria", &[])]).await;
    let (id, _, buttons) = ask_to_remove(&bot, "Aria").await;
    let message = original_message_id(&bot, &id);
    let cancelled = click(&bot, ALICE, &buttons[1], &message).await;
    assert_eq!(cancelled["type"], 7);
    assert_eq!(content(&cancelled), "Cancelled: **Aria** was not removed.");
    assert_eq!(cancelled["data"]["components"], json!([]));
    assert!(stored(&bot, "Aria").is_some());
    bot.assert_valid_requests();
}

#[tokio::test]
async fn remove_by_someone_else_is_refused_before_asking_and_admins_may_remove_any() {
    let bot = bot_with(vec![create_step("Aria", &[])]).await;
    let refused = answer(
        &bot,
        personality(BOB, "remove", vec![text_option("personality", "Aria")]),
    )
    .await;
    assert_private(
        &refused,
        "Only the owner of \"Aria\", the managers of its server or a bot admin can change it.",
    );
    assert!(
        button_ids(&refused["data"]).is_empty(),
        "no question: {refused}"
    );
    let unknown = answer(
        &bot,
        personality(ALICE, "remove", vec![text_option("personality", "Nobody")]),
    )
    .await;
    assert_private(&unknown, "No personality is called \"Nobody\".");

    let (id, question) = run(
        &bot,
        personality(ADMIN, "remove", vec![text_option("personality", "Aria")]),
    )
    .await;
    let buttons = button_ids(&question["data"]);
    let done = click(&bot, ADMIN, &buttons[0], &original_message_id(&bot, &id)).await;
    assert_eq!(
        content(&done),
        "Removed **Aria**. /personality restore brings it back within 30 days."
    );
    assert!(stored(&bot, "Aria").is_none());
    bot.assert_valid_requests();
}

// ---- list and info ----

#[tokio::test]
async fn a_long_list_is_paged_with_buttons_for_the_invoking_user() {
    let mut steps: Vec<_> = (1..=12)
        .map(|i| create_step(&format!("p{i:02}"), &[]))
        .collect();
    steps.push(owned_by(BOB, "Zed"));
    let bot = bot_with(steps).await;

    let (id, first) = run(
        &bot,
        personality(ALICE, "list", vec![bool_option("public", true)]),
    )
    .await;
    assert_eq!(first["type"], 4);
    assert!(!is_ephemeral(&first), "public:true shares the list");
    let embed = &first["data"]["embeds"][0];
    assert_eq!(embed["title"], "Personalities");
    let lines: Vec<&str> = embed["description"].as_str().unwrap().lines().collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[0], "**p01** — <@7001>");
    assert_eq!(embed["footer"]["text"], "Page 1 of 2 · 13 personalities");
    let buttons = button_ids(&first["data"]);
    assert_eq!(buttons.len(), 2);
    assert!(buttons.iter().all(|b| b.contains(&id)), "{buttons:?}");
    let row = &first["data"]["components"][0]["components"];
    assert_eq!(row[0]["disabled"], true, "no previous page: {row}");

    let message = original_message_id(&bot, &id);
    let second = click(&bot, ALICE, &buttons[1], &message).await;
    assert_eq!(second["type"], 7, "{second}");
    let embed = &second["data"]["embeds"][0];
    assert_eq!(embed["footer"]["text"], "Page 2 of 2 · 13 personalities");
    let lines: Vec<&str> = embed["description"].as_str().unwrap().lines().collect();
    assert_eq!(lines, ["**p11** — <@7001>", "**p12** — <@7001>", "**Zed**"]);
    assert_eq!(
        second["data"]["components"][0]["components"][1]["disabled"], true,
        "no next page"
    );

    let others = click(&bot, BOB, &buttons[0], &message).await;
    assert_eq!(others["type"], 4);
    assert!(is_ephemeral(&others));
    assert!(
        content(&others).starts_with("Only <@7001> can turn these pages"),
        "{others}"
    );

    let back = click(&bot, ALICE, &buttons[0], &message).await;
    assert_eq!(
        back["data"]["embeds"][0]["footer"]["text"],
        "Page 1 of 2 · 13 personalities"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn list_mine_shows_only_the_users_personalities() {
    let bot = bot_with(vec![
        create_step("Aria", &["--alias", "bard"]),
        owned_by(BOB, "Zed"),
    ])
    .await;
    let mine = answer(
        &bot,
        personality(BOB, "list", vec![bool_option("mine", true)]),
    )
    .await;
    let embed = &mine["data"]["embeds"][0];
    assert_eq!(embed["title"], "Your personalities");
    assert_eq!(embed["description"], "**Zed** — <@7002>");
    assert_eq!(embed["footer"]["text"], "Page 1 of 1 · 1 personality");
    assert!(
        button_ids(&mine["data"]).is_empty(),
        "one page needs no buttons"
    );

    let all = answer(&bot, personality(BOB, "list", vec![])).await;
    assert!(is_ephemeral(&all), "a list is private unless shared");
    assert_eq!(
        all["data"]["embeds"][0]["description"], "**Aria** — @bard\n**Zed** — <@7002>",
        "the owner shows only to those who manage the personality"
    );
    let none = answer(
        &bot,
        personality("7003", "list", vec![bool_option("mine", true)]),
    )
    .await;
    assert_private(
        &none,
        "You have no personalities yet: create one with /personality create.",
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn info_shows_an_embed_with_avatar_aliases_owner_model_and_the_start_of_the_prompt() {
    let prompt = format!("You are Aria. {}", "La la la. ".repeat(60));
    let bot = bot_with(vec![create_step(
        "Aria",
        &[
            "--display-name",
            "Aria the Bard",
            "--prompt",
            &prompt,
            "--avatar-url",
            "https://cdn.example.com/aria.png",
            "--alias",
            "bard",
            "--alias",
            "singer",
        ],
    )])
    .await;
    let response = answer(
        &bot,
        personality(ALICE, "info", vec![text_option("personality", "@Bard")]),
    )
    .await;
    assert_eq!(response["type"], 4);
    assert!(is_ephemeral(&response), "info is private unless shared");
    let data = &response["data"];
    assert_eq!(
        data["allowed_mentions"]["parse"],
        json!([]),
        "nobody is pinged"
    );
    let embed = &data["embeds"][0];
    assert_eq!(embed["title"], "Aria the Bard");
    assert_eq!(
        embed["thumbnail"]["url"],
        "https://cdn.example.com/aria.png"
    );
    let description = embed["description"].as_str().unwrap();
    assert!(
        description.starts_with("You are Aria. La la la."),
        "{description}"
    );
    assert_eq!(
        description.chars().count(),
        301,
        "300 characters and an ellipsis"
    );
    let field = |name: &str| {
        embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(field("Name"), "Aria");
    assert_eq!(field("Aliases"), "@bard, @singer");
    assert_eq!(field("Owner"), "<@7001>");
    assert_eq!(field("Model"), "default");

    // A member who doesn't manage it sees what its messages show anyway, and may share it.
    let shared = answer(
        &bot,
        personality(
            BOB,
            "info",
            vec![
                text_option("personality", "aria"),
                bool_option("public", true),
            ],
        ),
    )
    .await;
    assert!(!is_ephemeral(&shared));
    let text = shared["data"]["embeds"][0].to_string();
    assert!(
        !text.contains("La la la") && !text.contains("7001"),
        "{text}"
    );
    assert_eq!(shared["data"]["allowed_mentions"]["parse"], json!([]));

    let unknown = answer(
        &bot,
        personality(BOB, "info", vec![text_option("personality", "Nobody")]),
    )
    .await;
    assert_private(&unknown, "No personality is called \"Nobody\".");
    bot.assert_valid_requests();
}

// ---- the prompt modal ----

fn modal_inputs(first: &str, second: &str) -> Vec<Value> {
    vec![
        json!({"type": 1, "components": [{"type": 4, "custom_id": "prompt", "value": first}]}),
        json!({"type": 1, "components": [{"type": 4, "custom_id": "prompt_continued", "value": second}]}),
    ]
}

#[tokio::test]
async fn the_prompt_modal_shows_a_long_prompt_in_two_parts_and_saves_the_submission() {
    let long = format!("{}{}", "a".repeat(4000), "b".repeat(500));
    let bot = bot_with(vec![create_step("Aria", &["--prompt", &long])]).await;
    let (id, modal) = run(
        &bot,
        personality(ALICE, "prompt", vec![text_option("personality", "aria")]),
    )
    .await;
    assert_eq!(modal["type"], 9, "a modal: {}", content(&modal));
    let custom_id = modal["data"]["custom_id"].as_str().unwrap().to_owned();
    assert!(
        custom_id.contains(&id),
        "unique per invocation: {custom_id}"
    );
    let rows = modal["data"]["components"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let first = &rows[0]["components"][0];
    let second = &rows[1]["components"][0];
    assert_eq!(
        (first["label"].as_str(), first["max_length"].as_u64()),
        (Some("Prompt"), Some(4000))
    );
    assert_eq!(
        (second["label"].as_str(), second["max_length"].as_u64()),
        (Some("Prompt (continued)"), Some(2000))
    );
    assert_eq!(first["style"], 2, "paragraph");
    assert_eq!(first["value"].as_str().unwrap(), "a".repeat(4000));
    assert_eq!(second["value"].as_str().unwrap(), "b".repeat(500));

    let new_prompt = "You are Aria.\n\nYou answer in rhyme.\n";
    let submission = bot
        .discord
        .modal_submit(ModalSpec {
            custom_id,
            components: modal_inputs(new_prompt, "And you love the sea."),
            ..Default::default()
        })
        .await;
    let saved = bot
        .discord
        .wait_interaction_response(&submission, WAIT)
        .await
        .unwrap();
    let expected = format!("{new_prompt}And you love the sea.");
    assert_private(
        &saved,
        &format!(
            "Updated **Aria**: prompt of {} characters.",
            expected.chars().count()
        ),
    );
    assert_eq!(stored(&bot, "Aria").unwrap().prompt, expected);
    bot.assert_valid_requests();
}

#[tokio::test]
async fn the_prompt_modal_is_refused_to_others_and_reports_invalid_prompts() {
    let bot = bot_with(vec![create_step("Aria", &["--prompt", "Old."])]).await;
    let refused = answer(
        &bot,
        personality(BOB, "prompt", vec![text_option("personality", "Aria")]),
    )
    .await;
    assert_private(
        &refused,
        "Only the owner of \"Aria\", the managers of its server or a bot admin can change it.",
    );

    let (_, modal) = run(
        &bot,
        personality(ALICE, "prompt", vec![text_option("personality", "Aria")]),
    )
    .await;
    let rows = modal["data"]["components"].as_array().unwrap();
    assert_eq!(rows[0]["components"][0]["value"], "Old.");
    assert!(
        rows[1]["components"][0].get("value").is_none(),
        "nothing to continue: {}",
        rows[1]
    );
    let submission = bot
        .discord
        .modal_submit(ModalSpec {
            custom_id: modal["data"]["custom_id"].as_str().unwrap().to_owned(),
            components: modal_inputs("Hidden \u{202E} text", ""),
            ..Default::default()
        })
        .await;
    let refused = bot
        .discord
        .wait_interaction_response(&submission, WAIT)
        .await
        .unwrap();
    assert_private(
        &refused,
        "prompt: must not contain control or text-direction characters (line breaks and tabs are fine).",
    );
    assert_eq!(stored(&bot, "Aria").unwrap().prompt, "Old.");
    bot.assert_valid_requests();
}

// ---- activation ----

#[tokio::test]
async fn activate_needs_manage_messages_and_deactivate_stops_it() {
    let bot = bot_with(vec![create_step("Aria", &[])]).await;
    let activations = |bot: &Bot| {
        count(
            bot,
            "SELECT COUNT(*) FROM channel_activations WHERE channel_id = '6001'",
        )
    };

    let mut plain = command(BOB, "activate", vec![text_option("personality", "Aria")]);
    plain.permissions = PLAIN_MEMBER.to_owned();
    let refused = answer(&bot, plain).await;
    assert_private(
        &refused,
        "You need the Manage Messages permission to use this command.",
    );
    assert_eq!(activations(&bot), 0);

    let activated = answer(
        &bot,
        command(ALICE, "activate", vec![text_option("personality", "aria")]),
    )
    .await;
    assert_eq!(activated["type"], 4);
    assert!(
        !is_ephemeral(&activated),
        "the channel sees who answers now"
    );
    assert_eq!(
        content(&activated),
        "**Aria** now answers every message in this channel. Stop it with /deactivate."
    );
    assert_eq!(activations(&bot), 1);
    let by: String = bot
        .db()
        .query_row("SELECT activated_by FROM channel_activations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(by, ALICE);

    let mut plain = command(BOB, "deactivate", vec![]);
    plain.permissions = PLAIN_MEMBER.to_owned();
    assert_private(
        &answer(&bot, plain).await,
        "You need the Manage Messages permission to use this command.",
    );
    assert_eq!(activations(&bot), 1);

    let stopped = answer(&bot, command(ALICE, "deactivate", vec![])).await;
    assert_eq!(
        content(&stopped),
        "**Aria** no longer answers every message in this channel."
    );
    assert_eq!(activations(&bot), 0);
    let again = answer(&bot, command(ALICE, "deactivate", vec![])).await;
    assert_private(&again, "No personality is active in this channel.");
    let unknown = answer(
        &bot,
        command(
            ALICE,
            "activate",
            vec![text_option("personality", "Nobody")],
        ),
    )
    .await;
    assert_private(&unknown, "No personality is called \"Nobody\".");
    bot.assert_valid_requests();
}

#[tokio::test]
async fn activate_is_refused_in_direct_messages() {
    let bot = bot_with(vec![create_step("Aria", &[])]).await;
    let mut dm = command(ALICE, "activate", vec![text_option("personality", "Aria")]);
    dm.guild_id = None;
    dm.channel_id = "6500".to_owned();
    let refused = answer(&bot, dm).await;
    assert_private(&refused, "This command only works in a server channel.");
    assert_eq!(count(&bot, "SELECT COUNT(*) FROM channel_activations"), 0);
    bot.assert_valid_requests();
}

// ---- conversations ----

#[tokio::test]
async fn autorespond_turns_auto_response_on_and_off() {
    let bot = Bot::start().await;
    let users = |bot: &Bot| {
        count(
            bot,
            "SELECT COUNT(*) FROM auto_response_users WHERE user_id = '7001'",
        )
    };
    let on = answer(
        &bot,
        command(ALICE, "autorespond", vec![bool_option("enabled", true)]),
    )
    .await;
    assert_eq!(on["type"], 4);
    assert!(is_ephemeral(&on));
    assert!(content(&on).starts_with("Auto-response is on"), "{on}");
    assert_eq!(users(&bot), 1);
    let off = answer(
        &bot,
        command(ALICE, "autorespond", vec![bool_option("enabled", false)]),
    )
    .await;
    assert!(content(&off).starts_with("Auto-response is off"), "{off}");
    assert_eq!(users(&bot), 0);
    bot.assert_valid_requests();
}

#[tokio::test]
async fn reset_ends_the_users_conversation_in_the_channel() {
    let bot = bot_with(vec![create_step("Aria", &[])]).await;
    let nothing = answer(&bot, command(ALICE, "reset", vec![])).await;
    assert_private(
        &nothing,
        "You had no conversation in this channel, so there was nothing to end.",
    );

    bot.llm.reply_with("Hello!");
    bot.discord
        .send_message(MessageSpec::new("6001", ALICE, "alice", "@aria hi"))
        .await;
    bot.wait_webhook_executions(1).await;
    let conversations = |bot: &Bot| {
        count(
            bot,
            "SELECT COUNT(*) FROM active_conversations WHERE user_id = '7001'",
        )
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while conversations(&bot) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the conversation was never recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let ended = answer(&bot, command(ALICE, "reset", vec![])).await;
    assert_private(
        &ended,
        "Your conversation in this channel has ended: the next message starts afresh.",
    );
    assert_eq!(conversations(&bot), 0);
    bot.assert_valid_requests();
}

// ---- time-outs (slow: run with `cargo test --test end_to_end commands:: -- --ignored`) ----

#[tokio::test]
#[ignore = "waits for the 60 s time-out of the question"]
async fn an_unanswered_remove_question_expires_and_loses_its_buttons() {
    let bot = bot_with(vec![create_step("Aria", &[])]).await;
    let (id, _, _) = ask_to_remove(&bot, "Aria").await;
    let edit = bot
        .discord
        .wait_interaction_edit(&id, std::time::Duration::from_secs(75))
        .await
        .unwrap();
    assert!(
        content(&json!({ "data": edit }))
            .starts_with("No answer in time: **Aria** was not removed."),
        "{edit}"
    );
    assert_eq!(edit["components"], json!([]));
    assert!(stored(&bot, "Aria").is_some());
    bot.assert_valid_requests();
}

#[tokio::test]
#[ignore = "waits for the 90 s idle time-out of the pages"]
async fn an_idle_list_loses_its_buttons_but_keeps_its_page() {
    let steps = (1..=11)
        .map(|i| create_step(&format!("p{i:02}"), &[]))
        .collect();
    let bot = bot_with(steps).await;
    let (id, _) = run(&bot, personality(ALICE, "list", vec![])).await;
    let edit = bot
        .discord
        .wait_interaction_edit(&id, std::time::Duration::from_secs(105))
        .await
        .unwrap();
    assert_eq!(edit["components"], json!([]));
    assert_eq!(
        edit["embeds"][0]["footer"]["text"],
        "Page 1 of 2 · 11 personalities"
    );
    bot.assert_valid_requests();
}
