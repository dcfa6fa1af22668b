//! Discord, LLM and storage faults: retried where a retry helps, a clear message where it
//! doesn't, never a half-written change.

use std::time::Duration;

use personae::application::{ProfileUpdate, Registration, ServiceError};
use personae_fakes::discord::{MessageSpec, RequestMatcher};
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};
use personae_testkit::{alice, spawn_app};
use serde_json::json;

fn aria() -> BotOptions {
    BotOptions {
        setup: vec![create_step(
            "Aria",
            &["--alias", "bard", "--prompt", "You are Aria."],
        )],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_429_on_a_webhook_execution_is_retried_after_retry_after() {
    let bot = Bot::start_with(aria()).await;
    bot.discord.fail_next(
        RequestMatcher::route("POST", "/webhooks/"),
        429,
        json!({"message": "You are being rate limited.", "retry_after": 0.4, "global": false}),
        1,
    );
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard hi"))
        .await;
    let executions = bot.wait_webhook_executions(2).await;
    assert_eq!((executions[0].status, executions[1].status), (429, 200));
    let waited = executions[1].at.duration_since(executions[0].at);
    assert!(
        waited >= Duration::from_millis(400),
        "retried after {waited:?}, before retry_after"
    );
    assert!(waited < Duration::from_secs(5), "retried after {waited:?}");
    assert_eq!(
        executions[0].body, executions[1].body,
        "the same message, sent once it could be"
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_back_off_and_the_retries_are_bounded() {
    let bot = Bot::start_with(aria()).await;
    bot.discord.fail_next(
        RequestMatcher::route("POST", "/webhooks/"),
        500,
        json!({"message": "oops", "code": 0}),
        2,
    );
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard one"))
        .await;
    let executions = bot.wait_webhook_executions(3).await;
    let statuses: Vec<u16> = executions.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    let first_gap = executions[1].at.duration_since(executions[0].at);
    let second_gap = executions[2].at.duration_since(executions[1].at);
    assert!(
        second_gap > first_gap,
        "back-off grows: {first_gap:?} then {second_gap:?}"
    );

    bot.discord.fail_next(
        RequestMatcher::route("POST", "/webhooks/"),
        502,
        json!({"message": "down", "code": 0}),
        100,
    );
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard two"))
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let failed = bot
        .discord
        .webhook_executions()
        .into_iter()
        .filter(|r| r.status == 502)
        .count();
    assert_eq!(failed, 5, "one try and four retries, then it gives up");
    assert!(
        bot.logs().contains("could not answer a message"),
        "the give-up is logged"
    );
}

#[tokio::test]
async fn personality_output_never_pings_anyone() {
    let bot = Bot::start_with(aria()).await;
    bot.llm
        .reply_with("Hey @everyone and @here, look at <@7002> and <@&123>!");
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "@bard ping them all",
        ))
        .await;
    let executions = bot.wait_webhook_executions(1).await;
    for execution in &executions {
        let body = execution.body.as_ref().unwrap();
        assert_eq!(body["allowed_mentions"], json!({"parse": []}), "{body}");
    }
    assert_eq!(
        executions[0].body.as_ref().unwrap()["content"],
        "Hey @everyone and @here, look at <@7002> and <@&123>!"
    );
}

#[tokio::test]
async fn a_user_over_the_llm_call_limit_gets_a_polite_notice_and_no_llm_call() {
    let mut options = aria();
    options
        .env
        .push(("LLM_CALLS_PER_MINUTE".into(), "2".into()));
    let bot = Bot::start_with(options).await;
    for i in 0..2 {
        bot.discord
            .send_message(MessageSpec::new(
                "6001",
                "7001",
                "alice",
                &format!("@bard {i}"),
            ))
            .await;
        bot.wait_webhook_executions(i + 1).await;
    }
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard three"))
        .await;
    let notice = bot
        .discord
        .wait_for_request(|r| r.is("POST", "/channels/6001/messages"), WAIT)
        .await
        .unwrap();
    let body = notice.body.unwrap();
    assert!(
        body["content"].as_str().unwrap().contains("Please wait"),
        "{body}"
    );
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    assert_eq!(
        bot.llm.requests().len(),
        2,
        "the third message cost no LLM call"
    );
    // Another user is not limited.
    bot.discord
        .send_message(MessageSpec::new("6001", "7002", "bob", "@bard me too"))
        .await;
    bot.wait_webhook_executions(3).await;
    bot.assert_valid_requests();
}

#[tokio::test]
async fn sigterm_lets_the_answer_in_progress_finish_closes_the_gateway_and_a_restart_loses_nothing()
{
    let mut bot = Bot::start_with(aria()).await;
    bot.llm.delay(Duration::from_millis(1500));
    bot.discord
        .send_message(MessageSpec::new(
            "6001",
            "7001",
            "alice",
            "@bard slow answer",
        ))
        .await;
    bot.llm.wait_for_requests(1, WAIT).await;
    let status = bot.terminate().await;
    assert!(status.success(), "{status:?}\n{}", bot.logs());
    assert_eq!(
        bot.discord.webhook_executions().len(),
        1,
        "the answer in progress was sent before exiting"
    );
    assert!(
        bot.discord
            .gateway_client_close_codes()
            .contains(&Some(1000)),
        "the gateway was closed cleanly"
    );
    let conn = bot.db();
    let last: i64 = conn
        .query_row("SELECT MAX(sequence) FROM events", [], |r| r.get(0))
        .unwrap();
    let checkpoints: Vec<(String, i64)> = conn
        .prepare("SELECT subscriber, sequence FROM subscriber_checkpoints ORDER BY subscriber")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        checkpoints,
        vec![
            ("audit".into(), last),
            ("conversation-cleanup".into(), last)
        ]
    );
    let tracked: i64 = conn
        .query_row("SELECT COUNT(*) FROM conversation_messages", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        tracked, 1,
        "the sent message is tracked, so replies to it still resolve after a restart"
    );
}

#[tokio::test]
async fn a_busy_database_is_waited_for_not_reported_to_the_user() {
    let t = spawn_app().await;
    let path = t.db_path();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let mut conn = rusqlite::Connection::open(path).unwrap();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        tx.commit().unwrap();
    });
    locked_rx.recv().unwrap();
    let started = std::time::Instant::now();
    let created = t.create("Aria", alice(), &[]).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "it did wait for the other writer"
    );
    assert_eq!(created.version(), 1);
    holder.join().unwrap();
}

