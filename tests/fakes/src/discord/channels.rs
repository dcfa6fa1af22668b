//! Channels and messages: the REST routes under `/channels/{id}`, the
//! messages users send (through [`FakeDiscord::send_message`]) and the
//! helpers every message-creating route shares.

use std::time::Duration;

use serde_json::{json, Value};

use super::payloads::{self, MessageDraft};
use super::record::RecordedRequest;
use super::rest::{reject, Reply};
use super::state::{Shared, State, StoredMessage};
use super::{FakeDiscord, FakeDiscordConfig};

/// A message a user (or another bot, or a webhook) sends; see
/// [`FakeDiscord::send_message`]. `Default` is alice (7001) writing in
/// channel 6001 of guild 8001.
#[derive(Clone, Debug)]
pub struct MessageSpec {
    /// Where the message is posted.
    pub channel_id: String,
    /// `None` for a direct message (the channel becomes a DM channel).
    pub guild_id: Option<String>,
    /// The author's user id.
    pub author_id: String,
    /// The author's username.
    pub author_name: String,
    /// The text; `<@id>` mentions fill the message's `mentions`.
    pub content: String,
    /// The id of the message this one replies to.
    pub reference: Option<String>,
    /// The author is a bot account (`author.bot`).
    pub author_is_bot: bool,
    /// Sent by this webhook: the author becomes the webhook (id and name).
    pub webhook_id: Option<String>,
    /// Files attached to it.
    pub attachments: Vec<super::AttachmentSpec>,
}

impl Default for MessageSpec {
    fn default() -> Self {
        Self {
            channel_id: "6001".to_owned(),
            guild_id: Some("8001".to_owned()),
            author_id: "7001".to_owned(),
            author_name: "alice".to_owned(),
            content: String::new(),
            reference: None,
            author_is_bot: false,
            webhook_id: None,
            attachments: Vec::new(),
        }
    }
}

impl MessageSpec {
    /// A guild message by a user in the default guild (8001).
    pub fn new(channel_id: &str, author_id: &str, author_name: &str, content: &str) -> Self {
        Self {
            channel_id: channel_id.to_owned(),
            author_id: author_id.to_owned(),
            author_name: author_name.to_owned(),
            content: content.to_owned(),
            ..Self::default()
        }
    }

    /// A direct message from a user to the bot.
    pub fn dm(channel_id: &str, author_id: &str, author_name: &str, content: &str) -> Self {
        Self {
            guild_id: None,
            ..Self::new(channel_id, author_id, author_name, content)
        }
    }

    /// The same message with a file attached.
    pub fn with_attachment(mut self, attachment: super::AttachmentSpec) -> Self {
        self.attachments.push(attachment);
        self
    }

    /// The same message as a reply to `message_id`.
    pub fn replying_to(mut self, message_id: &str) -> Self {
        self.reference = Some(message_id.to_owned());
        self
    }
}

/// The bot user object.
pub(crate) fn bot_user(config: &FakeDiscordConfig) -> Value {
    payloads::user(&config.bot_user_id, &config.bot_username, true)
}

/// The guild a channel belongs to: none for DMs, the registered guild, or
/// the configured one.
pub(crate) fn guild_of(
    state: &State,
    config: &FakeDiscordConfig,
    channel_id: &str,
) -> Option<String> {
    if state.is_dm(channel_id) {
        return None;
    }
    let channel = state.channel(channel_id, &config.guild_id);
    Some(
        channel["guild_id"]
            .as_str()
            .unwrap_or(&config.guild_id)
            .to_owned(),
    )
}

/// Whether a create/execute body would make an empty message (Discord: 50006).
pub(crate) fn is_empty_message(body: &Value) -> bool {
    let has_content = body["content"].as_str().is_some_and(|c| !c.is_empty());
    let non_empty = |key: &str| body[key].as_array().is_some_and(|a| !a.is_empty());
    let has_poll = body["poll"].is_object();
    !(has_content
        || has_poll
        || ["embeds", "components", "attachments", "sticker_ids"]
            .into_iter()
            .any(non_empty))
}

/// The 400 Discord answers for an empty message.
pub(crate) fn empty_message_reply() -> Reply {
    Reply::error(400, 50006, "Cannot send an empty message")
}

