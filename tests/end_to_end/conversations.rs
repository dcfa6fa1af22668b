//! End to end: messages in, webhook messages out, against the fake Discord and fake LLM.

use personae_fakes::discord::{CommandSpec, FakeDiscordConfig, MessageSpec};
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};
use serde_json::{json, Value};

const AVATAR: &str = "https://cdn.example.com/aria.png";

fn aria() -> BotOptions {
    BotOptions {
        setup: vec![create_step(
            "Aria",
            &[
                "--display-name",
                "Aria the Bard",
                "--prompt",
                "You are Aria, a bard who answers in rhyme.",
                "--avatar-url",
                AVATAR,
                "--alias",
                "bard",
                "--alias",
                "the singer",
            ],
        )],
        ..Default::default()
    }
}

fn body(request: &personae_fakes::discord::RecordedRequest) -> &Value {
    request.body.as_ref().expect("a JSON body")
}

#[tokio::test]
async fn an_alias_mention_is_answered_through_a_webhook_as_the_personality() {
    let bot = Bot::start_with(aria()).await;
    bot.llm.reply_with("Hello, traveller, in rhyme I greet.");
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "hey @Bard hello there",
        ))
        .await;

    let executions = bot.wait_webhook_executions(1).await;
    let sent = body(&executions[0]);
    assert_eq!(sent["username"], "Aria the Bard");
    assert_eq!(sent["avatar_url"], AVATAR);
    assert_eq!(sent["content"], "Hello, traveller, in rhyme I greet.");
    assert_eq!(sent["allowed_mentions"], json!({"parse": []}));
    assert_eq!(executions[0].query_param("wait").as_deref(), Some("true"));

    let requests = bot.llm.wait_for_requests(1, WAIT).await;
    let messages = requests[0]["messages"].as_array().unwrap();
    assert_eq!(
        messages[0],
        json!({"role": "system", "content": "You are Aria, a bard who answers in rhyme."})
    );
    let last = messages.last().unwrap();
    assert_eq!(last["role"], "user");
    assert!(
        last["content"]
            .as_str()
            .unwrap()
            .ends_with("hey hello there"),
        "the mention is left out: {last}"
    );
    assert_eq!(requests[0]["model"], "test-default-model");
    assert_eq!(
        bot.llm.authorizations()[0].as_deref(),
        Some("Bearer sk-test-never-log-me")
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_reply_to_a_personality_message_is_answered_by_the_same_personality() {
    let mut options = aria();
    options
        .setup
        .push(create_step("Nova", &["--prompt", "You are Nova."]));
    let bot = Bot::start_with(options).await;
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "@the singer sing",
        ))
        .await;
    bot.wait_webhook_executions(1).await;
    let sent_id = bot
        .discord
        .wait_for_message(|m| m["webhook_id"].is_string(), WAIT)
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    bot.wait_tracked(&sent_id).await;

    bot.discord
        .send_message(
            MessageSpec::new("6001", "7002", "bob", "and again, please").replying_to(&sent_id),
        )
        .await;
    let executions = bot.wait_webhook_executions(2).await;
    assert_eq!(body(&executions[1])["username"], "Aria the Bard");
    let requests = bot.llm.wait_for_requests(2, WAIT).await;
    let messages = requests[1]["messages"].as_array().unwrap();
    assert_eq!(
        messages[0]["content"],
        "You are Aria, a bard who answers in rhyme."
    );
    assert!(
        messages.iter().any(|m| m["role"] == "assistant"),
        "the personality's earlier message is its own turn: {messages:?}"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn bots_webhooks_and_unaddressed_messages_get_no_answer() {
    let bot = Bot::start_with(aria()).await;
    let mut from_bot = MessageSpec::new("6001", "7100", "otherbot", "@bard hi");
    from_bot.author_is_bot = true;
    bot.discord.send_message(from_bot).await;
    let mut from_webhook = MessageSpec::new("6001", "7101", "hook", "@bard hi");
    from_webhook.webhook_id = Some("9999".into());
    bot.discord.send_message(from_webhook).await;
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "mail me at x@bard.com or @nobody",
        ))
        .await;
    assert!(bot.settle().await.is_empty());
    assert!(bot.llm.requests().is_empty());
}

