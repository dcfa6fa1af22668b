//! The fake's memory — requests, channels, messages, webhooks, interactions,
//! commands and the gateway session — behind one lock, plus the change
//! signal every wait listens to.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use super::gateway::GatewayState;
use super::payloads::{self, MessageDraft, DISCORD_EPOCH_MS};
use super::record::{Fault, RecordedRequest};
use super::FakeDiscordConfig;

/// Everything one server shares between its handlers and its handle.
pub(crate) struct Shared {
    pub config: FakeDiscordConfig,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    state: Mutex<State>,
    /// Bumped after every change, so waits wake up and look again.
    version: watch::Sender<u64>,
    /// Set to `true` when the server is dropped; open websockets end.
    pub shutdown: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(config: FakeDiscordConfig, base_url: String) -> Self {
        Self {
            config,
            base_url,
            state: Mutex::new(State::default()),
            version: watch::Sender::new(0),
            shutdown: watch::Sender::new(false),
        }
    }

    /// The gateway URL handed out by `GET /gateway` and READY.
    pub(crate) fn ws_url(&self) -> String {
        format!("{}/ws", self.base_url.replacen("http://", "ws://", 1))
    }

    /// Runs `change` under the lock and wakes every wait.
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut State) -> R) -> R {
        let result = change(&mut self.lock());
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        result
    }

    /// Reads under the lock without signalling a change.
    pub(crate) fn read<R>(&self, look: impl FnOnce(&State) -> R) -> R {
        look(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is applied whole under the lock, so the state behind a
        // poisoned lock (a panicking test thread) is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until `check` returns `Some` for the state, looking again after
    /// every change. On time-out the error names `what` was awaited.
    pub(crate) async fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> Result<T, String> {
        self.wait_changes(timeout, what, || self.read(&mut check))
            .await
    }

    /// Waits until `check` returns `Some`, calling it (outside the lock) once
    /// now and again after every change.
    pub(crate) async fn wait_changes<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut() -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + timeout;
        let mut changes = self.version.subscribe();
        loop {
            changes.borrow_and_update();
            if let Some(found) = check() {
                return Ok(found);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(format!("fake Discord stopped while waiting for {what}")),
                Err(_) => return Err(format!("timed out after {timeout:?} waiting for {what}")),
            }
        }
    }
}

/// The fake's memory. Fields are grouped by what they describe.
#[derive(Default)]
pub(crate) struct State {
    pub ids: IdGen,
    pub requests: Vec<RecordedRequest>,
    pub unhandled: Vec<RecordedRequest>,
    pub validation_errors: Vec<String>,
    pub response_errors: Vec<String>,
    pub faults: Vec<Fault>,
    /// Channels registered by tests (threads, DMs, named channels), by id.
    pub channels: HashMap<String, Value>,
    pub messages: MessageStore,
    pub webhooks: Vec<Webhook>,
    pub interactions: HashMap<String, Interaction>,
    /// Interaction token → interaction id.
    pub interaction_tokens: HashMap<String, String>,
    pub commands: Commands,
    /// Usernames of users the fake has seen, by id.
    pub users: HashMap<String, String>,
    pub gateway: GatewayState,
    /// Attached files by `channel/id/filename`: content type and bytes.
    pub files: HashMap<String, (String, Vec<u8>)>,
    /// Downloads of attached files, oldest first.
    pub downloads: Vec<String>,
    /// Each webhook's rate-limit window, by webhook id.
    pub webhook_windows: HashMap<String, super::rate_limits::Window>,
    /// Files on the fake CDN, by path.
    pub cdn: HashMap<String, super::cdn::CdnFile>,
    /// Paths of CDN downloads, in order.
    pub cdn_downloads: Vec<String>,
    /// While set, gateway connections are refused (503), as when Discord
    /// can't be reached.
    pub gateway_refused: bool,
}

impl State {
    /// The channel object for an id: a registered one, or a guild text
    /// channel named `channel-<id>` in the configured guild.
    pub(crate) fn channel(&self, id: &str, guild_id: &str) -> Value {
        self.channels
            .get(id)
            .cloned()
            .unwrap_or_else(|| payloads::text_channel(id, guild_id, &format!("channel-{id}")))
    }

