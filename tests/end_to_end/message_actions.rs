//! Message actions end to end, from the "Apps" menu on a personality's answer: "Personality
//! info" for any member; "Delete answer" for the member it answered, those who manage the
//! personality and members who manage messages; "Regenerate" for the member it answered,
//! edited in place. Refusals leave the answer as it was.

use personae_fakes::discord::{MessageCommandSpec, MessageSpec};
use personae_testkit::bot::{create_step, Bot, BotOptions, ADMIN, WAIT};
use personae_testkit::users::{answer, personality, text_option, MEMBER_PERMISSIONS};
use serde_json::{json, Value};

/// Owns Aria.
const OWNER: &str = "7001";
/// Talks to Aria: her answers are to this member.
const MEMBER: &str = "7002";
/// Has Manage Messages in the channel (and not Manage Server).
const MODERATOR: &str = "7003";
/// Another member, with neither Manage Messages nor Manage Server.
const OTHER: &str = "7004";
/// Every permission but Manage Server (32) and Manage Messages (8192).
const PLAIN_PERMISSIONS: &str = "2147475423";
const NOT_AN_ANSWER: &str = "That message isn't a personality's answer.";

async fn aria_bot() -> Bot {
    Bot::start_with(BotOptions {
        setup: vec![create_step("Aria", &["--prompt", "You are Aria."])],
        ..Default::default()
    })
    .await
}

