//! End to end: answers shown while the model writes them, through the webhook, within
//! Discord's message size and rate limits.

use std::time::Duration;

use personae::discord::split_message;
use personae_fakes::discord::{FakeDiscordConfig, MessageSpec, RateLimit, RecordedRequest};
use personae_fakes::llm::Pacing;
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};
use serde_json::{json, Value};

fn aria(env: &[(&str, &str)]) -> BotOptions {
    BotOptions {
        setup: vec![create_step("Aria", &["--alias", "bard"])],
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// The contents of the webhook messages in a channel, oldest first.
fn webhook_texts(bot: &Bot, channel: &str) -> Vec<String> {
    bot.discord
        .channel_messages(channel)
        .into_iter()
        .filter(|m| m.get("webhook_id").is_some_and(|w| !w.is_null()))
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect()
}

async fn wait_for_texts(bot: &Bot, channel: &str, expected: &[String]) {
    let shown = bot
        .discord
        .wait_until("the final answer", WAIT, |_| {
            webhook_texts(bot, channel) == expected
        })
        .await;
    assert!(
        shown.is_ok(),
        "expected {expected:#?}\ngot {:#?}",
        webhook_texts(bot, channel)
    );
}

fn body(request: &RecordedRequest) -> &Value {
    request.body.as_ref().expect("a JSON body")
}

/// The id of the message a PATCH edits.
fn edited_message(request: &RecordedRequest) -> String {
    request
        .api_path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_streamed_answer_is_edited_in_place_and_overflows_to_a_second_message_with_the_exact_final_text(
) {
    let bot = Bot::start_with(aria(&[])).await;
    let paragraph = "The bard sings of rivers and of stone. ".repeat(30);
    let answer = format!("{paragraph}\n\n{paragraph}\n\nAnd that is all.");
    assert!(answer.chars().count() > 2_000 && answer.chars().count() < 4_000);
    bot.llm.reply_with(answer.clone());
    bot.llm.stream_pacing(Pacing {
        chars_per_event: 40,
        interval: Duration::from_millis(40),
        first_token_after: Duration::ZERO,
    });
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard sing"))
        .await;

    let expected = split_message(&answer, 2000);
    assert_eq!(expected.len(), 2);
    wait_for_texts(&bot, "6001", &expected).await;

    let requests = bot.llm.requests();
    assert_eq!(requests[0]["stream"], true);
    let posts = bot.discord.webhook_executions();
    assert_eq!(posts.len(), 2, "one post per message");
    let first = body(&posts[0])["content"].as_str().unwrap().to_owned();
    assert!(
        first.len() < expected[0].len(),
        "the first message went out before the answer was complete: {first:?}"
    );
    let edits = bot.discord.webhook_edits();
    assert!(edits.len() >= 2, "the messages grew by edits: {edits:#?}");
    for edit in &edits {
        assert_eq!(body(edit)["allowed_mentions"], json!({"parse": []}));
        assert_eq!(edit.status, 200);
    }
    // At most about one edit a second per message.
    let mut by_message: std::collections::BTreeMap<String, Vec<&RecordedRequest>> =
        std::collections::BTreeMap::new();
    for edit in &edits {
        by_message
            .entry(edited_message(edit))
            .or_default()
            .push(edit);
    }
    for (message, edits) in by_message {
        for pair in edits.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(
                gap >= Duration::from_millis(900),
                "message {message} edited twice within {gap:?}"
            );
        }
    }
    assert!(bot.discord.rate_limited().is_empty());
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_broken_stream_ends_the_message_with_a_note_and_the_log_says_why() {
    let bot = Bot::start_with(aria(&[])).await;
    bot.discord.add_thread("6101", "6001");
    let answer = "First the bard tuned her lute. Then she began a long song about the sea, \
                  the ships, the storms, the sailors and their homecoming, verse after verse.";
    bot.llm.reply_with(answer);
    bot.llm.stream_pacing(Pacing {
        chars_per_event: 10,
        interval: Duration::from_millis(30),
        first_token_after: Duration::ZERO,
    });
    bot.llm.break_next_stream_after(60);
    bot.discord
        .send_message(MessageSpec::new("6101", "7001", "alice", "@bard sing"))
        .await;

    let shown: String = answer.chars().take(60).collect();
    let expected = vec![format!("{}\n*(The answer broke off here.)*", shown.trim())];
    wait_for_texts(&bot, "6101", &expected).await;
    for request in bot
        .discord
        .webhook_executions()
        .iter()
        .chain(&bot.discord.webhook_edits())
    {
        assert_eq!(request.query_param("thread_id").as_deref(), Some("6101"));
    }
    // The log line follows the last edit.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !bot.logs().contains("the answer's stream broke off") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line says why"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bot.assert_valid_requests();
}

#[tokio::test]
async fn without_streaming_the_answer_arrives_whole() {
    // The host turned streaming off: the request doesn't ask for it.
    let bot = Bot::start_with(aria(&[("LLM_STREAM", "false")])).await;
    bot.llm.reply_with("All at once.");
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard hi"))
        .await;
    wait_for_texts(&bot, "6001", &["All at once.".to_owned()]).await;
    assert!(bot.llm.requests()[0].get("stream").is_none());
    drop(bot);

    // The endpoint can't stream: it answers whole although asked to stream.
    let bot = Bot::start_with(aria(&[])).await;
    bot.llm.ignore_stream_requests(true);
    bot.llm.reply_with("Whole anyway.");
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard hi"))
        .await;
    wait_for_texts(&bot, "6001", &["Whole anyway.".to_owned()]).await;
    assert_eq!(bot.llm.requests()[0]["stream"], true);
    assert!(bot.discord.webhook_edits().is_empty());
    bot.assert_valid_requests();
}

#[tokio::test]
async fn the_bot_waits_for_room_in_the_webhooks_bucket_instead_of_being_refused() {
    let mut options = aria(&[("LLM_MAX_MESSAGES_PER_ANSWER", "5")]);
    options.discord = FakeDiscordConfig {
        webhook_rate_limit: Some(RateLimit {
            requests: 2,
            per: Duration::from_millis(1500),
        }),
        ..Default::default()
    };
    let bot = Bot::start_with(options).await;
    let answer = "A verse of the long song, and then another one. ".repeat(100);
    bot.llm.reply_with(answer.clone());
    bot.llm.stream_pacing(Pacing {
        chars_per_event: 200,
        interval: Duration::from_millis(50),
        first_token_after: Duration::ZERO,
    });
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard sing"))
        .await;
    let expected = split_message(&answer, 2000);
    assert_eq!(expected.len(), 3);
    wait_for_texts(&bot, "6001", &expected).await;
    let refused = bot.discord.rate_limited();
    assert!(refused.is_empty(), "{refused:#?}");
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_slow_model_may_write_for_longer_than_the_time_out_while_it_keeps_writing() {
    let bot = Bot::start_with(aria(&[("LLM_TIMEOUT_SECS", "1")])).await;
    let answer = "Slowly, word by word, the bard tells the whole tale to the end.";
    bot.llm.reply_with(answer);
    // 2.6 s in all, never more than 0.4 s between two pieces.
    bot.llm.stream_pacing(Pacing {
        chars_per_event: 5,
        interval: Duration::from_millis(200),
        first_token_after: Duration::from_millis(400),
    });
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard tell"))
        .await;
    wait_for_texts(&bot, "6001", &[answer.to_owned()]).await;
    bot.assert_valid_requests();
}

#[tokio::test]
async fn an_edit_refused_with_429_is_sent_again_after_its_retry_after() {
    let bot = Bot::start_with(aria(&[])).await;
    let answer =
        "The first verse is short. Then a second verse follows it, and a third, and the song ends.";
    bot.llm.reply_with(answer);
    bot.llm.stream_pacing(Pacing {
        chars_per_event: 10,
        interval: Duration::from_millis(100),
        first_token_after: Duration::ZERO,
    });
    bot.discord.fail_next(
        personae_fakes::discord::RequestMatcher::custom(|r| {
            r.method == "PATCH" && r.api_path().contains("/messages/")
        }),
        429,
        json!({"message": "You are being rate limited.", "retry_after": 0.7, "global": false}),
        1,
    );
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard sing"))
        .await;
    wait_for_texts(&bot, "6001", &[answer.to_owned()]).await;
    let edits = bot.discord.webhook_edits();
    let refused = edits
        .iter()
        .position(|e| e.status == 429)
        .expect("one edit was refused");
    let retried = edits.get(refused + 1).expect("and sent again");
    assert!(
        retried.at.duration_since(edits[refused].at) >= Duration::from_millis(690),
        "not before its retry_after"
    );
    bot.assert_valid_requests();
}