#[tokio::test]
async fn a_full_or_read_only_database_gives_a_clear_error_and_nothing_half_written() {
    let t = spawn_app().await;
    t.create("Aria", alice(), &["bard"]).await;
    let before = t.snapshot();
    let ctx = t.as_user(alice());
    // No page may be added: the next write that needs space fails with SQLITE_FULL.
    t.app
        .db
        .call(|conn| {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            conn.pragma_update(None, "max_page_count", pages)?;
            Ok(())
        })
        .await
        .unwrap();
    let big = Registration {
        name: "Nova".into(),
        prompt: Some("p".repeat(6000)),
        aliases: (0..10).map(|i| format!("alias number {i}")).collect(),
        ..Default::default()
    };
    let mut full = None;
    for i in 0..50 {
        let attempt = Registration {
            name: format!("Nova{i}"),
            ..big.clone()
        };
        match t.app.service.register(&ctx, attempt).await {
            Ok(_) => {}
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let err = full.expect("the database filled up");
    let ServiceError::Storage(store) = &err else {
        panic!("{err}")
    };
    assert!(store.is_unwritable(), "{err}");
    assert!(err.to_string().contains("full"), "{err}");
    assert_eq!(
        t.app.service.verify().await.unwrap().mismatches,
        Vec::<String>::new(),
        "nothing half-written"
    );
    t.app
        .db
        .call(|conn| Ok(conn.pragma_update(None, "max_page_count", 1_073_741_823)?))
        .await
        .unwrap();

    t.app
        .db
        .call(|conn| Ok(conn.pragma_update(None, "query_only", true)?))
        .await
        .unwrap();
    let snapshot = t.snapshot();
    let err = t
        .app
        .service
        .update_profile(
            &ctx,
            "Aria",
            ProfileUpdate {
                prompt: Some("changed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let ServiceError::Storage(store) = &err else {
        panic!("{err}")
    };
    assert!(store.is_unwritable(), "{err}");
    assert_eq!(
        t.snapshot(),
        snapshot,
        "a read-only database is left as it was"
    );
    assert!(before.len() <= snapshot.len());
}

#[tokio::test]
async fn an_unexpected_failure_shows_a_short_message_with_the_interaction_id_and_is_logged() {
    let bot = Bot::start_with(aria()).await;
    bot.db()
        .execute_batch("CREATE TRIGGER broken BEFORE INSERT ON personalities BEGIN SELECT RAISE(ABORT, 'constraint gremlin'); END;")
        .unwrap();
    let spec = personae_fakes::discord::CommandSpec::new(
        "personality",
        vec![
            json!({"name": "create", "type": 1, "options": [{"name": "name", "type": 3, "value": "Nova"}]}),
        ],
    );
    let id = bot.discord.slash_command(spec).await;
    let response = bot
        .discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap();
    let content = response["data"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("Something went wrong on our side"),
        "{content}"
    );
    assert!(
        content.contains(&id),
        "the user gets the reference: {content}"
    );
    assert_eq!(response["data"]["flags"], json!(64));
    assert!(
        !content.contains("gremlin") && !content.contains("Sqlite"),
        "no internals shown: {content}"
    );
    let logs = bot.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("command failed"))
        .expect("the failure is logged");
    assert!(
        line.contains(&id) && line.contains("constraint gremlin"),
        "{line}"
    );
}

#[tokio::test]
async fn a_webhook_execution_that_loses_its_connection_never_puts_the_webhook_token_in_the_log() {
    for format in ["pretty", "json"] {
        let mut options = aria();
        options.env = vec![("LOG_FORMAT".to_owned(), format.to_owned())];
        let bot = Bot::start_with(options).await;
        bot.discord
            .drop_next(RequestMatcher::route("POST", "/webhooks/"), 1);
        bot.discord
            .send_message(MessageSpec::new("6001", "7001", "alice", "@bard hi"))
            .await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !bot.logs().contains("could not answer a message") {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{format}: the failure was never logged:\n{}",
                bot.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let logs = bot.logs();
        assert!(logs.contains("webhook execution failed"), "{logs}");
        let hooks = bot.discord.webhooks();
        assert!(!hooks.is_empty(), "the bot made its webhook");
        for hook in hooks {
            let token = hook["token"].as_str().expect("the webhook's token");
            assert!(
                !logs.contains(token),
                "{format}: the webhook token reached the log:\n{logs}"
            );
        }
    }
}
