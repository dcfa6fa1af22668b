//! End to end: one message calling on several personalities.

use personae_fakes::discord::MessageSpec;
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};
use serde_json::Value;

fn body(request: &personae_fakes::discord::RecordedRequest) -> &Value {
    request.body.as_ref().expect("a JSON body")
}

#[tokio::test]
async fn each_mentioned_personality_answers_in_mention_order_and_a_reply_continues_with_one() {
    let bot = Bot::start_with(BotOptions {
        setup: vec![
            create_step("Aria", &["--prompt", "You are Aria."]),
            create_step("Bard", &["--prompt", "You are Bard."]),
            create_step("Cleo", &["--prompt", "You are Cleo."]),
        ],
        env: vec![("MAX_PERSONALITIES_PER_MESSAGE".into(), "2".into())],
        ..Default::default()
    })
    .await;
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "@bard @aria @bard @cleo what do you think?",
        ))
        .await;
    let executions = bot.wait_webhook_executions(2).await;
    let names: Vec<&Value> = executions.iter().map(|e| &body(e)["username"]).collect();
    assert_eq!(
        names,
        ["Bard", "Aria"],
        "in mention order, each once, at most two"
    );
    let requests = bot.llm.wait_for_requests(2, WAIT).await;
    assert_eq!(requests[0]["messages"][0]["content"], "You are Bard.");
    assert_eq!(requests[1]["messages"][0]["content"], "You are Aria.");
    let settled = bot.settle().await;
    assert_eq!(settled.len(), 2, "Cleo is past the limit");

    // A reply to Aria's message continues with Aria alone.
    let aria_message = bot
        .discord
        .wait_for_message(|m| m["author"]["username"] == "Aria", WAIT)
        .await
        .expect("Aria's answer")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    bot.wait_tracked(&aria_message).await;
    bot.discord
        .send_message(
            MessageSpec::new("6001", "7001", "alice", "tell me more").replying_to(&aria_message),
        )
        .await;
    let executions = bot.wait_webhook_executions(3).await;
    assert_eq!(body(&executions[2])["username"], "Aria");
    assert_eq!(bot.settle().await.len(), 3);
    bot.assert_valid_requests();
}
