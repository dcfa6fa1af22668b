//! Servers as the unit of trust, end to end with two servers in the fake Discord: a
//! server's personalities are its own, server managers manage them, global ones are
//! everyone's, and names members could be fooled by are refused.

use personae_fakes::discord::{CommandSpec, MessageSpec};
use personae_testkit::bot::{create_step, Bot, BotOptions, ADMIN};
use personae_testkit::users::{answer, bool_option, personality, text_option, MANAGER_PERMISSIONS};
use serde_json::Value;

/// The fake Discord's own guild, where `create_step` puts personalities.
const HOME: &str = "8001";
/// A second server with its own members and channel.
const OTHER: &str = "8002";
const OTHER_CHANNEL: &str = "6101";
const OTHER_MEMBER: &str = "7301";

/// `/personality SUB …` by `user` in `server`'s channel, as a member or a manager.
fn in_server(
    server: &str,
    user: &str,
    manager: bool,
    sub: &str,
    options: Vec<Value>,
) -> CommandSpec {
    let mut spec = personality(user, sub, options);
    spec.guild_id = Some(server.to_owned());
    if server == OTHER {
        OTHER_CHANNEL.clone_into(&mut spec.channel_id);
    }
    if manager {
        MANAGER_PERMISSIONS.clone_into(&mut spec.permissions);
    }
    spec
}

fn content(response: &Value) -> &str {
    response["data"]["content"].as_str().unwrap_or_default()
}

/// A message by `author` in `server`'s `channel`.
fn said(channel: &str, server: &str, author: &str, text: &str) -> MessageSpec {
    let mut message = MessageSpec::new(channel, author, &format!("user{author}"), text);
    message.guild_id = Some(server.to_owned());
    message
}

