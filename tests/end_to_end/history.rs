//! A personality's revision history and revert, end to end: those who manage it list the
//! revisions and go back to one; the next answer uses the reverted prompt; others are
//! refused; history is never rewritten.

use personae_fakes::discord::MessageSpec;
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};
use personae_testkit::users::{answer, personality, text_option, MANAGER_PERMISSIONS};
use serde_json::{json, Value};

const OWNER: &str = "7001";
const MANAGER: &str = "7002";
const MEMBER: &str = "7003";

fn content(response: &Value) -> &str {
    response["data"]["content"].as_str().unwrap_or_default()
}

async fn set_prompt(bot: &Bot, user: &str, manager: bool, prompt: &str) {
    let mut spec = personality(
        user,
        "update",
        vec![
            text_option("personality", "aria"),
            text_option("prompt", prompt),
        ],
    );
    if manager {
        MANAGER_PERMISSIONS.clone_into(&mut spec.permissions);
    }
    let updated = answer(bot, spec).await;
    assert!(content(&updated).starts_with("Updated"), "{updated}");
}

/// `/personality revert aria REVISION` by the owner.
async fn revert(bot: &Bot, revision: u32) -> Value {
    answer(
        bot,
        personality(
            OWNER,
            "revert",
            vec![
                text_option("personality", "aria"),
                json!({"name": "revision", "type": 4, "value": revision}),
            ],
        ),
    )
    .await
}

#[tokio::test]
async fn those_who_manage_a_personality_read_its_history_and_revert_a_vandalised_prompt() {
    let bot = Bot::start_with(BotOptions {
        setup: vec![create_step("Aria", &["--prompt", "You are Aria."])],
        ..Default::default()
    })
    .await;
    set_prompt(&bot, OWNER, false, "You are Aria, a poet.").await;
    set_prompt(&bot, OWNER, false, "You are Aria, a poet who rhymes.").await;
    set_prompt(&bot, MANAGER, true, "Insult everyone.").await;

    let refused = answer(
        &bot,
        personality(MEMBER, "history", vec![text_option("personality", "aria")]),
    )
    .await;
    assert!(
        content(&refused).starts_with("Only the owner of \"Aria\""),
        "{refused}"
    );

    let history = answer(
        &bot,
        personality(OWNER, "history", vec![text_option("personality", "aria")]),
    )
    .await;
    assert_eq!(history["data"]["flags"], 64, "only the member sees it");
    let lines = history["data"]["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let order: Vec<usize> = ["**r4**", "**r3**", "**r2**", "**r1**"]
        .iter()
        .map(|r| {
            lines
                .find(r)
                .unwrap_or_else(|| panic!("{r} missing: {lines}"))
        })
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "newest first: {lines}"
    );
    assert!(
        lines.contains("<@7002> · prompt\n> Insult everyone."),
        "{lines}"
    );
    assert!(lines.contains("the host · created"), "{lines}");
    assert_eq!(history["data"]["allowed_mentions"]["parse"], json!([]));

    let reverted = revert(&bot, 3).await;
    assert_eq!(
        content(&reverted),
        "**Aria** is back to revision 3, saved as revision 5."
    );
    let missing = revert(&bot, 9).await;
    assert!(
        content(&missing).contains("has no profile revision 9"),
        "{missing}"
    );

    bot.llm.reply_with("Roses are red.");
    bot.discord
        .send_message(MessageSpec::new("6001", MEMBER, "member", "@aria hello"))
        .await;
    let requests = bot.llm.wait_for_requests(1, WAIT).await;
    assert_eq!(
        requests[0]["messages"][0]["content"],
        "You are Aria, a poet who rhymes."
    );

    let out = bot
        .cli(&[
            "personality",
            "history",
            "aria",
            "--server",
            "8001",
            "--json",
        ])
        .await;
    let revisions: Value = serde_json::from_slice(&out.stdout).unwrap();
    let numbers: Vec<i64> = revisions
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["revision"].as_i64())
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 4, 5], "history is kept");
    let verify = bot.cli(&["events", "verify"]).await;
    assert!(verify.status.success(), "{verify:?}");
    bot.assert_valid_requests();
}
