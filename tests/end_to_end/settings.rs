//! Server settings end to end: `/settings` by the server's managers (and nobody else), and
//! what each setting does to the running bot: the channels where personalities answer,
//! global personalities on or off, who may create personalities and how many. A change from
//! the command line reaches the running bot too.

use std::time::Duration;

use personae_fakes::discord::{CommandSpec, MessageSpec};
use personae_testkit::bot::{create_step, Bot, BotOptions, ADMIN, WAIT};
use personae_testkit::users::{
    answer, bool_option, command, personality, text_option, MANAGER_PERMISSIONS,
};
use serde_json::{json, Value};

const HOME: &str = "8001";
const OTHER: &str = "8002";
const OTHER_CHANNEL: &str = "6101";
/// The fake Discord's default channel in the home server.
const GENERAL: &str = "6001";
const QUIET: &str = "6002";
const THREAD: &str = "6003";
const MANAGER: &str = "7002";
const MEMBER: &str = "7003";

/// `/settings SUB options…` by `user`, with Manage Server or not, in the home server.
#[allow(clippy::needless_pass_by_value)] // Called with `vec![…]` literals, like `command`.
fn settings(user: &str, manager: bool, sub: &str, options: Vec<Value>) -> CommandSpec {
    let mut spec = command(
        user,
        "settings",
        vec![json!({"name": sub, "type": 1, "options": options})],
    );
    if manager {
        MANAGER_PERMISSIONS.clone_into(&mut spec.permissions);
    }
    spec
}

fn channel_option(name: &str, id: &str) -> Value {
    json!({"name": name, "type": 7, "value": id})
}

/// The channel rule's choice: 0 every channel, 1 only the listed, 2 all but the listed.
fn answer_in(choice: u8) -> Value {
    json!({"name": "answer_in", "type": 4, "value": choice})
}

fn content(response: &Value) -> &str {
    response["data"]["content"].as_str().unwrap_or_default()
}

fn said(channel: &str, server: &str, text: &str) -> MessageSpec {
    let mut message = MessageSpec::new(channel, MEMBER, "member", text);
    message.guild_id = Some(server.to_owned());
    message
}

/// Sends `text` in `channel` and waits for the answer: one more webhook execution.
async fn answered(bot: &Bot, channel: &str, server: &str, text: &str) {
    let before = bot.discord.webhook_executions().len();
    bot.discord.send_message(said(channel, server, text)).await;
    bot.wait_webhook_executions(before + 1).await;
}

/// Sends `text` in `channel` and checks that no personality answers.
async fn unanswered(bot: &Bot, channel: &str, server: &str, text: &str) {
    let before = bot.discord.webhook_executions().len();
    bot.discord.send_message(said(channel, server, text)).await;
    assert_eq!(
        bot.settle().await.len(),
        before,
        "nobody may answer {text:?} in {channel}"
    );
}