/// Stores a message the bot caused and, if configured, echoes it as
/// MESSAGE_CREATE (ephemeral messages are never dispatched).
pub(crate) fn store_bot_message(
    config: &FakeDiscordConfig,
    state: &mut State,
    message: StoredMessage,
) {
    if config.echo_bot_messages && !message.is_ephemeral() {
        state
            .gateway
            .dispatch("MESSAGE_CREATE", message.to_gateway_json());
    }
    state.messages.insert(message);
}

/// Applies an edit body to a stored message and echoes MESSAGE_UPDATE.
/// Returns the new REST shape, or `None` if the message is unknown.
pub(crate) fn edit_stored(
    config: &FakeDiscordConfig,
    state: &mut State,
    message_id: &str,
    body: &Value,
) -> Option<Value> {
    let message = state.messages.get_mut(message_id)?;
    message.draft.apply_body(body);
    if message.draft.flags & 128 != 0 {
        // The first edit of a deferred response replaces "thinking…"; Discord
        // does not count it as an edit.
        message.draft.flags &= !128;
    } else {
        message.draft.edited_timestamp = Some(payloads::rfc3339(payloads::now_ms()));
    }
    let (rest, gateway, ephemeral) = (
        message.to_json(),
        message.to_gateway_json(),
        message.is_ephemeral(),
    );
    if config.echo_bot_messages && !ephemeral {
        state.gateway.dispatch("MESSAGE_UPDATE", gateway);
    }
    Some(rest)
}

/// Removes a stored message and echoes MESSAGE_DELETE.
pub(crate) fn delete_stored(
    config: &FakeDiscordConfig,
    state: &mut State,
    message_id: &str,
) -> bool {
    let Some(message) = state.messages.remove(message_id) else {
        return false;
    };
    if config.echo_bot_messages && !message.is_ephemeral() {
        let mut data = json!({"id": message.draft.id, "channel_id": message.draft.channel_id});
        if let Some(guild_id) = &message.guild_id {
            data["guild_id"] = json!(guild_id);
        }
        state.gateway.dispatch("MESSAGE_DELETE", data);
    }
    true
}

pub(crate) fn get_channel(shared: &Shared, state: &State, channel_id: &str) -> Reply {
    Reply::ok(state.channel(channel_id, &shared.config.guild_id))
}

pub(crate) fn list_guild_channels(shared: &Shared, state: &State) -> Reply {
    let guild_id = &shared.config.guild_id;
    let mut list: Vec<Value> = state
        .channels
        .values()
        .filter(|c| c["guild_id"] == guild_id.as_str() && c["type"] == 0)
        .cloned()
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Reply::ok(Value::Array(list))
}

/// `GET /channels/{id}/messages?limit&before&after`: newest first.
pub(crate) fn history(state: &State, request: &RecordedRequest, channel_id: &str) -> Reply {
    let number = |name: &str| {
        request
            .query_param(name)
            .and_then(|v| v.parse::<u64>().ok())
    };
    let limit = number("limit").map_or(50, |l| l.clamp(1, 100));
    let limit = usize::try_from(limit).unwrap_or(50);
    let list = state
        .messages
        .history(channel_id, limit, number("before"), number("after"));
    Reply::ok(Value::Array(list))
}

pub(crate) fn get_message(state: &State, channel_id: &str, message_id: &str) -> Reply {
    match state.messages.get(message_id) {
        Some(m) if m.draft.channel_id == channel_id && !m.is_ephemeral() => Reply::ok(m.to_json()),
        _ => Reply::unknown_message(),
    }
}