#[tokio::test]
async fn a_long_answer_arrives_as_two_messages_and_an_llm_failure_as_a_short_apology() {
    let bot = Bot::start_with(aria()).await;
    let paragraph = "word ".repeat(199) + "end.";
    let long = format!("{paragraph}\n\n{paragraph}\n\n{}", "x ".repeat(248));
    assert!(long.chars().count() > 2_400 && long.chars().count() < 4_000);
    bot.llm.reply_with(long.clone());
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "@aria tell me everything",
        ))
        .await;
    let executions = bot.wait_webhook_executions(2).await;
    let parts: Vec<&str> = executions
        .iter()
        .map(|r| body(r)["content"].as_str().unwrap())
        .collect();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts.iter().all(|p| p.chars().count() <= 2000));
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        words(&parts.join(" ")),
        words(&long),
        "nothing lost in the split"
    );

    bot.llm.fail_with(500, 10);
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@aria again"))
        .await;
    let executions = bot.wait_webhook_executions(3).await;
    let apology = body(&executions[2]);
    assert_eq!(apology["username"], "Aria the Bard");
    assert!(
        apology["content"]
            .as_str()
            .unwrap()
            .contains("can't answer right now"),
        "{apology}"
    );
    assert!(
        bot.logs().contains("the LLM failed"),
        "the failure is logged"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_gateway_closed_mid_session_is_resumed_and_the_bot_keeps_answering() {
    let bot = Bot::start_with(aria()).await;
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard one"))
        .await;
    bot.wait_webhook_executions(1).await;
    bot.discord.close_gateway(4000).await.unwrap();
    // Sent while the bot is away: Discord replays it when the session resumes.
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "@bard while you were away",
        ))
        .await;
    bot.discord
        .wait_resumed(1, WAIT)
        .await
        .expect("the bot resumes");
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard three"))
        .await;
    bot.wait_webhook_executions(3).await;
    let executions = bot.settle().await;
    assert_eq!(executions.len(), 3, "each message answered once, none lost");
    let asked: Vec<String> = bot
        .llm
        .requests()
        .iter()
        .map(|r| {
            r["messages"].as_array().unwrap().last().unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(asked.len(), 3);
    assert!(
        asked.iter().any(|a| a.contains("while you were away")),
        "{asked:?}"
    );
    assert_eq!(
        bot.discord.identify_count(),
        1,
        "resumed, not re-identified"
    );
}

#[tokio::test]
async fn a_rejected_token_ends_the_process_with_a_clear_error() {
    let discord = FakeDiscordConfig {
        reject_token: true,
        ..Default::default()
    };
    let mut bot = Bot::start_unready(BotOptions {
        discord,
        ..Default::default()
    })
    .await;
    let status = bot
        .wait_exit(WAIT)
        .await
        .expect("the process ends by itself");
    assert_eq!(status.code(), Some(1));
    let logs = bot.logs();
    assert!(
        logs.contains("DISCORD_TOKEN: Discord rejected the token"),
        "{logs}"
    );
    assert!(
        !logs.contains(personae_testkit::bot::TOKEN),
        "the token is never printed"
    );
}

#[tokio::test]
async fn a_missing_token_is_one_clear_line_and_a_non_zero_exit() {
    let bot = Bot::start_unready(BotOptions::default()).await;
    let out = tokio::process::Command::new(personae_testkit::bot::binary())
        .arg("run")
        .env_clear()
        .env("DATABASE_PATH", bot.db_path())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: DISCORD_TOKEN: not set"),
        "{stderr}"
    );
}

