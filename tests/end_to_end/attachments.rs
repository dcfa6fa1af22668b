//! End to end: images and text files attached to a message reach the model; nothing else
//! is fetched.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use personae_fakes::discord::{AttachmentSpec, MessageSpec};
use personae_testkit::bot::{create_step, Bot, BotOptions, WAIT};
use serde_json::Value;

/// A PNG's first bytes: enough for a content type, not an image anyone looks at.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\nfake image bytes";

fn bot_options() -> BotOptions {
    BotOptions {
        setup: vec![
            create_step("Aria", &[]),
            create_step("Bard", &["--model", "text-only-model"]),
        ],
        env: vec![("LLM_VISION_MODELS".into(), "test-default-model".into())],
        ..Default::default()
    }
}

/// The last message of the `n`th LLM request (waiting for it).
async fn last_message(bot: &Bot, n: usize) -> Value {
    let requests = bot.llm.wait_for_requests(n, WAIT).await;
    requests[n - 1]["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .expect("a last message")
}

#[tokio::test]
async fn an_image_reaches_a_vision_model_as_a_data_url_and_only_its_name_reaches_another() {
    let bot = Bot::start_with(bot_options()).await;
    bot.discord
        .send_message(
            MessageSpec::new("6001", "7001", "alice", "@aria what is this?")
                .with_attachment(AttachmentSpec::new("cat.png", "image/png", PNG)),
        )
        .await;
    let seen = last_message(&bot, 1).await;
    let parts = seen["content"].as_array().expect("content parts");
    assert_eq!(parts[0]["type"], "text");
    assert!(parts[0]["text"]
        .as_str()
        .unwrap()
        .ends_with("what is this?"));
    assert_eq!(parts[1]["type"], "image_url");
    let url = parts[1]["image_url"]["url"].as_str().unwrap();
    assert_eq!(
        url, "data:image/png;base64,iVBORw0KGgpmYWtlIGltYWdlIGJ5dGVz",
        "the downloaded bytes, base64"
    );

    bot.discord
        .send_message(
            MessageSpec::new("6001", "7001", "alice", "@bard and this?")
                .with_attachment(AttachmentSpec::new("cat.png", "image/png", PNG)),
        )
        .await;
    let seen = last_message(&bot, 2).await;
    let content = seen["content"]
        .as_str()
        .expect("plain text for a model that can't see");
    assert!(
        content.contains("[Attached file cat.png: an image this model can't see]"),
        "{content}"
    );
    assert_eq!(
        bot.discord.attachment_downloads().len(),
        1,
        "fetched for Aria only"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn a_text_file_is_quoted_with_its_name_and_a_message_with_only_a_file_is_answered() {
    let bot = Bot::start_with(bot_options()).await;
    bot.discord
        .send_message(
            MessageSpec::new("6001", "7001", "alice", "@bard").with_attachment(
                AttachmentSpec::new(
                    "notes.txt",
                    "text/plain; charset=utf-8",
                    "Buy lute strings.\nTune the lute.",
                ),
            ),
        )
        .await;
    let seen = last_message(&bot, 1).await;
    let content = seen["content"].as_str().unwrap();
    assert!(
        content.contains(
            "Attached file notes.txt:\n--- notes.txt ---\nBuy lute strings.\nTune the lute.\n--- end of notes.txt ---"
        ),
        "{content}"
    );
    bot.wait_webhook_executions(1).await;
    bot.assert_valid_requests();
}

#[tokio::test]
async fn hostile_attachments_are_never_fetched() {
    // Anything that connects here was fetched from outside Discord's attachment hosts.
    let outside = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outside_url = format!("http://{}", outside.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    let listener = tokio::spawn(async move {
        while outside.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    let bot = Bot::start_with(bot_options()).await;
    let too_big = AttachmentSpec {
        size: Some(5_000_000),
        ..AttachmentSpec::new("huge.txt", "text/plain", "small really")
    };
    let program = AttachmentSpec::new("setup.exe", "application/x-msdownload", "MZ");
    let elsewhere = AttachmentSpec {
        url: Some(format!("{outside_url}/cat.png")),
        ..AttachmentSpec::new("cat.png", "image/png", PNG)
    };
    bot.discord
        .send_message(
            MessageSpec::new(
                "6001",
                "7001",
                "alice",
                &format!("@aria look at {outside_url}/dog.png please"),
            )
            .with_attachment(too_big)
            .with_attachment(program)
            .with_attachment(elsewhere),
        )
        .await;
    let seen = last_message(&bot, 1).await;
    let text = seen["content"].to_string();
    for expected in [
        "[Attached file huge.txt: a text file too large to send]",
        "[Attached file setup.exe: a kind of file that isn't sent to the model]",
        "[Attached file cat.png: an image that couldn't be read]",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(!text.contains("data:"), "{text}");
    bot.wait_webhook_executions(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(bot.discord.attachment_downloads().is_empty());
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing fetched from outside"
    );
    listener.abort();
}
