//! End to end: a reasoning model's thinking never reaches the channel or the context.

use std::time::Duration;

use personae_fakes::discord::MessageSpec;
use personae_fakes::llm::Pacing;
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};

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

/// Everything the bot posted or edited through webhooks, as one string.
fn everything_sent(bot: &Bot) -> String {
    bot.discord
        .webhook_executions()
        .iter()
        .chain(&bot.discord.webhook_edits())
        .filter_map(|r| r.body.as_ref())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

async fn wait_for_content(bot: &Bot, channel: &str, content: &str) -> String {
    let found = bot
        .discord
        .wait_for_message(
            |m| m["channel_id"] == channel && m["content"] == content && !m["webhook_id"].is_null(),
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; sent: {}", everything_sent(bot)));
    found["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn thinking_is_never_shown_while_streaming_nor_sent_back_as_context() {
    let bot = Bot::start_with(aria(&[])).await;
    bot.llm.reply_with(
        "<think>The user wants a song. SECRET PLAN: rhyme moon with June.</think>\n\nA song for you, under the moon in June.",
    );
    bot.llm.stream_pacing(Pacing {
        chars_per_event: 7,
        interval: Duration::from_millis(15),
        first_token_after: Duration::ZERO,
    });
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard sing"))
        .await;
    let answer = wait_for_content(&bot, "6001", "A song for you, under the moon in June.").await;
    let sent = everything_sent(&bot);
    assert!(
        !sent.contains("SECRET") && !sent.contains("think>"),
        "{sent}"
    );

    bot.wait_tracked(&answer).await;
    bot.llm.reply_with("Again?");
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "more please").replying_to(&answer))
        .await;
    let requests = bot.llm.wait_for_requests(2, WAIT).await;
    let context = requests[1]["messages"].to_string();
    assert!(context.contains("under the moon in June"), "{context}");
    assert!(!context.contains("SECRET"), "{context}");
    bot.assert_valid_requests();
}

#[tokio::test]
async fn an_answer_that_is_all_thinking_gets_the_short_apology() {
    // Whole answers: an unclosed block at the start hides everything.
    let bot = Bot::start_with(aria(&[("LLM_STREAM", "false")])).await;
    bot.llm
        .reply_with("<think>I could go on and on and never finish");
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard hi"))
        .await;
    let executions = bot.wait_webhook_executions(1).await;
    let content = executions[0].body.as_ref().unwrap()["content"].to_string();
    assert!(content.contains("can't answer right now"), "{content}");
    assert!(!content.contains("on and on"), "{content}");

    // Whole answers: closed blocks are removed.
    bot.llm
        .reply_with("<think>plan</think>Hello.<think>more plans</think> Bye.");
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard again"))
        .await;
    wait_for_content(&bot, "6001", "Hello. Bye.").await;
}