async fn bot_with_aria() -> Bot {
    Bot::start_with(BotOptions {
        setup: vec![create_step(
            "Aria",
            &[
                "--alias",
                "bard",
                "--prompt",
                "You are the home server's Aria.",
            ],
        )],
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_servers_personality_is_out_of_reach_of_another_server_which_may_have_its_own() {
    let bot = bot_with_aria().await;
    // Another server can neither talk to nor see the home server's Aria.
    bot.discord
        .send_message(said(OTHER_CHANNEL, OTHER, OTHER_MEMBER, "@aria hello"))
        .await;
    assert!(bot.settle().await.is_empty(), "no answer in another server");
    assert!(bot.llm.requests().is_empty());
    let list = answer(&bot, in_server(OTHER, OTHER_MEMBER, false, "list", vec![])).await;
    assert!(
        content(&list).starts_with("There are no personalities yet"),
        "{list}"
    );
    let info = answer(
        &bot,
        in_server(
            OTHER,
            OTHER_MEMBER,
            true,
            "info",
            vec![text_option("personality", "aria")],
        ),
    )
    .await;
    assert_eq!(content(&info), "No personality is called \"aria\".");
    let change = answer(
        &bot,
        in_server(
            OTHER,
            OTHER_MEMBER,
            true,
            "update",
            vec![
                text_option("personality", "aria"),
                text_option("prompt", "Mine now."),
            ],
        ),
    )
    .await;
    assert_eq!(content(&change), "No personality is called \"aria\".");

    // It makes its own Aria, which answers there with its own prompt.
    let created = answer(
        &bot,
        in_server(
            OTHER,
            OTHER_MEMBER,
            false,
            "create",
            vec![
                text_option("name", "Aria"),
                text_option("prompt", "You are the other server's Aria."),
                text_option("alias", "bard"),
            ],
        ),
    )
    .await;
    assert!(content(&created).starts_with("Created"), "{created}");
    bot.llm.reply_with("Hello from over here.");
    bot.discord
        .send_message(said(OTHER_CHANNEL, OTHER, OTHER_MEMBER, "@bard hi"))
        .await;
    bot.wait_webhook_executions(1).await;
    let requests = bot
        .llm
        .wait_for_requests(1, personae_testkit::bot::WAIT)
        .await;
    assert_eq!(
        requests[0]["messages"][0]["content"],
        "You are the other server's Aria."
    );
    // Each server's list shows its own.
    let home = answer(
        &bot,
        personality("7002", "list", vec![bool_option("public", true)]),
    )
    .await;
    let home_lines = home["data"]["embeds"][0]["description"].to_string();
    assert!(
        home_lines.contains("Aria") && !home_lines.contains("7301"),
        "{home}"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_server_manager_manages_every_personality_of_their_server_and_only_there() {
    let bot = bot_with_aria().await;
    // A member who isn't the owner is refused; a manager of the home server is not.
    let member = answer(
        &bot,
        in_server(
            HOME,
            "7002",
            false,
            "update",
            vec![
                text_option("personality", "aria"),
                text_option("prompt", "x"),
            ],
        ),
    )
    .await;
    assert!(
        content(&member).starts_with("Only the owner of \"Aria\""),
        "{member}"
    );
    let manager = answer(
        &bot,
        in_server(
            HOME,
            "7002",
            true,
            "update",
            vec![
                text_option("personality", "aria"),
                text_option("prompt", "Moderated."),
            ],
        ),
    )
    .await;
    assert!(content(&manager).starts_with("Updated"), "{manager}");
    // The manager sees the prompt and the owner in info; the event names who acted.
    let info = answer(
        &bot,
        in_server(
            HOME,
            "7002",
            true,
            "info",
            vec![text_option("personality", "aria")],
        ),
    )
    .await;
    assert!(info["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Moderated."));
    let out = bot.cli(&["events", "list", "--json"]).await;
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    let last = events.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "user:7002", "{last}");
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_global_personality_answers_everywhere_and_its_names_are_reserved_in_every_server() {
    let bot = Bot::start_with(BotOptions {
        setup: vec![
            vec![
                "personality".into(),
                "create".into(),
                "Sage".into(),
                "--owner".into(),
                ADMIN.into(),
                "--global".into(),
                "--alias".into(),
                "wise one".into(),
            ],
            create_step("Aria", &["--alias", "bard"]),
        ],
        ..Default::default()
    })
    .await;
    bot.llm.reply_with("Patience.");
    bot.discord
        .send_message(said(
            OTHER_CHANNEL,
            OTHER,
            OTHER_MEMBER,
            "@wise one what now?",
        ))
        .await;
    bot.wait_webhook_executions(1).await;

    // No server can take a global name, and only bot admins make personalities global.
    let taken = answer(
        &bot,
        in_server(
            OTHER,
            OTHER_MEMBER,
            false,
            "create",
            vec![text_option("name", "Sage")],
        ),
    )
    .await;
    assert!(
        content(&taken).contains("(a global personality)"),
        "{taken}"
    );
    let own_bard = answer(
        &bot,
        in_server(
            OTHER,
            OTHER_MEMBER,
            false,
            "create",
            vec![text_option("name", "Bard")],
        ),
    )
    .await;
    assert!(content(&own_bard).starts_with("Created"), "{own_bard}");
    let not_admin = answer(
        &bot,
        in_server(
            HOME,
            "7001",
            true,
            "global",
            vec![text_option("personality", "aria")],
        ),
    )
    .await;
    assert_eq!(
        content(&not_admin),
        "Only a bot admin can make a personality global."
    );
    // Aria's alias "bard" is the other server's name: making Aria global is refused, naming it.
    let clash = answer(
        &bot,
        in_server(
            HOME,
            ADMIN,
            false,
            "global",
            vec![text_option("personality", "aria")],
        ),
    )
    .await;
    assert!(
        content(&clash).contains(&format!("in server {OTHER}")),
        "{clash}"
    );
    let unalias = answer(
        &bot,
        in_server(
            HOME,
            ADMIN,
            false,
            "unalias",
            vec![
                text_option("personality", "aria"),
                text_option("alias", "bard"),
            ],
        ),
    )
    .await;
    assert!(!content(&unalias).is_empty());
    let made = answer(
        &bot,
        in_server(
            HOME,
            ADMIN,
            false,
            "global",
            vec![text_option("personality", "aria")],
        ),
    )
    .await;
    assert!(content(&made).contains("is now global"), "{made}");
    let seen = answer(
        &bot,
        in_server(
            OTHER,
            OTHER_MEMBER,
            false,
            "info",
            vec![text_option("personality", "aria")],
        ),
    )
    .await;
    assert_eq!(seen["data"]["embeds"][0]["title"], "Aria", "{seen}");
    // The running bot knows at once: the other server reaches Aria by mention.
    let before = bot.discord.webhook_executions().len();
    bot.discord
        .send_message(said(OTHER_CHANNEL, OTHER, OTHER_MEMBER, "@aria hello"))
        .await;
    bot.wait_webhook_executions(before + 1).await;
    bot.assert_valid_requests();
}

#[tokio::test]
async fn names_members_could_be_fooled_by_are_refused() {
    let bot = Bot::start().await;
    for (option, value, expected) in [
        ("name", "everyone", "Discord's own mention"),
        ("alias", "@here", "Discord's own mention"),
        ("display_name", "\u{0421}lyde", "Discord does not allow"),
        ("display_name", "\u{3164}", "look blank"),
    ] {
        let mut options = vec![text_option(option, value)];
        if option != "name" {
            options.push(text_option("name", "Nova"));
        }
        let refused = answer(&bot, personality("7001", "create", options)).await;
        assert!(content(&refused).contains(expected), "{value:?}: {refused}");
    }
    let out = bot.cli(&["personality", "list", "--json"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    bot.assert_valid_requests();
}

#[tokio::test]
async fn an_nsfw_personality_answers_only_in_age_restricted_channels() {
    const RESTRICTED: &str = "6201";
    let bot = bot_with_aria().await;
    bot.discord
        .add_age_restricted_channel(RESTRICTED, "after-dark");
    let marked = answer(
        &bot,
        personality(
            "7001",
            "update",
            vec![
                text_option("personality", "aria"),
                bool_option("nsfw", true),
            ],
        ),
    )
    .await;
    assert!(content(&marked).contains("NSFW"), "{marked}");

    // Silent in an ordinary channel and in DMs, even to its owner.
    bot.discord
        .send_message(said("6001", HOME, "7001", "@aria hello"))
        .await;
    bot.discord.add_dm_channel("5555", "7001", "alice");
    bot.discord
        .send_message(MessageSpec::dm("5555", "7001", "alice", "@aria hello"))
        .await;
    assert!(
        bot.settle().await.is_empty(),
        "no answer outside age-restricted channels"
    );
    assert!(bot.llm.requests().is_empty());
    let refused = answer(
        &bot,
        personae_testkit::users::command(
            "7001",
            "activate",
            vec![text_option("personality", "aria")],
        ),
    )
    .await;
    assert_eq!(
        content(&refused),
        "\"Aria\" is NSFW: it can only be activated in an age-restricted channel."
    );

    // Answers in an age-restricted channel, where it may also be activated.
    bot.llm.reply_with("Good evening.");
    bot.discord
        .send_message(said(RESTRICTED, HOME, "7001", "@aria hello"))
        .await;
    bot.wait_webhook_executions(1).await;
    let mut activate = personae_testkit::users::command(
        "7001",
        "activate",
        vec![text_option("personality", "aria")],
    );
    RESTRICTED.clone_into(&mut activate.channel_id);
    let activated = answer(&bot, activate).await;
    assert!(
        content(&activated).contains("now answers every message"),
        "{activated}"
    );
    bot.assert_valid_requests();
}

/// The bot's own messages in a channel (notices), by content.
fn notices(bot: &Bot, channel: &str) -> Vec<String> {
    bot.discord
        .requests()
        .into_iter()
        .filter(|r| r.is("POST", &format!("/channels/{channel}/messages")))
        .filter_map(|r| r.body?["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_hosts_cost_limits_hold_on_the_message_path() {
    let mut options = BotOptions {
        setup: vec![create_step("Aria", &["--alias", "bard"])],
        ..Default::default()
    };
    options.env.extend([
        ("LLM_MAX_TOKENS".into(), "77".into()),
        ("LLM_MAX_MESSAGES_PER_ANSWER".into(), "2".into()),
        ("LLM_CALLS_PER_MINUTE_PER_SERVER".into(), "2".into()),
        ("LLM_ALLOWED_MODELS".into(), "small,large".into()),
    ]);
    let bot = Bot::start_with(options).await;

    // Every request carries max_tokens; a long answer fills at most two messages.
    bot.llm.reply_with("word ".repeat(1500));
    bot.discord
        .send_message(said("6001", HOME, "7001", "@bard talk a lot"))
        .await;
    let sent = bot.wait_webhook_executions(2).await;
    let requests = bot
        .llm
        .wait_for_requests(1, personae_testkit::bot::WAIT)
        .await;
    assert_eq!(requests[0]["max_tokens"], 77);
    let last = sent[1].body.as_ref().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(last.ends_with("it was too long.)*"), "{last}");
    assert!(last.chars().count() <= 2000);

    // The server's second call is its last this minute: a third member is told, once.
    bot.llm.reply_with("Short.");
    bot.discord
        .send_message(said("6001", HOME, "7002", "@bard hi"))
        .await;
    bot.wait_webhook_executions(3).await;
    for _ in 0..2 {
        bot.discord
            .send_message(said("6001", HOME, "7003", "@bard me too"))
            .await;
    }
    let settled = bot.settle().await;
    assert_eq!(settled.len(), 3, "no answer past the server's limit");
    assert_eq!(bot.llm.requests().len(), 2);
    let told = notices(&bot, "6001");
    assert_eq!(
        told.len(),
        1,
        "one notice a minute, not one a message: {told:?}"
    );
    assert!(told[0].contains("this server"), "{told:?}");

    // Only the models the host offers.
    let refused = answer(
        &bot,
        personality(
            "7001",
            "update",
            vec![
                text_option("personality", "aria"),
                text_option("model", "gpt-4-32k"),
            ],
        ),
    )
    .await;
    assert!(content(&refused).contains("small, large"), "{refused}");
    bot.assert_valid_requests();
}