/// The stored events of one type, as `events list --json` prints them.
async fn events_of(bot: &Bot, event_type: &str) -> Vec<Value> {
    let out = bot
        .cli(&["events", "list", "--type", event_type, "--json"])
        .await;
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_server_manager_chooses_the_channels_where_personalities_answer() {
    let bot = Bot::start_with(BotOptions {
        setup: vec![create_step("Aria", &[])],
        ..Default::default()
    })
    .await;
    bot.discord.add_text_channel(QUIET, "quiet");
    bot.discord.add_thread(THREAD, GENERAL);

    let refused = answer(
        &bot,
        settings(MEMBER, false, "channels", vec![answer_in(1)]),
    )
    .await;
    assert!(
        content(&refused).starts_with("Only members with Manage Server"),
        "{refused}"
    );
    assert!(events_of(&bot, "ServerSettingsChanged").await.is_empty());

    let listed = answer(
        &bot,
        settings(
            MANAGER,
            true,
            "list-channel",
            vec![channel_option("channel", GENERAL)],
        ),
    )
    .await;
    assert!(
        content(&listed).contains("every channel (the list, unused"),
        "{listed}"
    );
    let only = answer(
        &bot,
        settings(MANAGER, true, "channels", vec![answer_in(1)]),
    )
    .await;
    assert!(content(&only).contains("only <#6001>"), "{only}");
    assert_eq!(only["data"]["flags"], 64, "settings answer privately");

    unanswered(&bot, QUIET, HOME, "@aria are you there?").await;
    answered(&bot, GENERAL, HOME, "@aria hello").await;
    answered(&bot, THREAD, HOME, "@aria and in the thread?").await;
    let activation = answer(
        &bot,
        CommandSpec {
            channel_id: QUIET.to_owned(),
            ..command(
                MANAGER,
                "activate",
                vec![text_option("personality", "aria")],
            )
        },
    )
    .await;
    assert!(
        content(&activation).starts_with("Personalities don't answer in this channel"),
        "{activation}"
    );

    let all_but = answer(
        &bot,
        settings(MANAGER, true, "channels", vec![answer_in(2)]),
    )
    .await;
    assert!(
        content(&all_but).contains("every channel but <#6001>"),
        "{all_but}"
    );
    unanswered(&bot, GENERAL, HOME, "@aria hello again").await;
    answered(&bot, QUIET, HOME, "@aria here then?").await;

    let changes = events_of(&bot, "ServerSettingsChanged").await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert!(changes
        .iter()
        .all(|e| e["actor"] == "user:7002" && e["aggregate_id"] == "server:8001"));
    let verify = bot.cli(&["events", "verify"]).await;
    assert!(verify.status.success(), "{verify:?}");
    assert!(String::from_utf8_lossy(&verify.stdout).contains("the settings of 1 server"));
    bot.assert_valid_requests();
}

#[tokio::test]
async fn with_global_personalities_off_a_server_neither_sees_nor_hears_them() {
    let bot = Bot::start_with(BotOptions {
        setup: vec![[
            "personality",
            "create",
            "Sage",
            "--owner",
            ADMIN,
            "--global",
        ]
        .map(String::from)
        .to_vec()],
        ..Default::default()
    })
    .await;
    answered(&bot, GENERAL, HOME, "@sage hello").await;

    let off = answer(
        &bot,
        settings(
            MANAGER,
            true,
            "globals",
            vec![bool_option("enabled", false)],
        ),
    )
    .await;
    assert!(
        content(&off).contains("Global personalities: turned off"),
        "{off}"
    );
    unanswered(&bot, GENERAL, HOME, "@sage still there?").await;
    let list = answer(&bot, personality(MEMBER, "list", vec![])).await;
    assert!(
        content(&list).starts_with("There are no personalities yet"),
        "{list}"
    );
    let activation = answer(
        &bot,
        command(
            MANAGER,
            "activate",
            vec![text_option("personality", "sage")],
        ),
    )
    .await;
    assert!(
        content(&activation).contains("this server has turned global personalities off"),
        "{activation}"
    );
    // Other servers keep them.
    answered(&bot, OTHER_CHANNEL, OTHER, "@sage hello from elsewhere").await;

    // The host turns them back on from the command line; the running bot follows.
    let out = bot.cli(&["server", "set", HOME, "--globals", "true"]).await;
    assert!(out.status.success(), "{out:?}");
    wait_for_log_count(&bot, "settings cache refreshed", 2).await;
    answered(&bot, GENERAL, HOME, "@sage welcome back").await;
    let shown = bot.cli(&["server", "show", HOME, "--json"]).await;
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        (shown["globals"].as_bool(), shown["version"].as_i64()),
        (Some(true), Some(2))
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_servers_settings_decide_who_creates_personalities_and_how_many() {
    let bot = Bot::start().await;
    let create = |user: &str, manager: bool, name: &str| {
        let mut spec = personality(user, "create", vec![text_option("name", name)]);
        if manager {
            MANAGER_PERMISSIONS.clone_into(&mut spec.permissions);
        }
        spec
    };
    let limit = answer(
        &bot,
        settings(
            MANAGER,
            true,
            "member-limit",
            vec![json!({"name": "limit", "type": 4, "value": 1})],
        ),
    )
    .await;
    assert!(content(&limit).contains("at most 1 "), "{limit}");
    let first = answer(&bot, create(MEMBER, false, "One")).await;
    assert!(content(&first).starts_with("Created"), "{first}");
    let second = answer(&bot, create(MEMBER, false, "Two")).await;
    assert_eq!(
        content(&second),
        "You already own as many personalities in this server as it allows (1); remove one first."
    );

    answer(
        &bot,
        settings(
            MANAGER,
            true,
            "member-create",
            vec![bool_option("allowed", false)],
        ),
    )
    .await;
    let closed = answer(&bot, create("7004", false, "Three")).await;
    assert_eq!(
        content(&closed),
        "In this server only members with Manage Server can create personalities."
    );
    let by_manager = answer(&bot, create(MANAGER, true, "Three")).await;
    assert!(content(&by_manager).starts_with("Created"), "{by_manager}");

    let shown = answer(&bot, settings(MANAGER, true, "show", vec![])).await;
    assert!(
        content(&shown).contains("Who may create personalities: only members with Manage Server"),
        "{shown}"
    );
    // A member can't even read them.
    let hidden = answer(&bot, settings(MEMBER, false, "show", vec![])).await;
    assert!(
        content(&hidden).starts_with("Only members with Manage Server"),
        "{hidden}"
    );
    assert_eq!(events_of(&bot, "PersonalityCreated").await.len(), 2);
    bot.assert_valid_requests();
}

/// Waits until `line` is in the bot's log `count` times.
async fn wait_for_log_count(bot: &Bot, line: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while bot.logs().matches(line).count() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{line:?} logged fewer than {count} times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