/// The ids of the webhook messages in channel 6001, oldest first.
fn answer_ids(bot: &Bot) -> Vec<String> {
    bot.discord
        .channel_messages("6001")
        .into_iter()
        .filter(|m| m["webhook_id"].is_string())
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

fn content_of(bot: &Bot, message_id: &str) -> Option<String> {
    bot.discord
        .message(message_id)
        .and_then(|m| m["content"].as_str().map(str::to_owned))
}

/// MEMBER asks Aria; she answers `reply` in `parts` messages. Returns MEMBER's message and
/// the answer's messages, once the answer is recorded.
async fn ask_aria(bot: &Bot, reply: &str, parts: usize) -> (String, Vec<String>) {
    let before = answer_ids(bot).len();
    bot.llm.reply_with(reply);
    let trigger = bot
        .discord
        .send_message(MessageSpec::new("6001", MEMBER, "member", "@aria hello"))
        .await;
    bot.discord
        .wait_until("Aria's answer", WAIT, |_| {
            answer_ids(bot).len() >= before + parts
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- bot logs ---\n{}", bot.logs()));
    let ids = answer_ids(bot).split_off(before);
    assert_eq!(ids.len(), parts, "{ids:?}");
    bot.wait_tracked(&ids[parts - 1]).await;
    (trigger, ids)
}

/// A text the bot sends as two messages.
fn two_messages_long() -> String {
    let paragraph = "word ".repeat(250) + "end.";
    format!("{paragraph}\n\n{paragraph}")
}

/// `user` (with `permissions`) picks `action` on `target`; returns the interaction id and
/// the bot's callback.
async fn act(
    bot: &Bot,
    user: &str,
    permissions: &str,
    action: &str,
    target: &str,
) -> (String, Value) {
    let spec = MessageCommandSpec {
        user_id: user.to_owned(),
        user_name: format!("user{user}"),
        permissions: permissions.to_owned(),
        name: action.to_owned(),
        target_id: target.to_owned(),
        ..MessageCommandSpec::default()
    };
    let id = bot.discord.message_command(spec).await;
    let response = bot
        .discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- bot logs ---\n{}", bot.logs()));
    (id, response)
}

/// The text the member finally reads: the callback's, or after a deferral the follow-up's.
async fn final_text(bot: &Bot, id: &str, response: &Value) -> String {
    assert_eq!(
        response["data"]["flags"].as_u64().unwrap_or(0) & 64,
        64,
        "only the member sees it: {response}"
    );
    if response["type"] == 5 {
        let followups = bot
            .discord
            .wait_interaction_followups(id, 1, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e}\n--- bot logs ---\n{}", bot.logs()));
        assert_eq!(followups[0]["flags"].as_u64().unwrap_or(0) & 64, 64);
        followups[0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        response["data"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// How many answer records and message mappings name any of `ids`.
fn recorded(bot: &Bot, ids: &[String]) -> (i64, i64) {
    let conn = bot.db();
    let list = ids.join(",");
    let messages = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM conversation_messages WHERE message_id IN ({list})"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    let answers = conn
        .query_row(
            &format!(
                "SELECT COUNT(DISTINCT answer_id) FROM conversation_messages \
                 WHERE message_id IN ({list}) AND answer_id IS NOT NULL"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    (messages, answers)
}

#[tokio::test]
async fn any_member_sees_which_personality_answered_whom_with_which_revision_and_model() {
    let bot = aria_bot().await;
    let registered = bot.discord.registered_commands();
    for name in ["Personality info", "Delete answer", "Regenerate"] {
        assert!(
            registered
                .iter()
                .any(|c| c["name"] == name && c["type"] == 3),
            "{name} is a message command: {registered:?}"
        );
    }
    let (_, ids) = ask_aria(&bot, "Hello, member.", 1).await;

    let (id, response) = act(&bot, OTHER, PLAIN_PERMISSIONS, "Personality info", &ids[0]).await;
    let text = final_text(&bot, &id, &response).await;
    assert!(
        text.starts_with("**Aria** (Aria) answered <@7002>.\nRevision: 1\nModel: test-default-model\nThe model took "),
        "{text}"
    );
    assert!(text.ends_with(" ms."), "{text}");
    assert_eq!(
        response["data"]["allowed_mentions"]["parse"],
        json!([]),
        "the mention pings nobody"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn actions_on_a_message_that_is_not_an_answer_are_refused() {
    let bot = aria_bot().await;
    let (trigger, ids) = ask_aria(&bot, "Hello, member.", 1).await;
    for action in ["Personality info", "Delete answer", "Regenerate"] {
        let (id, response) = act(&bot, MEMBER, PLAIN_PERMISSIONS, action, &trigger).await;
        assert_eq!(final_text(&bot, &id, &response).await, NOT_AN_ANSWER);
    }
    assert!(bot.discord.message(&trigger).is_some());
    assert_eq!(content_of(&bot, &ids[0]).as_deref(), Some("Hello, member."));
    assert_eq!(bot.llm.requests().len(), 1, "nothing was asked again");
    bot.assert_valid_requests();
}

#[tokio::test]
async fn the_answered_member_the_owner_an_admin_and_a_message_manager_delete_a_whole_answer() {
    let bot = aria_bot().await;
    for (actor, permissions) in [
        (MEMBER, PLAIN_PERMISSIONS),
        (OWNER, PLAIN_PERMISSIONS),
        (ADMIN, PLAIN_PERMISSIONS),
        (MODERATOR, MEMBER_PERMISSIONS),
    ] {
        let (trigger, ids) = ask_aria(&bot, &two_messages_long(), 2).await;
        assert_eq!(recorded(&bot, &ids), (2, 1));
        let (id, response) = act(&bot, actor, permissions, "Delete answer", &ids[1]).await;
        assert_eq!(
            final_text(&bot, &id, &response).await,
            "Aria's answer was deleted.",
            "deleted by {actor}"
        );
        for message in &ids {
            assert!(
                bot.discord.message(message).is_none(),
                "{actor} deleted message {message}"
            );
        }
        assert!(bot.discord.message(&trigger).is_some(), "only the answer");
        assert_eq!(recorded(&bot, &ids), (0, 0), "its record is forgotten");
    }
    let deletes = bot
        .discord
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect::<Vec<_>>();
    assert_eq!(deletes.len(), 8, "each message deleted once");
    assert!(
        deletes
            .iter()
            .all(|r| r.api_path().starts_with("/webhooks/")),
        "through the webhook that sent them: {deletes:#?}"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn another_member_may_not_delete_or_regenerate_an_answer() {
    let bot = aria_bot().await;
    let (_, ids) = ask_aria(&bot, "Hello, member.", 1).await;
    let (id, response) = act(&bot, OTHER, PLAIN_PERMISSIONS, "Delete answer", &ids[0]).await;
    let text = final_text(&bot, &id, &response).await;
    assert!(
        text.starts_with("Only the member it answered, those who manage the personality"),
        "{text}"
    );
    let (id, response) = act(&bot, OTHER, PLAIN_PERMISSIONS, "Regenerate", &ids[0]).await;
    assert_eq!(
        final_text(&bot, &id, &response).await,
        "Only the member it answered may regenerate this answer."
    );
    // Managing the personality is not enough to write someone else's answer again.
    let (id, response) = act(&bot, OWNER, MEMBER_PERMISSIONS, "Regenerate", &ids[0]).await;
    assert_eq!(
        final_text(&bot, &id, &response).await,
        "Only the member it answered may regenerate this answer."
    );

    assert_eq!(content_of(&bot, &ids[0]).as_deref(), Some("Hello, member."));
    assert_eq!(recorded(&bot, &ids), (1, 1));
    assert_eq!(bot.llm.requests().len(), 1, "nothing was asked again");
    assert!(bot.discord.webhook_edits().is_empty());
    bot.assert_valid_requests();
}

#[tokio::test]
async fn the_answered_member_regenerates_an_answer_in_place_with_the_current_revision() {
    let bot = aria_bot().await;
    let (_, ids) = ask_aria(&bot, &two_messages_long(), 2).await;
    // The owner changes the prompt between the answer and its regeneration.
    let updated = answer(
        &bot,
        personality(
            OWNER,
            "update",
            vec![
                text_option("personality", "aria"),
                text_option("prompt", "You are Aria, a poet."),
            ],
        ),
    )
    .await;
    assert!(
        updated["data"]["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("Updated")),
        "{updated}"
    );

    bot.llm.reply_with("A shorter second answer.");
    let (id, response) = act(&bot, MEMBER, PLAIN_PERMISSIONS, "Regenerate", &ids[0]).await;
    assert_eq!(response["type"], 5, "deferred while the model writes");
    assert_eq!(
        final_text(&bot, &id, &response).await,
        "Aria's answer was written again."
    );
    assert_eq!(
        content_of(&bot, &ids[0]).as_deref(),
        Some("A shorter second answer."),
        "edited in place"
    );
    assert!(
        bot.discord.message(&ids[1]).is_none(),
        "the message it no longer needs is deleted"
    );
    assert_eq!(
        bot.discord.webhook_executions().len(),
        2,
        "nothing new sent"
    );
    assert_eq!(bot.discord.webhook_edits().len(), 1);

    let requests = bot.llm.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1]["messages"][0]["content"], "You are Aria, a poet.",
        "the current revision answers"
    );
    let said = requests[1]["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(said["role"], "user");
    assert!(
        said["content"]
            .as_str()
            .is_some_and(|c| c.ends_with("hello")
                && !c.contains("@aria")
                && !c.contains("word word")),
        "the same message, without the earlier answer: {said}"
    );

    let (id, response) = act(&bot, OTHER, PLAIN_PERMISSIONS, "Personality info", &ids[0]).await;
    let info = final_text(&bot, &id, &response).await;
    assert!(info.contains("\nRevision: 2\n"), "{info}");
    assert_eq!(recorded(&bot, &ids), (1, 1));

    // A longer answer gets the messages it needs: the first edited, the rest sent.
    bot.llm.reply_with(two_messages_long());
    let (id, response) = act(&bot, MEMBER, PLAIN_PERMISSIONS, "Regenerate", &ids[0]).await;
    final_text(&bot, &id, &response).await;
    let now = answer_ids(&bot);
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(now[0], ids[0]);
    assert_eq!(recorded(&bot, &now), (2, 1));
    assert!(
        content_of(&bot, &now[0]).is_some_and(|c| c.starts_with("word word")),
        "the first message shows the new answer's start"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_regeneration_sends_anew_the_part_a_moderator_deleted() {
    let bot = aria_bot().await;
    let (_, ids) = ask_aria(&bot, &two_messages_long(), 2).await;
    assert!(
        bot.discord.delete_message(&ids[1]),
        "a moderator deletes the second part"
    );

    bot.llm.reply_with(two_messages_long());
    let (id, response) = act(&bot, MEMBER, PLAIN_PERMISSIONS, "Regenerate", &ids[0]).await;
    assert_eq!(
        final_text(&bot, &id, &response).await,
        "Aria's answer was written again."
    );
    let now = answer_ids(&bot);
    assert_eq!(now.len(), 2, "{now:?}");
    assert_eq!(now[0], ids[0], "the part still there is edited in place");
    assert_ne!(now[1], ids[1], "the deleted part is sent anew");
    assert!(content_of(&bot, &now[1]).is_some_and(|c| c.ends_with("end.")));
    assert_eq!(
        recorded(&bot, &now),
        (2, 1),
        "the record names the new part"
    );
    assert_eq!(recorded(&bot, &ids[1..]), (0, 0));

    let (id, response) = act(&bot, OTHER, PLAIN_PERMISSIONS, "Personality info", &now[1]).await;
    let info = final_text(&bot, &id, &response).await;
    assert!(info.contains("Aria"), "{info}");
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_regeneration_counts_against_the_members_call_limit() {
    let bot = Bot::start_with(BotOptions {
        setup: vec![create_step("Aria", &["--prompt", "You are Aria."])],
        env: vec![("LLM_CALLS_PER_MINUTE".to_owned(), "1".to_owned())],
        ..Default::default()
    })
    .await;
    let (_, ids) = ask_aria(&bot, "Hello, member.", 1).await;
    let (id, response) = act(&bot, MEMBER, PLAIN_PERMISSIONS, "Regenerate", &ids[0]).await;
    let text = final_text(&bot, &id, &response).await;
    assert!(
        text.starts_with("You're talking faster than the personalities can think."),
        "{text}"
    );
    assert_eq!(content_of(&bot, &ids[0]).as_deref(), Some("Hello, member."));
    assert_eq!(bot.llm.requests().len(), 1);
    bot.assert_valid_requests();
}

#[tokio::test]
async fn in_a_dm_the_bots_own_messages_are_written_again_and_deleted() {
    let bot = aria_bot().await;
    bot.discord.add_dm_channel("6900", OWNER, "owner");
    bot.llm.reply_with("A private answer.");
    bot.discord
        .send_message(MessageSpec::dm("6900", OWNER, "owner", "@aria hello"))
        .await;
    let sent = bot
        .discord
        .wait_for_message(
            |m| m["channel_id"] == "6900" && m["author"]["bot"] == true,
            WAIT,
        )
        .await
        .unwrap();
    let sent = sent["id"].as_str().unwrap().to_owned();
    bot.wait_tracked(&sent).await;
    let in_dm = |action: &str| MessageCommandSpec {
        user_id: OWNER.to_owned(),
        user_name: "owner".to_owned(),
        channel_id: "6900".to_owned(),
        guild_id: None,
        name: action.to_owned(),
        target_id: sent.clone(),
        ..MessageCommandSpec::default()
    };

    bot.llm.reply_with("Said again, privately.");
    let id = bot.discord.message_command(in_dm("Regenerate")).await;
    let response = bot
        .discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap();
    assert_eq!(
        final_text(&bot, &id, &response).await,
        "Aria's answer was written again."
    );
    assert_eq!(
        content_of(&bot, &sent).as_deref(),
        Some("**Aria:** Said again, privately.")
    );

    let id = bot.discord.message_command(in_dm("Delete answer")).await;
    let response = bot
        .discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap();
    assert_eq!(
        final_text(&bot, &id, &response).await,
        "Aria's answer was deleted."
    );
    assert!(bot.discord.message(&sent).is_none());
    assert!(
        bot.discord
            .requests()
            .iter()
            .any(|r| r.is("DELETE", &format!("/channels/6900/messages/{sent}"))),
        "the bot deletes its own message"
    );
    assert!(bot.discord.webhook_executions().is_empty());
    bot.assert_valid_requests();
}
