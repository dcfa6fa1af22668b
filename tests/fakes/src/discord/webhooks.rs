//! Channel webhooks: creating, listing, fetching, modifying and deleting
//! them, executing them (the messages land in channel history) and their
//! messages. Interaction follow-ups share the `/webhooks/{id}/{token}`
//! routes but are handled in `interactions`.

use serde_json::{json, Value};

use super::channels::{self, bot_user, empty_message_reply, is_empty_message};
use super::payloads::{self, MessageDraft, WebhookView};
use super::record::RecordedRequest;
use super::rest::{reject, Reply};
use super::state::{Shared, State, StoredMessage, Webhook};
use super::FakeDiscord;

/// Discord's limit of webhooks per channel.
const MAX_WEBHOOKS_PER_CHANNEL: usize = 15;

/// Words Discord refuses in webhook names and execution usernames.
const FORBIDDEN_NAME_PARTS: [&str; 2] = ["discord", "clyde"];

fn view<'a>(shared: &'a Shared, webhook: &'a Webhook) -> WebhookView<'a> {
    WebhookView {
        id: &webhook.id,
        token: &webhook.token,
        name: &webhook.name,
        avatar: webhook.avatar.as_deref(),
        channel_id: &webhook.channel_id,
        guild_id: &webhook.guild_id,
        application_id: &shared.config.application_id,
        creator: bot_user(&shared.config),
        base_url: &shared.base_url,
    }
}

/// The forbidden word a name contains, if any.
fn forbidden_part(name: &str) -> Option<&'static str> {
    let lower = name.to_lowercase();
    FORBIDDEN_NAME_PARTS
        .into_iter()
        .find(|part| lower.contains(part))
}

fn forbidden_name_reply(field: &str, part: &str) -> Reply {
    Reply::invalid_field(
        field,
        "USERNAME_INVALID_CONTAINS",
        &format!("Username cannot contain \"{part}\""),
    )
}

/// An avatar hash for an uploaded image: 32 hex digits, like Discord's.
fn avatar_hash(state: &mut State) -> String {
    let id: u128 = state.ids.next().parse().unwrap_or(0);
    format!("{id:032x}")
}

/// `POST /channels/{id}/webhooks`.
pub(crate) fn create(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    channel_id: &str,
    body: &Value,
) -> Reply {
    let config = &shared.config;
    let channel = state.channel(channel_id, &config.guild_id);
    if channel["type"] != 0 {
        let reply = Reply::error(400, 50024, "Cannot execute action on this channel type");
        return reject(
            state,
            request,
            "webhooks can only be created in text channels",
            reply,
        );
    }
    let name = body["name"].as_str().unwrap_or_default().to_owned();
    if let Some(part) = forbidden_part(&name) {
        return reject(
            state,
            request,
            "webhook name contains a forbidden word",
            forbidden_name_reply("name", part),
        );
    }
    let existing = state
        .webhooks
        .iter()
        .filter(|w| w.channel_id == channel_id && !w.deleted)
        .count();
    if existing >= MAX_WEBHOOKS_PER_CHANNEL {
        return Reply::error(400, 30007, "Maximum number of webhooks reached (15)");
    }
    let avatar = body["avatar"].as_str().map(|_| avatar_hash(state));
    let webhook = Webhook {
        id: state.ids.next(),
        token: state.ids.token("whtok"),
        name,
        avatar,
        channel_id: channel_id.to_owned(),
        guild_id: channel["guild_id"]
            .as_str()
            .unwrap_or(&config.guild_id)
            .to_owned(),
        deleted: false,
    };
    let json = view(shared, &webhook).to_json();
    state.webhooks.push(webhook);
    Reply::ok(json)
}

/// `GET /channels/{id}/webhooks` (`Some(channel)`) or `GET /guilds/{id}/webhooks`.
pub(crate) fn list(shared: &Shared, state: &State, channel_id: Option<&str>) -> Reply {
    let list = state
        .webhooks
        .iter()
        .filter(|w| !w.deleted && channel_id.is_none_or(|c| w.channel_id == c))
        .map(|w| view(shared, w).to_json())
        .collect();
    Reply::ok(Value::Array(list))
}

/// The webhook for an id, checking the token when one is given.
fn find<'a>(state: &'a State, id: &str, token: Option<&str>) -> Result<&'a Webhook, Reply> {
    let webhook = state.webhook(id).ok_or_else(Reply::unknown_webhook)?;
    match token {
        Some(token) if token != webhook.token => {
            Err(Reply::error(401, 50027, "Invalid Webhook Token"))
        }
        _ => Ok(webhook),
    }
}