/// `POST /channels/{id}/messages`: a message by the bot.
pub(crate) fn create_message(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    channel_id: &str,
    body: &Value,
) -> Reply {
    let config = &shared.config;
    if is_empty_message(body) {
        return reject(
            state,
            request,
            "Cannot send an empty message",
            empty_message_reply(),
        );
    }
    let guild_id = guild_of(state, config, channel_id);
    let id = state.ids.next();
    let mut draft = MessageDraft::new(&id, channel_id, bot_user(config), "");
    draft.apply_body(body);
    draft.flags &= !64; // only interaction responses can be ephemeral
    if let Some(reference) = body.get("message_reference").filter(|r| r.is_object()) {
        let target = reference["message_id"].as_str().unwrap_or_default();
        match state.messages.get(target) {
            Some(replied) => {
                draft.kind = 19;
                draft.reference = Some(payloads::message_reference(
                    target,
                    &replied.draft.channel_id,
                    guild_id.as_deref(),
                ));
                draft.referenced_message = Some(replied.to_json());
            }
            None if reference["fail_if_not_exists"] == false => {}
            None => {
                let reply = Reply::invalid_field(
                    "message_reference",
                    "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                    "Unknown message",
                );
                return reject(state, request, "reply to an unknown message", reply);
            }
        }
    }
    let message = StoredMessage { draft, guild_id };
    let json = message.to_json();
    store_bot_message(config, state, message);
    Reply::ok(json)
}

/// `PATCH /channels/{id}/messages/{id}`: only the bot's own messages.
pub(crate) fn edit_message(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    channel_id: &str,
    message_id: &str,
    body: &Value,
) -> Reply {
    let config = &shared.config;
    let Some(message) = state
        .messages
        .get(message_id)
        .filter(|m| m.draft.channel_id == channel_id)
    else {
        return Reply::unknown_message();
    };
    if message.draft.author["id"] != config.bot_user_id.as_str()
        || message.draft.webhook_id.is_some()
    {
        let reply = Reply::error(403, 50005, "Cannot edit a message authored by another user");
        return reject(state, request, "edit of another user's message", reply);
    }
    match edit_stored(config, state, message_id, body) {
        Some(json) => Reply::ok(json),
        None => Reply::unknown_message(),
    }
}

/// `DELETE /channels/{id}/messages/{id}`.
pub(crate) fn delete_message(
    shared: &Shared,
    state: &mut State,
    channel_id: &str,
    message_id: &str,
) -> Reply {
    let known = state
        .messages
        .get(message_id)
        .is_some_and(|m| m.draft.channel_id == channel_id);
    if known && delete_stored(&shared.config, state, message_id) {
        Reply::no_content()
    } else {
        Reply::unknown_message()
    }
}

/// `PUT`/`DELETE …/reactions/{emoji}/@me`: accepted for known messages.
pub(crate) fn react(state: &State, channel_id: &str, message_id: &str) -> Reply {
    let known = state
        .messages
        .get(message_id)
        .is_some_and(|m| m.draft.channel_id == channel_id);
    if known {
        Reply::no_content()
    } else {
        Reply::unknown_message()
    }
}

impl FakeDiscord {
    /// A user (or bot, or webhook) sends a message: it is stored (so REST
    /// history and lookups see it) and dispatched as MESSAGE_CREATE with a
    /// complete Message, including `referenced_message` when it replies to a
    /// stored message. Returns the new message id.
    pub async fn send_message(&self, spec: MessageSpec) -> String {
        self.shared.update(|state| {
            let id = state.ids.next();
            let author = match &spec.webhook_id {
                Some(webhook_id) => payloads::user(webhook_id, &spec.author_name, true),
                None => {
                    state
                        .users
                        .insert(spec.author_id.clone(), spec.author_name.clone());
                    payloads::user(&spec.author_id, &spec.author_name, spec.author_is_bot)
                }
            };
            if spec.guild_id.is_none() && !state.channels.contains_key(&spec.channel_id) {
                let channel = payloads::dm_channel(&spec.channel_id, author.clone());
                state.channels.insert(spec.channel_id.clone(), channel);
            }
            let mut draft = MessageDraft::new(&id, &spec.channel_id, author, &spec.content);
            draft.webhook_id.clone_from(&spec.webhook_id);
            draft.attachments = spec
                .attachments
                .iter()
                .map(|a| super::attachments::store(&self.shared, state, &spec.channel_id, a))
                .collect();
            if let Some(target) = &spec.reference {
                let replied = state.messages.get(target);
                let channel =
                    replied.map_or(spec.channel_id.as_str(), |m| m.draft.channel_id.as_str());
                draft.kind = 19;
                draft.reference = Some(payloads::message_reference(
                    target,
                    channel,
                    spec.guild_id.as_deref(),
                ));
                draft.referenced_message = replied.map(StoredMessage::to_json);
            }
            let message = StoredMessage {
                draft,
                guild_id: spec.guild_id.clone(),
            };
            state
                .gateway
                .dispatch("MESSAGE_CREATE", message.to_gateway_json());
            state.messages.insert(message);
            id
        })
    }

