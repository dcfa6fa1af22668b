//! End to end: a personality's temperature and longest answer, set by slash command and
//! command line, within the host's cap, sent with each request.

use personae_fakes::discord::MessageSpec;
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};
use personae_testkit::users::{answer, personality, text_option};
use serde_json::Value;

const ALICE: &str = "7001";

fn content(response: &Value) -> &str {
    response["data"]["content"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn sampling_set_by_slash_command_is_sent_with_each_request_and_bad_values_change_nothing() {
    let bot = Bot::start_with(BotOptions {
        setup: vec![create_step("Aria", &["--alias", "bard"])],
        env: vec![("LLM_MAX_TOKENS".into(), "300".into())],
        ..Default::default()
    })
    .await;
    let set = answer(
        &bot,
        personality(
            ALICE,
            "update",
            vec![
                text_option("personality", "Aria"),
                text_option("temperature", "0.4"),
                text_option("max_tokens", "200"),
            ],
        ),
    )
    .await;
    assert_eq!(
        content(&set),
        "Updated **Aria**: temperature 0.4, answers of at most 200 tokens.",
        "{set}"
    );
    for (option, value, error) in [
        (
            "max_tokens",
            "301",
            "max_tokens: 301 is more than this bot allows: at most 300 tokens an answer.",
        ),
        ("temperature", "2.5", "temperature: 2.5 is outside 0 to 2."),
        (
            "temperature",
            "warm",
            "temperature: \"warm\" is not a number (use e.g. 0.7).",
        ),
    ] {
        let refused = answer(
            &bot,
            personality(
                ALICE,
                "update",
                vec![
                    text_option("personality", "Aria"),
                    text_option(option, value),
                ],
            ),
        )
        .await;
        assert_eq!(content(&refused), error, "{refused}");
    }

    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard hi"))
        .await;
    let requests = bot.llm.wait_for_requests(1, WAIT).await;
    assert_eq!(
        requests[0]["temperature"].as_f64(),
        Some(0.4),
        "refused updates changed nothing"
    );
    assert_eq!(requests[0]["max_tokens"], 200);

    // The command line sets and shows them too; "default" goes back to the host's cap.
    let output = bot
        .cli(&[
            "personality",
            "update",
            "bard",
            "--server",
            "8001",
            "--temperature",
            "1.5",
            "--max-tokens",
            "default",
        ])
        .await;
    assert!(output.status.success(), "{output:?}");
    let output = bot
        .cli(&["personality", "info", "bard", "--server", "8001", "--json"])
        .await;
    let info: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(info["temperature"], 1.5);
    assert_eq!(info["max_tokens"], Value::Null);
    let refused = bot
        .cli(&[
            "personality",
            "update",
            "bard",
            "--server",
            "8001",
            "--max-tokens",
            "301",
        ])
        .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("at most 300 tokens"),
        "{refused:?}"
    );
    bot.assert_valid_requests();
}