#[tokio::test]
async fn after_an_update_the_next_message_carries_the_new_name_and_after_removal_replies_go_unanswered(
) {
    let bot = Bot::start_with(aria()).await;
    let admin_perms = CommandSpec::new(
        "activate",
        vec![json!({"name": "personality", "type": 3, "value": "Aria"})],
    );
    let id = bot.discord.slash_command(admin_perms).await;
    bot.discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap();
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard first"))
        .await;
    bot.wait_webhook_executions(1).await;
    let first_id = bot
        .discord
        .wait_for_message(|m| m["author"]["username"] == "Aria the Bard", WAIT)
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    bot.wait_tracked(&first_id).await;

    let update = CommandSpec::new(
        "personality",
        vec![json!({"name": "update", "type": 1, "options": [
            {"name": "personality", "type": 3, "value": "Aria"},
            {"name": "display_name", "type": 3, "value": "Aria Reborn"}
        ]})],
    );
    let id = bot.discord.slash_command(update).await;
    bot.discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap();
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard second"))
        .await;
    let executions = bot.wait_webhook_executions(2).await;
    assert_eq!(
        body(&executions[1])["username"],
        "Aria Reborn",
        "the cache was refreshed through the bus"
    );

    let remove = CommandSpec::new(
        "personality",
        vec![
            json!({"name": "remove", "type": 1, "options": [{"name": "personality", "type": 3, "value": "Aria"}]}),
        ],
    );
    let id = bot.discord.slash_command(remove).await;
    let prompt = bot
        .discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap();
    let confirm = prompt.to_string();
    let custom_id = find_custom_id(&prompt, "confirm")
        .unwrap_or_else(|| panic!("no confirm button in {confirm}"));
    let click = personae_fakes::discord::ComponentSpec {
        custom_id,
        message_id: bot
            .discord
            .interaction_original(&id)
            .and_then(|m| m["id"].as_str().map(str::to_owned))
            .unwrap_or_default(),
        ..Default::default()
    };
    let click_id = bot.discord.button_click(click).await;
    bot.discord
        .wait_interaction_response(&click_id, WAIT)
        .await
        .unwrap();
    let gone = || {
        bot.db()
            .query_row("SELECT COUNT(*) FROM personalities", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
            == 0
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while !gone() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "removal never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    bot.discord
        .send_message(
            MessageSpec::new("6001", "7001", "alice", "still there?").replying_to(&first_id),
        )
        .await;
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "anyone in this channel?",
        ))
        .await;
    assert_eq!(bot.settle().await.len(), 2, "no answer after removal");
    let activations: i64 = bot
        .db()
        .query_row("SELECT COUNT(*) FROM channel_activations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        activations, 0,
        "the channel activation is gone (conversation cleanup through the bus)"
    );
    let mapped: i64 = bot
        .db()
        .query_row("SELECT COUNT(*) FROM conversation_messages", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(mapped, 0);
    bot.assert_valid_requests();
}

/// The custom id of the first button whose id or label contains `word` (any case).
fn find_custom_id(response: &Value, word: &str) -> Option<String> {
    let rows = response["data"]["components"].as_array()?;
    rows.iter()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .find(|b| {
            let id = b["custom_id"].as_str().unwrap_or_default().to_lowercase();
            let label = b["label"].as_str().unwrap_or_default().to_lowercase();
            id.contains(word) || label.contains(word)
        })
        .and_then(|b| b["custom_id"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn in_a_thread_the_parent_channels_webhook_speaks_with_thread_id() {
    let bot = Bot::start_with(aria()).await;
    bot.discord.add_thread("6101", "6001");
    bot.discord
        .send_message(MessageSpec::new(
            "6101",
            "7001",
            "alice",
            "@bard in the thread",
        ))
        .await;
    let executions = bot.wait_webhook_executions(1).await;
    assert_eq!(
        executions[0].query_param("thread_id").as_deref(),
        Some("6101")
    );
    let created: Vec<_> = bot
        .discord
        .requests()
        .into_iter()
        .filter(|r| r.is("POST", "/channels/") && r.api_path().ends_with("/webhooks"))
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].api_path(),
        "/channels/6001/webhooks",
        "the webhook belongs to the parent channel"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_deleted_webhook_is_recreated_once_and_the_typing_indicator_shows_while_waiting() {
    let bot = Bot::start_with(aria()).await;
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard one"))
        .await;
    bot.wait_webhook_executions(1).await;
    let typing = bot
        .discord
        .requests()
        .into_iter()
        .filter(|r| r.is("POST", "/channels/6001/typing"))
        .count();
    assert!(typing >= 1, "the typing indicator was triggered");
    let hooks = bot.discord.webhooks();
    assert_eq!(hooks.len(), 1);
    bot.discord
        .delete_webhook_externally(hooks[0]["id"].as_str().unwrap());

    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard two"))
        .await;
    let executions = bot.wait_webhook_executions(3).await;
    assert_eq!(
        executions[1].status, 404,
        "the first try hits the deleted webhook"
    );
    assert_eq!(executions[2].status, 200, "the retry uses a new webhook");
    assert_eq!(
        body(&executions[2])["content"],
        body(&executions[1])["content"]
    );
    let creations = bot
        .discord
        .requests()
        .into_iter()
        .filter(|r| r.is("POST", "/channels/6001/webhooks"))
        .count();
    assert_eq!(
        creations, 2,
        "created once at first use, once after the deletion"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn an_llm_time_out_gives_a_short_message_from_the_personality() {
    let mut options = aria();
    options.env.push(("LLM_TIMEOUT_SECS".into(), "1".into()));
    let bot = Bot::start_with(options).await;
    bot.llm.delay(std::time::Duration::from_secs(5));
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "@bard think hard",
        ))
        .await;
    let executions = bot.wait_webhook_executions(1).await;
    let sent = body(&executions[0]);
    assert_eq!(sent["username"], "Aria the Bard");
    assert!(
        sent["content"]
            .as_str()
            .unwrap()
            .contains("can't answer right now"),
        "{sent}"
    );
}

#[tokio::test]
async fn in_direct_messages_the_bot_speaks_for_the_personality_and_never_pings() {
    let bot = Bot::start_with(aria()).await;
    bot.llm.reply_with("Psst @everyone and <@7002>, a secret.");
    bot.discord.add_dm_channel("6900", "7001", "alice");
    bot.discord
        .send_message(MessageSpec::dm(
            "6900",
            "7001",
            "alice",
            "@bard hello in private",
        ))
        .await;
    let sent = bot
        .discord
        .wait_for_request(|r| r.is("POST", "/channels/6900/messages"), WAIT)
        .await
        .unwrap();
    let sent = sent.body.unwrap();
    assert_eq!(
        sent["content"],
        "**Aria the Bard:** Psst @everyone and <@7002>, a secret."
    );
    assert_eq!(sent["allowed_mentions"]["parse"], json!([]));
    assert!(
        bot.discord.webhook_executions().is_empty(),
        "DMs have no webhooks"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn secrets_never_appear_in_the_logs_of_a_full_run() {
    let mut bot = Bot::start_with(aria()).await;
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard hello"))
        .await;
    bot.wait_webhook_executions(1).await;
    bot.llm.fail_with(401, 1);
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard again"))
        .await;
    bot.wait_webhook_executions(2).await;
    let status = bot.terminate().await;
    assert!(status.success(), "SIGTERM ends the bot cleanly: {status:?}");
    let logs = bot.logs();
    assert!(logs.contains("personae stopped"), "{logs}");
    for secret in [personae_testkit::bot::TOKEN, personae_testkit::bot::LLM_KEY] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    // Webhook tokens are secrets too.
    for hook in bot.discord.webhooks() {
        if let Some(token) = hook["token"].as_str() {
            assert!(!logs.contains(token), "a webhook token reached the logs");
        }
    }
}

#[tokio::test]
async fn changes_made_on_the_command_line_while_the_bot_runs_reach_the_bot() {
    let bot = Bot::start().await;
    let out = bot
        .cli(&[
            "personality",
            "create",
            "Nova",
            "--owner",
            "7001",
            "--server",
            "8001",
            "--alias",
            "nv",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The bot polls for events committed by other processes once a second.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        bot.discord
            .send_message(MessageSpec::new(
                "6001",
                "7001",
                "alice",
                "@nv are you there?",
            ))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        if !bot.discord.webhook_executions().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot never saw the new personality"
        );
    }
    assert_eq!(
        body(&bot.discord.webhook_executions()[0])["username"],
        "Nova"
    );
}
