//! Restoring a removed personality, end to end: on Discord its former owner and its server's
//! managers bring it back, with every alias still free (the reply lists the others), and it
//! answers mentions again at once; anyone else is refused without seeing its prompt. On the
//! command line the host does the same. `events verify` holds after restores and reverts.

use personae_fakes::discord::MessageSpec;
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};
use personae_testkit::users::{answer, personality, text_option, MANAGER_PERMISSIONS};
use serde_json::Value;

use crate::host::{ok, personae, refused};

const OWNER: &str = "7001";
const MANAGER: &str = "7002";
const STRANGER: &str = "7003";
const PROMPT: &str = "You are Aria; the secret word is thistle.";

fn content(response: &Value) -> &str {
    response["data"]["content"].as_str().unwrap_or_default()
}

/// `/personality restore name:NAME` by `user`.
async fn restore(bot: &Bot, user: &str, manager: bool, name: &str) -> Value {
    let mut spec = personality(user, "restore", vec![text_option("name", name)]);
    if manager {
        MANAGER_PERMISSIONS.clone_into(&mut spec.permissions);
    }
    answer(bot, spec).await
}

/// `personae personality remove NAME --server 8001` as a setup step.
fn remove_step(name: &str) -> Vec<String> {
    ["personality", "remove", name, "--server", "8001"]
        .iter()
        .map(|s| (*s).to_string())
        .collect()
}

#[tokio::test]
async fn a_removed_personality_comes_back_for_its_owner_without_the_alias_taken_meanwhile() {
    let bot = Bot::start_with(BotOptions {
        setup: vec![
            create_step(
                "Aria",
                &["--prompt", PROMPT, "--alias", "bard", "--alias", "muse"],
            ),
            remove_step("aria"),
            create_step("Cleo", &["--alias", "bard"]),
            create_step("Bran", &[]),
            remove_step("bran"),
        ],
        ..Default::default()
    })
    .await;

    let refused = restore(&bot, STRANGER, false, "aria").await;
    assert_eq!(
        content(&refused),
        "Only the former owner of \"Aria\", the managers of its server or a bot admin can restore it."
    );
    assert_eq!(refused["data"]["flags"], 64, "only the member sees it");

    let by_manager = restore(&bot, MANAGER, true, "bran").await;
    assert_eq!(
        content(&by_manager),
        "Restored **Bran** — talk to it with @bran."
    );

    let restored = restore(&bot, OWNER, false, "Aria").await;
    assert_eq!(
        content(&restored),
        "Restored **Aria** — talk to it with @aria or @muse.\n\
         Not restored, because other personalities took them meanwhile: @bard."
    );
    assert_eq!(restored["data"]["flags"], 64, "only the member sees it");
    let again = restore(&bot, OWNER, false, "aria").await;
    assert_eq!(
        content(&again),
        "\"Aria\" is not removed: there is nothing to restore."
    );

    bot.llm.reply_with("I'm back.");
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            STRANGER,
            "stranger",
            "@muse hello",
        ))
        .await;
    let requests = bot.llm.wait_for_requests(1, WAIT).await;
    assert_eq!(requests[0]["messages"][0]["content"], PROMPT);
    let sent = bot.wait_webhook_executions(1).await;
    let body = sent[0].body.as_ref().expect("a JSON body");
    assert_eq!(body["username"], "Aria");
    assert_eq!(body["content"], "I'm back.");

    let out = bot
        .cli(&["events", "list", "--type", "PersonalityRestored", "--json"])
        .await;
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    let actors: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert_eq!(actors, [format!("user:{MANAGER}"), format!("user:{OWNER}")]);
    let verify = bot.cli(&["events", "verify"]).await;
    assert!(verify.status.success(), "{verify:?}");
    bot.assert_valid_requests();
}

#[test]
fn the_host_restores_a_removed_personality_and_its_history_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let at_home = ["--server", "8001"];
    let create = |name: &str, alias: &str| {
        let args = ["personality", "create", name, "--owner", "7001"];
        ok(d, &[&args[..], &at_home, &["--alias", alias]].concat())
    };
    create("Aria", "bard");
    ok(
        d,
        &["personality", "alias", "aria", "muse", "--server", "8001"],
    );
    ok(d, &["personality", "remove", "aria", "--server", "8001"]);
    create("Cleo", "bard");

    let global_only = refused(d, &["personality", "restore", "aria"]);
    assert!(
        global_only.contains("No personality called \"aria\" was removed here."),
        "{global_only}"
    );
    assert!(global_only.contains("--server"), "{global_only}");

    let out = ok(d, &["personality", "restore", "aria", "--server", "8001"]);
    assert!(
        out.starts_with("Restored Aria (") && out.contains("server 8001, version 4"),
        "{out}"
    );
    assert!(out.contains("it answers to: @muse."), "{out}");
    assert!(
        out.contains("Not restored, taken by other personalities meanwhile: @bard."),
        "{out}"
    );
    let again = refused(d, &["personality", "restore", "aria", "--server", "8001"]);
    assert!(again.contains("is not removed"), "{again}");

    // Reverted and removed again, then restored again: one history, which still verifies.
    ok(
        d,
        &[
            "personality",
            "update",
            "aria",
            "--server",
            "8001",
            "--prompt",
            "Shout.",
        ],
    );
    ok(
        d,
        &["personality", "revert", "aria", "1", "--server", "8001"],
    );
    ok(d, &["personality", "remove", "aria", "--server", "8001"]);
    let json: Value = serde_json::from_str(&ok(
        d,
        &[
            "personality",
            "restore",
            "aria",
            "--server",
            "8001",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(json["personality"]["name"], "Aria");
    assert_eq!(json["personality"]["version"], 8);
    assert_eq!(json["personality"]["aliases"], serde_json::json!(["muse"]));
    assert_eq!(json["left_out"], serde_json::json!([]));
    let verify = personae(d, &["events", "verify"]);
    assert!(verify.status.success(), "{verify:?}");
}
