//! The gateway websocket, driven by a plain websocket client: handshake,
//! heartbeats, dispatch shapes serenity accepts, resume with replay, and
//! closing.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use personae_fakes::discord::{CommandSpec, FakeDiscord, FakeDiscordConfig, MessageSpec};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

const WAIT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(fake: &FakeDiscord) -> Socket {
    let url = format!("{}?v=10", fake.gateway_url());
    let (socket, _) = tokio::time::timeout(WAIT, connect_async(url))
        .await
        .expect("connect in time")
        .expect("connect");
    socket
}

/// The next text frame as JSON; `Err` with the close code when the socket closes.
async fn next_frame(socket: &mut Socket) -> Result<Value, Option<u16>> {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                return Ok(serde_json::from_str(&text).expect("JSON frame"))
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

async fn send(socket: &mut Socket, payload: Value) {
    socket
        .send(Message::Text(payload.to_string()))
        .await
        .expect("send");
}

fn identify() -> Value {
    json!({"op": 2, "d": {"token": "Bot test-token", "intents": 33281,
        "properties": {"os": "linux", "browser": "test", "device": "test"}, "shard": [0, 1]}})
}

/// Connects, identifies, and returns the socket after READY and GUILD_CREATE.
async fn identified(fake: &FakeDiscord) -> (Socket, Value, Value) {
    let mut socket = connect(fake).await;
    let hello = next_frame(&mut socket).await.expect("HELLO");
    assert_eq!(hello["op"], 10);
    assert_eq!(hello["d"]["heartbeat_interval"], 41_250);
    send(&mut socket, identify()).await;
    let ready = next_frame(&mut socket).await.expect("READY");
    let guild = next_frame(&mut socket).await.expect("GUILD_CREATE");
    (socket, ready, guild)
}

#[tokio::test]
async fn identify_gets_ready_and_guild_create_that_serenity_parses() {
    let fake = FakeDiscord::start().await;
    fake.add_text_channel("6001", "general");
    let (mut socket, ready, guild) = identified(&fake).await;

    assert_eq!(
        (ready["op"].clone(), ready["s"].clone(), ready["t"].clone()),
        (json!(0), json!(1), json!("READY"))
    );
    let parsed: serenity::model::gateway::Ready =
        serde_json::from_value(ready["d"].clone()).expect("serenity parses READY");
    assert_eq!(parsed.application.id.get(), 9001);
    assert_eq!(parsed.resume_gateway_url, fake.gateway_url());

    assert_eq!(guild["t"], "GUILD_CREATE");
    assert_eq!(guild["s"], 2);
    let parsed: serenity::model::guild::Guild =
        serde_json::from_value(guild["d"].clone()).expect("serenity parses GUILD_CREATE");
    assert_eq!(parsed.id.get(), 8001);
    assert_eq!(parsed.channels.len(), 1);

    send(&mut socket, json!({"op": 1, "d": 2})).await;
    assert_eq!(next_frame(&mut socket).await.expect("ACK")["op"], 11);

    assert_eq!(fake.identify_count(), 1);
    assert_eq!(fake.identify_payloads()[0]["token"], "Bot test-token");
    assert!(fake.gateway_connected());
}

#[tokio::test]
async fn dispatched_events_parse_as_serenity_models() {
    let fake = FakeDiscord::start().await;
    let (mut socket, _, _) = identified(&fake).await;

    let first = fake
        .send_message(MessageSpec::new("6001", "7001", "alice", "hello <@9001>"))
        .await;
    let created = next_frame(&mut socket).await.expect("MESSAGE_CREATE");
    assert_eq!(
        (created["t"].clone(), created["s"].clone()),
        (json!("MESSAGE_CREATE"), json!(3))
    );
    let message: serenity::model::channel::Message =
        serde_json::from_value(created["d"].clone()).expect("message parses");
    assert_eq!(message.id.to_string(), first);
    assert_eq!(message.guild_id.map(|g| g.get()), Some(8001));
    assert_eq!(message.mentions.len(), 1);

    fake.send_message(MessageSpec::new("6001", "7002", "bob", "hi alice").replying_to(&first))
        .await;
    let reply = next_frame(&mut socket).await.expect("reply");
    let reply: serenity::model::channel::Message =
        serde_json::from_value(reply["d"].clone()).expect("reply parses");
    assert_eq!(
        reply.referenced_message.map(|m| m.content),
        Some("hello <@9001>".to_owned())
    );

    fake.send_message(MessageSpec::dm("6500", "7001", "alice", "psst"))
        .await;
    let dm = next_frame(&mut socket).await.expect("DM");
    let dm: serenity::model::channel::Message =
        serde_json::from_value(dm["d"].clone()).expect("DM parses");
    assert_eq!(dm.guild_id, None);

    let options = vec![
        json!({"name": "create", "type": 1, "options": [{"name": "name", "type": 3, "value": "Aria"}]}),
    ];
    fake.slash_command(CommandSpec::new("personality", options.clone()))
        .await;
    fake.slash_command(CommandSpec {
        guild_id: None,
        channel_id: "6500".into(),
        ..CommandSpec::new("personality", options)
    })
    .await;
    let focused = vec![
        json!({"name": "show", "type": 1, "options": [{"name": "name", "type": 3, "value": "ar", "focused": true}]}),
    ];
    fake.autocomplete(CommandSpec::new("personality", focused))
        .await;
    fake.message_command(personae_fakes::discord::MessageCommandSpec {
        name: "Personality info".into(),
        target_id: first.clone(),
        ..Default::default()
    })
    .await;
    for expected in ["command", "dm command", "autocomplete", "message command"] {
        let frame = next_frame(&mut socket).await.expect(expected);
        assert_eq!(frame["t"], "INTERACTION_CREATE", "{expected}");
        let interaction: serenity::model::application::Interaction =
            serde_json::from_value(frame["d"].clone())
                .unwrap_or_else(|e| panic!("{expected} parses: {e}"));
        match (expected, interaction) {
            ("command", serenity::model::application::Interaction::Command(c)) => {
                assert_eq!(c.data.name, "personality");
                assert!(c.member.is_some_and(|m| m.permissions.is_some()));
            }
            ("dm command", serenity::model::application::Interaction::Command(c)) => {
                assert!(c.guild_id.is_none());
                assert_eq!(c.user.name, "alice");
            }
            ("autocomplete", serenity::model::application::Interaction::Autocomplete(a)) => {
                assert!(a.data.autocomplete().is_some());
            }
            ("message command", serenity::model::application::Interaction::Command(c)) => {
                assert_eq!(c.data.name, "Personality info");
                match c.data.target() {
                    Some(serenity::model::application::ResolvedTarget::Message(m)) => {
                        assert_eq!(m.id.to_string(), first);
                        assert_eq!(m.content, "hello <@9001>");
                    }
                    other => panic!("message command without its message: {other:?}"),
                }
            }
            (what, other) => panic!("{what}: unexpected {other:?}"),
        }
    }

    fake.button_click(personae_fakes::discord::ComponentSpec {
        custom_id: "confirm".into(),
        message_id: first.clone(),
        ..Default::default()
    })
    .await;
    fake.modal_submit(personae_fakes::discord::ModalSpec {
        custom_id: "edit".into(),
        components: vec![json!({"type": 1, "components": [{"type": 4, "custom_id": "prompt", "value": "Be kind"}]})],
        ..Default::default()
    })
    .await;
    let click = next_frame(&mut socket).await.expect("click");
    match serde_json::from_value(click["d"].clone()).expect("click parses") {
        serenity::model::application::Interaction::Component(c) => {
            assert_eq!(c.data.custom_id, "confirm");
            assert_eq!(c.message.id.to_string(), first);
        }
        other => panic!("unexpected {other:?}"),
    }
    let modal = next_frame(&mut socket).await.expect("modal");
    match serde_json::from_value(modal["d"].clone()).expect("modal parses") {
        serenity::model::application::Interaction::Modal(m) => assert_eq!(m.data.custom_id, "edit"),
        other => panic!("unexpected {other:?}"),
    }

    fake.add_thread("6100", "6001");
    let thread = next_frame(&mut socket).await.expect("THREAD_CREATE");
    assert_eq!(thread["t"], "THREAD_CREATE");
    let thread: serenity::model::channel::GuildChannel =
        serde_json::from_value(thread["d"].clone()).expect("thread parses");
    assert_eq!(thread.parent_id.map(|p| p.get()), Some(6001));
}

#[tokio::test]
async fn resume_replays_missed_dispatches_then_resumed() {
    let fake = FakeDiscord::start().await;
    let (socket, ready, _) = identified(&fake).await;
    let session_id = ready["d"]["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    drop(socket);
    fake.wait_until("the socket to close", WAIT, |f| !f.gateway_connected())
        .await
        .expect("closed");

    fake.dispatch(
        "TYPING_START",
        json!({"channel_id": "6001", "user_id": "7001", "timestamp": 0}),
    )
    .await;
    let mut socket = connect(&fake).await;
    assert_eq!(next_frame(&mut socket).await.expect("HELLO")["op"], 10);
    send(
        &mut socket,
        json!({"op": 6, "d": {"token": "Bot test-token", "session_id": session_id, "seq": 2}}),
    )
    .await;
    let replayed = next_frame(&mut socket).await.expect("replay");
    assert_eq!(
        (replayed["t"].clone(), replayed["s"].clone()),
        (json!("TYPING_START"), json!(3))
    );
    let resumed = next_frame(&mut socket).await.expect("RESUMED");
    assert_eq!(
        (resumed["t"].clone(), resumed["s"].clone()),
        (json!("RESUMED"), json!(4))
    );
    fake.wait_resumed(1, WAIT).await.expect("resumed");

    send(
        &mut socket,
        json!({"op": 6, "d": {"token": "x", "session_id": "unknown", "seq": 0}}),
    )
    .await;
    assert_eq!(
        next_frame(&mut socket).await.expect("invalid session"),
        json!({"op": 9, "d": false})
    );
}

#[tokio::test]
async fn close_gateway_sends_the_close_code() {
    let fake = FakeDiscord::start().await;
    let (mut socket, _, _) = identified(&fake).await;
    let reader = tokio::spawn(async move { next_frame(&mut socket).await });
    fake.close_gateway(4000).await.expect("closed");
    assert_eq!(reader.await.expect("reader"), Err(Some(4000)));
    assert!(!fake.gateway_connected());
}

#[tokio::test]
async fn the_client_close_is_answered() {
    let fake = FakeDiscord::start().await;
    let (mut socket, _, _) = identified(&fake).await;
    socket.close(None).await.expect("close sent");
    // The fake answers the close frame, so the stream ends cleanly.
    let end = tokio::time::timeout(WAIT, socket.next())
        .await
        .expect("closed in time");
    assert!(matches!(end, None | Some(Ok(Message::Close(_)))), "{end:?}");
    fake.wait_until("the fake to drop the socket", WAIT, |f| {
        !f.gateway_connected()
    })
    .await
    .expect("gone");
}

#[tokio::test]
async fn rejected_token_closes_with_4004() {
    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        reject_token: true,
        ..Default::default()
    })
    .await;
    let mut socket = connect(&fake).await;
    next_frame(&mut socket).await.expect("HELLO");
    send(&mut socket, identify()).await;
    assert_eq!(next_frame(&mut socket).await, Err(Some(4004)));
    let error = fake
        .wait_ready(Duration::from_millis(200))
        .await
        .expect_err("not ready");
    assert!(error.contains("rejected"), "{error}");
}

#[tokio::test]
async fn dispatches_before_identify_follow_ready() {
    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        send_guild_create: false,
        ..Default::default()
    })
    .await;
    fake.send_message(MessageSpec::new("6001", "7001", "alice", "early"))
        .await;
    let mut socket = connect(&fake).await;
    next_frame(&mut socket).await.expect("HELLO");
    send(&mut socket, identify()).await;
    assert_eq!(next_frame(&mut socket).await.expect("READY")["t"], "READY");
    let early = next_frame(&mut socket).await.expect("queued message");
    assert_eq!(
        (early["t"].clone(), early["s"].clone()),
        (json!("MESSAGE_CREATE"), json!(2))
    );
}