    /// A moderator deletes a message in their client: it is gone from the channel and
    /// MESSAGE_DELETE is dispatched. False if there was no such message.
    pub fn delete_message(&self, message_id: &str) -> bool {
        self.shared.update(|state| {
            let Some(message) = state.messages.remove(message_id) else {
                return false;
            };
            let mut data = json!({"id": message.draft.id, "channel_id": message.draft.channel_id});
            if let Some(guild_id) = &message.guild_id {
                data["guild_id"] = json!(guild_id);
            }
            state.gateway.dispatch("MESSAGE_DELETE", data);
            true
        })
    }

    /// Registers a guild text channel with a name (unregistered ids already
    /// answer as text channels named `channel-<id>`). Registered channels
    /// appear in GUILD_CREATE when added before the bot connects.
    pub fn add_text_channel(&self, channel_id: &str, name: &str) {
        let channel = payloads::text_channel(channel_id, &self.shared.config.guild_id, name);
        self.shared
            .update(|s| s.channels.insert(channel_id.to_owned(), channel));
    }

    /// Registers an age-restricted text channel (Discord's "NSFW" setting) of the guild.
    pub fn add_age_restricted_channel(&self, channel_id: &str, name: &str) {
        let mut channel = payloads::text_channel(channel_id, &self.shared.config.guild_id, name);
        channel["nsfw"] = json!(true);
        self.shared
            .update(|s| s.channels.insert(channel_id.to_owned(), channel));
    }

    /// Makes `thread_id` a public thread (type 11) under `parent_id`. If the
    /// bot is connected, THREAD_CREATE is dispatched.
    pub fn add_thread(&self, thread_id: &str, parent_id: &str) {
        let config = &self.shared.config;
        let thread = payloads::thread(
            thread_id,
            &config.guild_id,
            parent_id,
            &config.bot_user_id,
            &format!("thread-{thread_id}"),
        );
        self.shared.update(|s| {
            s.channels.insert(thread_id.to_owned(), thread.clone());
            if s.gateway.session.is_some() {
                let mut event = thread;
                event["newly_created"] = json!(true);
                s.gateway.dispatch("THREAD_CREATE", event);
            }
        });
    }

    /// Makes `channel_id` a DM channel with the given user.
    pub fn add_dm_channel(&self, channel_id: &str, user_id: &str, user_name: &str) {
        let channel = payloads::dm_channel(channel_id, payloads::user(user_id, user_name, false));
        self.shared.update(|s| {
            s.users.insert(user_id.to_owned(), user_name.to_owned());
            s.channels.insert(channel_id.to_owned(), channel);
        });
    }

    /// A channel's visible messages (REST shape), oldest first: user
    /// messages, the bot's messages, webhook messages and non-ephemeral
    /// interaction responses.
    pub fn channel_messages(&self, channel_id: &str) -> Vec<Value> {
        self.shared.read(|s| {
            s.messages
                .in_channel(channel_id)
                .iter()
                .filter(|m| !m.is_ephemeral())
                .map(StoredMessage::to_json)
                .collect()
        })
    }

    /// One stored message (REST shape), ephemeral ones included.
    pub fn message(&self, message_id: &str) -> Option<Value> {
        self.shared
            .read(|s| s.messages.get(message_id).map(StoredMessage::to_json))
    }

    /// Waits for a stored message (already there or arriving later, in any
    /// channel, ephemeral ones included) for which `predicate` holds.
    pub async fn wait_for_message(
        &self,
        predicate: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Result<Value, String> {
        self.shared
            .wait_for(timeout, "a matching message", |s| {
                let mut found: Vec<Value> = s
                    .messages
                    .all()
                    .map(StoredMessage::to_json)
                    .filter(|m| predicate(m))
                    .collect();
                found.sort_by_key(|m| m["id"].as_str().and_then(|id| id.parse::<u64>().ok()));
                found.into_iter().next()
            })
            .await
    }
}