    /// The parent of a registered thread.
    pub(crate) fn thread_parent(&self, id: &str) -> Option<String> {
        let channel = self.channels.get(id)?;
        let is_thread = matches!(channel["type"].as_u64(), Some(10..=12));
        is_thread
            .then(|| channel["parent_id"].as_str().map(str::to_owned))
            .flatten()
    }

    /// Whether a registered channel is a direct-message channel.
    pub(crate) fn is_dm(&self, id: &str) -> bool {
        self.channels.get(id).is_some_and(|c| c["type"] == 1)
    }

    pub(crate) fn webhook(&self, id: &str) -> Option<&Webhook> {
        self.webhooks.iter().find(|w| w.id == id && !w.deleted)
    }

    pub(crate) fn webhook_mut(&mut self, id: &str) -> Option<&mut Webhook> {
        self.webhooks.iter_mut().find(|w| w.id == id && !w.deleted)
    }

    pub(crate) fn interaction_by_token(&self, token: &str) -> Option<&Interaction> {
        self.interactions.get(self.interaction_tokens.get(token)?)
    }

    pub(crate) fn interaction_by_token_mut(&mut self, token: &str) -> Option<&mut Interaction> {
        let id = self.interaction_tokens.get(token)?;
        self.interactions.get_mut(id)
    }

    /// A username for a user id: the one seen before, or `user<id>`.
    pub(crate) fn username(&self, id: &str) -> String {
        self.users
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("user{id}"))
    }
}

/// Hands out snowflakes that increase strictly and encode the current time.
#[derive(Default)]
pub(crate) struct IdGen {
    last: u64,
}

impl IdGen {
    pub(crate) fn next(&mut self) -> String {
        let now = payloads::now_ms().saturating_sub(DISCORD_EPOCH_MS) << 22;
        self.last = now.max(self.last + 1);
        self.last.to_string()
    }

    /// A URL-safe, unique token for interactions and webhooks.
    pub(crate) fn token(&mut self, prefix: &str) -> String {
        format!("{prefix}-{}-{}", self.next(), uuid::Uuid::new_v4().simple())
    }
}

/// A message the fake holds, with where it lives.
#[derive(Clone, Debug)]
pub(crate) struct StoredMessage {
    pub draft: MessageDraft,
    /// Set for messages in guild channels; REST message objects leave it
    /// out, gateway dispatches include it.
    pub guild_id: Option<String>,
}

impl StoredMessage {
    /// Only the user who triggered the interaction sees it; it is left out
    /// of channel history.
    pub(crate) fn is_ephemeral(&self) -> bool {
        self.draft.flags & 64 != 0
    }

    /// The REST shape (`MessageResponse`).
    pub(crate) fn to_json(&self) -> Value {
        self.draft.to_json()
    }

    /// The gateway shape: the REST shape plus `guild_id` and, for a user in a
    /// guild, the partial `member`.
    pub(crate) fn to_gateway_json(&self) -> Value {
        let mut value = self.draft.to_json();
        if let Some(guild_id) = &self.guild_id {
            value["guild_id"] = json!(guild_id);
            if self.draft.webhook_id.is_none() {
                let mut member = payloads::member(Value::Null, None);
                if let Some(map) = member.as_object_mut() {
                    map.remove("user");
                }
                value["member"] = member;
            }
        }
        value
    }
}

/// Every message, per channel in creation order.
#[derive(Default)]
pub(crate) struct MessageStore {
    by_channel: HashMap<String, Vec<StoredMessage>>,
    /// Message id → channel id.
    index: HashMap<String, String>,
}

