//! What the model sees: which earlier messages go with a question.

use personae_fakes::discord::{CommandSpec, MessageSpec};
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};
use serde_json::Value;

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

/// Every message text of the `n`-th LLM request (1-based), once it arrived.
async fn sent_to_model(bot: &Bot, n: usize) -> String {
    let requests = bot.llm.wait_for_requests(n, WAIT).await;
    requests[n - 1]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn say(bot: &Bot, text: &str) {
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", text))
        .await;
}

#[tokio::test]
async fn the_apology_for_a_failed_llm_call_is_never_sent_back_to_the_model() {
    let bot = Bot::start_with(aria(&[])).await;
    bot.llm.fail_with(500, 1);
    say(&bot, "@bard first question").await;
    let executions = bot.wait_webhook_executions(1).await;
    let apology: &Value = executions[0].body.as_ref().unwrap();
    assert!(apology["content"]
        .as_str()
        .unwrap()
        .contains("can't answer right now"));
    say(&bot, "@bard second question").await;
    let seen = sent_to_model(&bot, 2).await;
    assert!(seen.contains("first question"), "{seen}");
    assert!(!seen.contains("can't answer right now"), "{seen}");
}

#[tokio::test]
async fn after_reset_earlier_channel_messages_are_no_longer_sent() {
    let bot = Bot::start_with(aria(&[])).await;
    say(&bot, "@bard the password is swordfish").await;
    bot.wait_webhook_executions(1).await;
    let reset = bot
        .discord
        .slash_command(CommandSpec::new("reset", vec![]))
        .await;
    bot.discord
        .wait_interaction_response(&reset, WAIT)
        .await
        .unwrap();
    say(&bot, "@bard what do you know?").await;
    let seen = sent_to_model(&bot, 2).await;
    assert!(seen.contains("what do you know?"), "{seen}");
    assert!(!seen.contains("swordfish"), "{seen}");
}

#[tokio::test]
async fn llm_context_messages_sets_how_many_earlier_messages_are_sent() {
    for (setting, expected) in [("0", false), ("10", true)] {
        let bot = Bot::start_with(aria(&[("LLM_CONTEXT_MESSAGES", setting)])).await;
        say(&bot, "idle chatter about the weather").await;
        say(&bot, "@bard hello").await;
        let seen = sent_to_model(&bot, 1).await;
        assert_eq!(seen.contains("weather"), expected, "{setting}: {seen}");
    }
}