/// `GET /webhooks/{id}[/{token}]`; with a token the creator is left out.
pub(crate) fn get(shared: &Shared, state: &State, id: &str, token: Option<&str>) -> Reply {
    match find(state, id, token) {
        Ok(webhook) => {
            let mut json = view(shared, webhook).to_json();
            if token.is_some() {
                if let Some(map) = json.as_object_mut() {
                    map.remove("user");
                }
            }
            Reply::ok(json)
        }
        Err(reply) => reply,
    }
}

/// `PATCH /webhooks/{id}[/{token}]`: name, avatar, and (without token) channel.
pub(crate) fn modify(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    id: &str,
    token: Option<&str>,
    body: &Value,
) -> Reply {
    if let Err(reply) = find(state, id, token) {
        return reply;
    }
    if let Some(part) = body["name"].as_str().and_then(forbidden_part) {
        return reject(
            state,
            request,
            "webhook name contains a forbidden word",
            forbidden_name_reply("name", part),
        );
    }
    let avatar = match &body["avatar"] {
        Value::String(_) => Some(Some(avatar_hash(state))),
        Value::Null if body.get("avatar").is_some() => Some(None),
        _ => None,
    };
    let Some(webhook) = state.webhook_mut(id) else {
        return Reply::unknown_webhook();
    };
    if let Some(name) = body["name"].as_str() {
        name.clone_into(&mut webhook.name);
    }
    if let Some(avatar) = avatar {
        webhook.avatar = avatar;
    }
    if let (None, Some(channel)) = (token, body["channel_id"].as_str()) {
        channel.clone_into(&mut webhook.channel_id);
    }
    let webhook = webhook.clone();
    Reply::ok(view(shared, &webhook).to_json())
}

/// `DELETE /webhooks/{id}[/{token}]`.
pub(crate) fn delete(state: &mut State, id: &str, token: Option<&str>) -> Reply {
    if let Err(reply) = find(state, id, token) {
        return reply;
    }
    if let Some(webhook) = state.webhook_mut(id) {
        webhook.deleted = true;
    }
    Reply::no_content()
}

/// `POST /webhooks/{id}/{token}[?wait=true][&thread_id=…]`.
pub(crate) fn execute(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    id: &str,
    token: &str,
    body: &Value,
) -> Reply {
    let config = &shared.config;
    let webhook = match find(state, id, Some(token)) {
        Ok(webhook) => webhook.clone(),
        Err(reply) => return reply,
    };
    if is_empty_message(body) {
        return reject(
            state,
            request,
            "Cannot send an empty message",
            empty_message_reply(),
        );
    }
    let username = body["username"]
        .as_str()
        .unwrap_or(&webhook.name)
        .to_owned();
    if let Some(part) = forbidden_part(&username) {
        return reject(
            state,
            request,
            "webhook username contains a forbidden word",
            forbidden_name_reply("username", part),
        );
    }
    let channel_id = match request.query_param("thread_id") {
        None => webhook.channel_id.clone(),
        Some(thread_id) => match thread_target(state, shared, &webhook, &thread_id) {
            Ok(channel) => channel,
            Err(reason) => {
                return reject(
                    state,
                    request,
                    &reason,
                    Reply::error(400, 10003, "Unknown Channel"),
                )
            }
        },
    };
    let mut draft = MessageDraft::new(
        &state.ids.next(),
        &channel_id,
        payloads::user(&webhook.id, &username, true),
        "",
    );
    draft.apply_body(body);
    draft.flags &= !64; // webhook messages cannot be ephemeral
    draft.webhook_id = Some(webhook.id.clone());
    draft.application_id = Some(config.application_id.clone());
    let message = StoredMessage {
        draft,
        guild_id: Some(webhook.guild_id.clone()),
    };
    let json = message.to_json();
    channels::store_bot_message(config, state, message);
    if request
        .query_param("wait")
        .is_some_and(|w| w == "true" || w == "1")
    {
        Reply::ok(json)
    } else {
        Reply::no_content()
    }
}