impl MessageStore {
    pub(crate) fn insert(&mut self, message: StoredMessage) {
        let channel = message.draft.channel_id.clone();
        self.index.insert(message.draft.id.clone(), channel.clone());
        self.by_channel.entry(channel).or_default().push(message);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&StoredMessage> {
        let channel = self.index.get(id)?;
        self.by_channel
            .get(channel)?
            .iter()
            .find(|m| m.draft.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut StoredMessage> {
        let channel = self.index.get(id)?;
        self.by_channel
            .get_mut(channel)?
            .iter_mut()
            .find(|m| m.draft.id == id)
    }

    pub(crate) fn remove(&mut self, id: &str) -> Option<StoredMessage> {
        let channel = self.index.remove(id)?;
        let list = self.by_channel.get_mut(&channel)?;
        let position = list.iter().position(|m| m.draft.id == id)?;
        Some(list.remove(position))
    }

    /// A channel's messages, oldest first.
    pub(crate) fn in_channel(&self, channel_id: &str) -> &[StoredMessage] {
        self.by_channel.get(channel_id).map_or(&[], Vec::as_slice)
    }

    /// Every message, grouped by channel.
    pub(crate) fn all(&self) -> impl Iterator<Item = &StoredMessage> {
        self.by_channel.values().flatten()
    }

    /// `GET /channels/{id}/messages`: newest first, at most `limit`, only
    /// those before / after a message id (compared as snowflakes).
    pub(crate) fn history(
        &self,
        channel_id: &str,
        limit: usize,
        before: Option<u64>,
        after: Option<u64>,
    ) -> Vec<Value> {
        let id_of = |m: &StoredMessage| m.draft.id.parse::<u64>().unwrap_or(0);
        let selected = self
            .in_channel(channel_id)
            .iter()
            .filter(|m| !m.is_ephemeral())
            .filter(|m| before.is_none_or(|b| id_of(m) < b))
            .filter(|m| after.is_none_or(|a| id_of(m) > a));
        let mut list: Vec<&StoredMessage> = selected.collect();
        list.sort_by_key(|m| std::cmp::Reverse(id_of(m)));
        if after.is_some() {
            // Discord returns the messages right after `after`, newest first.
            let skip = list.len().saturating_sub(limit);
            list.drain(..skip);
        } else {
            list.truncate(limit);
        }
        list.into_iter().map(StoredMessage::to_json).collect()
    }
}

/// A webhook created through the API.
#[derive(Clone, Debug)]
pub(crate) struct Webhook {
    pub id: String,
    pub token: String,
    pub name: String,
    pub avatar: Option<String>,
    pub channel_id: String,
    pub guild_id: String,
    /// Deleted through the API or by [`FakeDiscord::delete_webhook_externally`](super::FakeDiscord::delete_webhook_externally).
    pub deleted: bool,
}

/// An interaction the fake sent, and everything the bot answered to it.
#[derive(Clone, Debug)]
pub(crate) struct Interaction {
    pub id: String,
    pub token: String,
    /// 2 command, 3 component, 4 autocomplete, 5 modal submit.
    pub kind: u8,
    pub channel_id: String,
    pub guild_id: Option<String>,
    pub user: Value,
    /// The command name, for `interaction_metadata`.
    pub name: Option<String>,
    /// The message a component sat on (or that opened a modal).
    pub message_id: Option<String>,
    /// When INTERACTION_CREATE was dispatched, for the acknowledgement deadline.
    pub sent_at: std::time::Instant,
    /// The body of the first `POST …/callback`.
    pub callback: Option<Value>,
    /// The original response message (type 4 or 5 callbacks), in the message store.
    pub original_id: Option<String>,
    /// Bodies of `POST /webhooks/{app}/{token}` follow-ups, in order.
    pub followups: Vec<Value>,
    /// Ids of the follow-up messages, in the message store.
    pub followup_ids: Vec<String>,
    /// Bodies of `PATCH /webhooks/{app}/{token}/messages/@original`, in order.
    pub original_edits: Vec<Value>,
    /// Files uploaded with the callback, follow-ups and edits, in order.
    pub files: Vec<super::UploadedFile>,
}

/// Commands registered by the bot.
#[derive(Default)]
pub(crate) struct Commands {
    /// Bodies of the most recent registration request (PUT replaces, POST adds).
    pub last_request: Vec<Value>,
    /// Registered commands (`ApplicationCommandResponse`), global ones under `None`.
    pub registered: HashMap<Option<String>, Vec<Value>>,
    /// How many registration requests succeeded.
    pub registrations: usize,
}

impl Commands {
    /// The id of a registered command with this name, in the guild or globally.
    pub(crate) fn id_of(&self, name: &str, guild_id: Option<&str>) -> Option<String> {
        let scopes = [guild_id.map(str::to_owned), None];
        scopes.iter().find_map(|scope| {
            self.registered
                .get(scope)?
                .iter()
                .find(|c| c["name"] == name)?["id"]
                .as_str()
                .map(str::to_owned)
        })
    }
}
