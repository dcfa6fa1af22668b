//! The gateway websocket (`/ws`): HELLO, heartbeats, IDENTIFY → READY,
//! RESUME → replay + RESUMED, dispatches with sequence numbers, and closing
//! or dropping the connection on demand.
//!
//! Frames are plain JSON text (no compression). One session exists at a
//! time; dispatches sent while no connection is attached to it are kept and
//! replayed when the bot resumes, and dispatches sent before the first
//! IDENTIFY are delivered right after READY.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::payloads;
use super::state::{Shared, State};
use super::FakeDiscord;

/// How long the fake keeps reading after a close frame, so the closing
/// handshake completes, before dropping the socket.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long [`FakeDiscord::close_gateway`] waits for the socket to go away.
const DISCONNECT_WAIT: Duration = Duration::from_secs(5);

/// Gateway memory: the session, the open sockets and what was received.
#[derive(Default)]
pub(crate) struct GatewayState {
    pub session: Option<Session>,
    /// Dispatches asked for while no session exists; sent after READY and GUILD_CREATE.
    pending: Vec<(String, Value)>,
    connections: HashMap<u64, Connection>,
    next_connection: u64,
    pub identify_count: usize,
    pub resume_count: usize,
    /// How many READY dispatches were sent.
    pub ready_count: usize,
    pub heartbeat_count: usize,
    /// IDENTIFY payloads (`d`), in order.
    pub identifies: Vec<Value>,
    /// Every payload the bot sent, in order.
    pub received: Vec<Value>,
    /// Close codes the bot closed with (`None`: close frame without a code).
    pub client_close_codes: Vec<Option<u16>>,
}

/// The gateway session the bot identified for.
pub(crate) struct Session {
    pub id: String,
    pub seq: u64,
    /// Every dispatch frame of the session, for replay on resume.
    log: Vec<(u64, Value)>,
    /// The connection currently attached to the session.
    connection: Option<u64>,
}

struct Connection {
    outbound: mpsc::UnboundedSender<Outbound>,
    /// Identified or resumed on this connection.
    authenticated: bool,
}

/// What the fake asks a connection task to do.
enum Outbound {
    Frame(Value),
    Close(u16, &'static str),
    Drop,
}

impl GatewayState {
    /// Sends a dispatch now, or keeps it for later (see the module docs).
    pub(crate) fn dispatch(&mut self, event: &str, data: Value) {
        let Some(session) = self.session.as_mut() else {
            self.pending.push((event.to_owned(), data));
            return;
        };
        session.seq += 1;
        let frame = json!({"op": 0, "s": session.seq, "t": event, "d": data});
        session.log.push((session.seq, frame.clone()));
        if let Some(connection) = session.connection.and_then(|c| self.connections.get(&c)) {
            // A closed receiver means the socket is going away; the frame stays in the log.
            let _ = connection.outbound.send(Outbound::Frame(frame));
        }
    }

    /// Whether a connection has identified or resumed and is still open.
    pub(crate) fn is_connected(&self) -> bool {
        self.session
            .as_ref()
            .and_then(|s| s.connection)
            .is_some_and(|c| self.connections.get(&c).is_some_and(|c| c.authenticated))
    }

    /// The socket a close or drop applies to: the session's, else the newest.
    fn current_connection(&self) -> Option<u64> {
        self.session
            .as_ref()
            .and_then(|s| s.connection)
            .filter(|c| self.connections.contains_key(c))
            .or_else(|| self.connections.keys().max().copied())
    }