/// The channel a `thread_id` execution posts to. Threads the fake does not
/// know yet become threads of the webhook's channel; the webhook's own
/// channel, other channels and threads elsewhere are refused.
fn thread_target(
    state: &mut State,
    shared: &Shared,
    webhook: &Webhook,
    thread_id: &str,
) -> Result<String, String> {
    match state.thread_parent(thread_id) {
        Some(parent) if parent == webhook.channel_id => Ok(thread_id.to_owned()),
        Some(parent) => Err(format!(
            "thread {thread_id} belongs to channel {parent}, not to the webhook's channel {}",
            webhook.channel_id
        )),
        None if thread_id == webhook.channel_id || state.channels.contains_key(thread_id) => {
            Err(format!("thread_id {thread_id} is not a thread"))
        }
        None => {
            let thread = payloads::thread(
                thread_id,
                &webhook.guild_id,
                &webhook.channel_id,
                &shared.config.bot_user_id,
                &format!("thread-{thread_id}"),
            );
            state.channels.insert(thread_id.to_owned(), thread);
            Ok(thread_id.to_owned())
        }
    }
}

/// `GET`/`PATCH`/`DELETE /webhooks/{id}/{token}/messages/{message}`: only
/// the webhook's own messages; a message in a thread needs `thread_id`.
pub(crate) fn message(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    id: &str,
    token: &str,
    message_id: &str,
    body: &Value,
) -> Reply {
    let config = &shared.config;
    let webhook = match find(state, id, Some(token)) {
        Ok(webhook) => webhook.clone(),
        Err(reply) => return reply,
    };
    let expected_channel = request
        .query_param("thread_id")
        .unwrap_or_else(|| webhook.channel_id.clone());
    let found = state.messages.get(message_id).filter(|m| {
        m.draft.webhook_id.as_deref() == Some(webhook.id.as_str())
            && m.draft.channel_id == expected_channel
    });
    let Some(found) = found.map(StoredMessage::to_json) else {
        return Reply::unknown_message();
    };
    match request.method.as_str() {
        "GET" => Reply::ok(found),
        "PATCH" => match channels::edit_stored(config, state, message_id, body) {
            Some(json) => Reply::ok(json),
            None => Reply::unknown_message(),
        },
        "DELETE" => {
            channels::delete_stored(config, state, message_id);
            Reply::no_content()
        }
        _ => Reply::unhandled(),
    }
}

impl FakeDiscord {
    /// Every execution request of a channel webhook (`POST
    /// /webhooks/{id}/{token}`, interaction follow-ups excluded), failed ones
    /// included, oldest first.
    pub fn webhook_executions(&self) -> Vec<crate::discord::RecordedRequest> {
        let app = &self.shared.config.application_id;
        self.shared.read(|s| {
            s.requests
                .iter()
                .filter(|r| {
                    let segments: Vec<&str> =
                        r.api_path().trim_start_matches('/').split('/').collect();
                    r.method == "POST"
                        && segments.len() == 3
                        && segments[0] == "webhooks"
                        && segments[1] != app
                })
                .cloned()
                .collect()
        })
    }

    /// Every edit of a channel webhook's message (`PATCH
    /// /webhooks/{id}/{token}/messages/{message}`), refused ones included, oldest first.
    pub fn webhook_edits(&self) -> Vec<crate::discord::RecordedRequest> {
        self.shared.read(|s| {
            s.requests
                .iter()
                .filter(|r| {
                    let segments: Vec<&str> =
                        r.api_path().trim_start_matches('/').split('/').collect();
                    r.method == "PATCH"
                        && segments.len() == 5
                        && segments[0] == "webhooks"
                        && segments[3] == "messages"
                })
                .cloned()
                .collect()
        })
    }

    /// The requests answered 429 Too Many Requests, oldest first.
    pub fn rate_limited(&self) -> Vec<crate::discord::RecordedRequest> {
        self.shared.read(|s| {
            s.requests
                .iter()
                .filter(|r| r.status == 429)
                .cloned()
                .collect()
        })
    }

    /// The webhooks that exist now (not deleted), as `GET /webhooks/{id}` returns them.
    pub fn webhooks(&self) -> Vec<Value> {
        let shared = &self.shared;
        shared.read(|s| {
            s.webhooks
                .iter()
                .filter(|w| !w.deleted)
                .map(|w| view(shared, w).to_json())
                .collect()
        })
    }

    /// Someone deletes a webhook in Discord's UI: later uses answer 404
    /// Unknown Webhook (10015), and WEBHOOKS_UPDATE is dispatched. Returns
    /// whether the webhook existed.
    pub fn delete_webhook_externally(&self, webhook_id: &str) -> bool {
        self.shared.update(|s| {
            let Some(webhook) = s.webhook_mut(webhook_id) else {
                return false;
            };
            webhook.deleted = true;
            let event = json!({"guild_id": webhook.guild_id, "channel_id": webhook.channel_id});
            s.gateway.dispatch("WEBHOOKS_UPDATE", event);
            true
        })
    }
}