    fn send(&self, connection: u64, outbound: Outbound) {
        if let Some(c) = self.connections.get(&connection) {
            let _ = c.outbound.send(outbound);
        }
    }
}

/// What to write back on the socket after a received frame.
enum Reply {
    Frame(Value),
    Close(u16, &'static str),
}

/// Serves one websocket connection until it closes, the fake asks it to
/// close or drop, or the server stops.
pub(crate) async fn serve_connection(shared: Arc<Shared>, mut socket: WebSocket) {
    let (outbound_tx, mut outbound) = mpsc::unbounded_channel();
    let id = shared.update(|s| {
        s.gateway.next_connection += 1;
        let id = s.gateway.next_connection;
        s.gateway.connections.insert(
            id,
            Connection {
                outbound: outbound_tx,
                authenticated: false,
            },
        );
        id
    });
    let mut shutdown = shared.shutdown.subscribe();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": shared.config.heartbeat_interval_ms}});
    let mut closing_since: Option<Instant> = None;
    if socket.send(text(&hello)).await.is_ok() {
        loop {
            let grace_over = async {
                match closing_since {
                    Some(since) => tokio::time::sleep_until(since + CLOSE_GRACE).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                incoming = socket.recv() => {
                    let replies = match incoming {
                        None | Some(Err(_)) => break,
                        Some(Ok(Message::Text(payload))) if closing_since.is_none() => {
                            handle_frame(&shared, id, &payload)
                        }
                        Some(Ok(Message::Binary(_))) if closing_since.is_none() => {
                            vec![Reply::Close(4002, "Error while decoding payload.")]
                        }
                        Some(Ok(Message::Close(frame))) => {
                            // Keep reading: the websocket library answers the
                            // close frame on the next read, then the stream ends.
                            let code = frame.map(|f| f.code);
                            shared.update(|s| s.gateway.client_close_codes.push(code));
                            closing_since.get_or_insert_with(Instant::now);
                            Vec::new()
                        }
                        Some(Ok(_)) => Vec::new(),
                    };
                    if !write_replies(&mut socket, replies, &mut closing_since).await {
                        break;
                    }
                }
                command = outbound.recv() => match command {
                    Some(Outbound::Frame(frame)) if closing_since.is_none() => {
                        if socket.send(text(&frame)).await.is_err() {
                            break;
                        }
                    }
                    Some(Outbound::Frame(_)) => {}
                    Some(Outbound::Close(code, reason)) => {
                        let replies = vec![Reply::Close(code, reason)];
                        if !write_replies(&mut socket, replies, &mut closing_since).await {
                            break;
                        }
                    }
                    Some(Outbound::Drop) | None => break,
                },
                () = stopped(&mut shutdown) => break,
                () = grace_over => break,
            }
        }
    }
    shared.update(|s| {
        s.gateway.connections.remove(&id);
    });
}

/// Resolves once the server is shutting down.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        let stop = *shutdown.borrow_and_update();
        if stop || shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Writes replies; a close frame starts the closing grace period.
/// Returns `false` when the socket is gone.
async fn write_replies(
    socket: &mut WebSocket,
    replies: Vec<Reply>,
    closing_since: &mut Option<Instant>,
) -> bool {
    for reply in replies {
        let message = match reply {
            Reply::Frame(frame) => text(&frame),
            Reply::Close(code, reason) => {
                closing_since.get_or_insert_with(Instant::now);
                Message::Close(Some(CloseFrame {
                    code,
                    reason: Cow::Borrowed(reason),
                }))
            }
        };
        if socket.send(message).await.is_err() {
            return false;
        }
    }
    true
}

fn text(frame: &Value) -> Message {
    Message::Text(frame.to_string())
}

/// Handles one text frame from the bot.
fn handle_frame(shared: &Shared, connection: u64, payload: &str) -> Vec<Reply> {
    let Ok(payload) = serde_json::from_str::<Value>(payload) else {
        return vec![Reply::Close(4002, "Error while decoding payload.")];
    };
    shared.update(|state| {
        state.gateway.received.push(payload.clone());
        let authenticated = state
            .gateway
            .connections
            .get(&connection)
            .is_some_and(|c| c.authenticated);
        match payload["op"].as_u64() {
            Some(1) => {
                state.gateway.heartbeat_count += 1;
                vec![Reply::Frame(json!({"op": 11}))]
            }
            Some(2) if authenticated => vec![Reply::Close(4005, "Already authenticated.")],
            Some(2) => identify(shared, state, connection, &payload["d"]),
            Some(6) => resume(state, connection, &payload["d"]),
            Some(3 | 4 | 8 | 31) if authenticated => Vec::new(),
            Some(3 | 4 | 8 | 31) => vec![Reply::Close(4003, "Not authenticated.")],
            _ => vec![Reply::Close(4001, "Unknown opcode.")],
        }
    })
}

fn identify(shared: &Shared, state: &mut State, connection: u64, data: &Value) -> Vec<Reply> {
    let gateway = &mut state.gateway;
    gateway.identifies.push(data.clone());
    gateway.identify_count += 1;
    if shared.config.reject_token {
        return vec![Reply::Close(4004, "Authentication failed.")];
    }
    if shared.config.disallow_privileged_intents {
        return vec![Reply::Close(4014, "Disallowed intent(s).")];
    }
    if let Some(c) = gateway.connections.get_mut(&connection) {
        c.authenticated = true;
    }
    let config = &shared.config;
    let session_id = format!("fake-session-{}", gateway.identify_count);
    gateway.session = Some(Session {
        id: session_id.clone(),
        seq: 0,
        log: Vec::new(),
        connection: Some(connection),
    });
    let mut bot = payloads::user(&config.bot_user_id, &config.bot_username, true);
    bot["verified"] = json!(true);
    bot["mfa_enabled"] = json!(false);
    let mut ready = json!({
        "v": 10,
        "user": bot,
        "guilds": if config.in_no_server {
            json!([])
        } else {
            json!([{"id": config.guild_id, "unavailable": true}])
        },
        "session_id": session_id,
        "resume_gateway_url": shared.ws_url(),
        "application": {"id": config.application_id, "flags": 0},
        "private_channels": [],
        "relationships": [],
    });
    if let Some(shard) = data.get("shard").filter(|s| s.is_array()) {
        ready["shard"] = shard.clone();
    }
    gateway.dispatch("READY", ready);
    gateway.ready_count += 1;
    if config.send_guild_create {
        let guild = guild_create(shared, state);
        state.gateway.dispatch("GUILD_CREATE", guild);
    }
    for (event, data) in std::mem::take(&mut state.gateway.pending) {
        state.gateway.dispatch(&event, data);
    }
    Vec::new()
}

/// The GUILD_CREATE for the configured guild, with the channels and threads
/// registered so far.
fn guild_create(shared: &Shared, state: &State) -> Value {
    let config = &shared.config;
    let in_guild = |c: &&Value| c["guild_id"] == config.guild_id.as_str();
    let mut channels: Vec<Value> = state
        .channels
        .values()
        .filter(in_guild)
        .filter(|c| c["type"] == 0)
        .cloned()
        .collect();
    let mut threads: Vec<Value> = state
        .channels
        .values()
        .filter(in_guild)
        .filter(|c| c["type"] == 11)
        .cloned()
        .collect();
    channels.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    threads.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let bot = payloads::user(&config.bot_user_id, &config.bot_username, true);
    payloads::guild_create(
        &config.guild_id,
        &config.guild_name,
        "1",
        &bot,
        channels,
        threads,
    )
}

fn resume(state: &mut State, connection: u64, data: &Value) -> Vec<Reply> {
    let gateway = &mut state.gateway;
    let wanted = data["session_id"].as_str().unwrap_or_default();
    let Some(session) = gateway.session.as_mut().filter(|s| s.id == wanted) else {
        return vec![Reply::Frame(json!({"op": 9, "d": false}))];
    };
    let previous = session.connection.replace(connection);
    let last_seen = data["seq"].as_u64().unwrap_or(0);
    let missed: Vec<Value> = session
        .log
        .iter()
        .filter(|(seq, _)| *seq > last_seen)
        .map(|(_, f)| f.clone())
        .collect();
    gateway.resume_count += 1;
    if let Some(previous) = previous.filter(|p| *p != connection) {
        gateway.send(previous, Outbound::Drop);
    }
    if let Some(c) = gateway.connections.get_mut(&connection) {
        c.authenticated = true;
    }
    for frame in missed {
        gateway.send(connection, Outbound::Frame(frame));
    }
    gateway.dispatch("RESUMED", json!({}));
    Vec::new()
}

impl FakeDiscord {
    /// Sends a raw dispatch (`op` 0) with the next sequence number, e.g.
    /// `dispatch("MESSAGE_CREATE", message)`. Before the first IDENTIFY it is
    /// queued and sent right after READY; while the bot is disconnected it is
    /// kept and replayed when the bot resumes.
    pub async fn dispatch(&self, event: &str, data: Value) {
        self.shared.update(|s| s.gateway.dispatch(event, data));
    }

    /// Closes the current gateway socket with a close frame carrying `code`
    /// (e.g. 4000 — the bot should resume; 4009 — it must identify again)
    /// and waits until the socket is gone.
    pub async fn close_gateway(&self, code: u16) -> Result<(), String> {
        self.end_connection(Outbound::Close(code, "Closed by the fake Discord."))
            .await
    }

    /// Drops the current gateway socket without a closing handshake, like a
    /// network failure, and waits until it is gone.
    pub async fn drop_gateway(&self) -> Result<(), String> {
        self.end_connection(Outbound::Drop).await
    }

    async fn end_connection(&self, how: Outbound) -> Result<(), String> {
        let target = self.shared.update(|s| {
            let target = s.gateway.current_connection()?;
            s.gateway.send(target, how);
            Some(target)
        });
        let target = target.ok_or("no gateway connection is open")?;
        self.shared
            .wait_for(DISCONNECT_WAIT, "the gateway socket to close", |s| {
                (!s.gateway.connections.contains_key(&target)).then_some(())
            })
            .await
    }

    /// While `refused`, new gateway connections are answered 503, as when
    /// Discord can't be reached; the open socket, if any, stays.
    pub fn refuse_gateway(&self, refused: bool) {
        self.shared.update(|s| s.gateway_refused = refused);
    }

    /// Whether the bot is identified or resumed on an open socket.
    pub fn gateway_connected(&self) -> bool {
        self.shared.read(|s| s.gateway.is_connected())
    }

    /// How many IDENTIFY payloads arrived.
    pub fn identify_count(&self) -> usize {
        self.shared.read(|s| s.gateway.identify_count)
    }

    /// How many successful RESUMEs happened.
    pub fn resume_count(&self) -> usize {
        self.shared.read(|s| s.gateway.resume_count)
    }

    /// The `d` of every IDENTIFY (token, intents, properties, shard).
    pub fn identify_payloads(&self) -> Vec<Value> {
        self.shared.read(|s| s.gateway.identifies.clone())
    }

    /// Every payload the bot sent on the gateway, heartbeats included.
    pub fn gateway_received(&self) -> Vec<Value> {
        self.shared.read(|s| s.gateway.received.clone())
    }

    /// Close codes of close frames the bot sent (`None`: no code).
    pub fn gateway_client_close_codes(&self) -> Vec<Option<u16>> {
        self.shared.read(|s| s.gateway.client_close_codes.clone())
    }

    /// Waits until the bot is identified or resumed on an open socket.
    pub async fn wait_gateway_connected(&self, timeout: Duration) -> Result<(), String> {
        self.shared
            .wait_for(timeout, "the bot to be connected to the gateway", |s| {
                s.gateway.is_connected().then_some(())
            })
            .await
    }

    /// Waits until at least `count` RESUMEs have succeeded and the bot is
    /// connected.
    pub async fn wait_resumed(&self, count: usize, timeout: Duration) -> Result<(), String> {
        let what = format!("{count} gateway resume(s)");
        self.shared
            .wait_for(timeout, &what, |s| {
                (s.gateway.resume_count >= count && s.gateway.is_connected()).then_some(())
            })
            .await
    }
}
