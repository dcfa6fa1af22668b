//! The bot's answers to interactions (sent by `user_interactions`): the
//! callback, follow-ups through `/webhooks/{app}/{token}`, and edits of
//! `@original` — served as Discord does and kept for tests to inspect.
//!
//! As on Discord, an interaction can be acknowledged once, within
//! [`FakeDiscordConfig::interaction_ack_deadline`](super::FakeDiscordConfig::interaction_ack_deadline),
//! with a callback type that fits it; follow-ups need an acknowledgement
//! first. Breaking these rules is answered as Discord does and listed in
//! [`FakeDiscord::validation_errors`].

use std::time::Duration;

use serde_json::{json, Value};

use super::channels::{self, bot_user, empty_message_reply, is_empty_message};
use super::payloads::MessageDraft;
use super::record::RecordedRequest;
use super::rest::{reject, Reply};
use super::state::{Interaction, Shared, State, StoredMessage};
use super::FakeDiscord;

/// Interaction types.
pub(crate) const APPLICATION_COMMAND: u8 = 2;
pub(crate) const MESSAGE_COMPONENT: u8 = 3;
pub(crate) const AUTOCOMPLETE: u8 = 4;
pub(crate) const MODAL_SUBMIT: u8 = 5;

/// Message flags.
const EPHEMERAL: u64 = 64;
const LOADING: u64 = 128;

/// Whether `/webhooks/{app}/{token}` addresses an interaction.
pub(crate) fn is_interaction_webhook(
    shared: &Shared,
    state: &State,
    app: &str,
    token: &str,
) -> bool {
    app == shared.config.application_id && state.interaction_tokens.contains_key(token)
}

/// `POST /interactions/{id}/{token}/callback`.
pub(crate) fn callback(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    id: &str,
    token: &str,
    body: &Value,
) -> Reply {
    let config = &shared.config;
    let Some(interaction) = state
        .interactions
        .get(id)
        .filter(|i| i.token == token)
        .cloned()
    else {
        return Reply::unknown_interaction();
    };
    if interaction.callback.is_some() {
        let reply = Reply::error(400, 40060, "Interaction has already been acknowledged.");
        return reject(
            state,
            request,
            "second acknowledgement of the interaction",
            reply,
        );
    }
    if let Some(deadline) = config.interaction_ack_deadline {
        let waited = interaction.sent_at.elapsed();
        if waited > deadline {
            let reason = format!("acknowledged after {waited:?}, Discord allows {deadline:?}");
            return reject(state, request, &reason, Reply::unknown_interaction());
        }
    }
    let kind = body["type"].as_u64().unwrap_or(0);
    if let Some(problem) = unfit_callback(&interaction, kind) {
        let reply = Reply::invalid_field("type", "INTERACTION_CALLBACK_TYPE_INVALID", &problem);
        return reject(state, request, &problem, reply);
    }
    let data = body
        .get("data")
        .filter(|d| d.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    if kind == 4 && is_empty_message(&data) {
        return reject(
            state,
            request,
            "Cannot send an empty message",
            empty_message_reply(),
        );
    }
    let original = match kind {
        4 | 5 => {
            let message = response_message(state, config, &interaction, &data, kind == 5);
            let id = message.draft.id.clone();
            channels::store_bot_message(config, state, message);
            Some(id)
        }
        7 => {
            if let Some(message_id) = &interaction.message_id {
                channels::edit_stored(config, state, message_id, &data);
            }
            None
        }
        _ => None,
    };
    if let Some(stored) = state.interactions.get_mut(id) {
        stored.callback = Some(body.clone());
        stored.original_id = original;
        stored.files.extend(request.files.iter().cloned());
    }
    Reply::no_content()
}

/// Why a callback type does not fit an interaction, per Discord's rules.
fn unfit_callback(interaction: &Interaction, kind: u64) -> Option<String> {
    let fits = match interaction.kind {
        AUTOCOMPLETE => kind == 8,
        APPLICATION_COMMAND => matches!(kind, 4 | 5 | 9),
        MESSAGE_COMPONENT => matches!(kind, 4..=7 | 9),
        MODAL_SUBMIT if interaction.message_id.is_some() => matches!(kind, 4..=7),
        MODAL_SUBMIT => matches!(kind, 4 | 5),
        _ => true,
    };
    (!fits).then(|| {
        format!(
            "callback type {kind} is not valid for an interaction of type {}",
            interaction.kind
        )
    })
}

/// The original response message of a type 4 (or deferred type 5) callback.
fn response_message(
    state: &mut State,
    config: &super::FakeDiscordConfig,
    interaction: &Interaction,
    data: &Value,
    deferred: bool,
) -> StoredMessage {
    let id = state.ids.next();
    let mut draft = MessageDraft::new(&id, &interaction.channel_id, bot_user(config), "");
    if deferred {
        draft.flags = (data["flags"].as_u64().unwrap_or(0) & EPHEMERAL) | LOADING;
    } else {
        draft.apply_body(data);
    }
    draft.kind = if interaction.kind == APPLICATION_COMMAND {
        20
    } else {
        0
    };
    draft.webhook_id = Some(config.application_id.clone());
    draft.application_id = Some(config.application_id.clone());
    draft.interaction_metadata = Some(interaction_metadata(interaction));
    StoredMessage {
        draft,
        guild_id: interaction.guild_id.clone(),
    }
}

fn interaction_metadata(interaction: &Interaction) -> Value {
    let owners = match &interaction.guild_id {
        Some(guild_id) => json!({"0": guild_id}),
        None => json!({"0": "0"}),
    };
    let mut metadata = json!({
        "id": interaction.id,
        "type": interaction.kind,
        "user": interaction.user,
        "authorizing_integration_owners": owners,
    });
    if let Some(name) = &interaction.name {
        metadata["name"] = json!(name);
    }
    metadata
}

/// Routes under `/webhooks/{app}/{interaction token}`: `rest` is what
/// follows the token (`[]` or `["messages", id]`).
pub(crate) fn webhook_route(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    token: &str,
    rest: &[&str],
    body: &Value,
) -> Reply {
    if let Some(interaction) = state.interaction_by_token_mut(token) {
        interaction.files.extend(request.files.iter().cloned());
    }
    match (request.method.as_str(), rest) {
        ("POST", []) => followup(shared, state, request, token, body),
        (method, ["messages", message]) => {
            response_message_route(shared, state, request, method, token, message, body)
        }
        _ => Reply::unhandled(),
    }
}

/// `POST /webhooks/{app}/{token}`: a follow-up message.
fn followup(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    token: &str,
    body: &Value,
) -> Reply {
    let config = &shared.config;
    let Some(interaction) = state.interaction_by_token(token).cloned() else {
        return Reply::unknown_webhook();
    };
    if interaction.callback.is_none() {
        return reject(
            state,
            request,
            "follow-up before the interaction was acknowledged",
            Reply::unknown_webhook(),
        );
    }
    if is_empty_message(body) {
        return reject(
            state,
            request,
            "Cannot send an empty message",
            empty_message_reply(),
        );
    }
    let id = state.ids.next();
    let mut draft = MessageDraft::new(&id, &interaction.channel_id, bot_user(config), "");
    draft.apply_body(body);
    draft.webhook_id = Some(config.application_id.clone());
    draft.application_id = Some(config.application_id.clone());
    draft.interaction_metadata = Some(interaction_metadata(&interaction));
    let message = StoredMessage {
        draft,
        guild_id: interaction.guild_id.clone(),
    };
    let json = message.to_json();
    channels::store_bot_message(config, state, message);
    if let Some(stored) = state.interaction_by_token_mut(token) {
        stored.followups.push(body.clone());
        stored.followup_ids.push(id);
    }
    Reply::ok(json)
}

/// `GET`/`PATCH`/`DELETE /webhooks/{app}/{token}/messages/{@original|id}`.
fn response_message_route(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    method: &str,
    token: &str,
    message: &str,
    body: &Value,
) -> Reply {
    let config = &shared.config;
    let Some(interaction) = state.interaction_by_token(token).cloned() else {
        return Reply::unknown_webhook();
    };
    let target = if message == "@original" {
        // For a component interaction acknowledged with type 6 or 7, the
        // original is the message the component is on.
        interaction.original_id.clone().or_else(|| {
            let updated = interaction
                .callback
                .as_ref()
                .is_some_and(|c| matches!(c["type"].as_u64(), Some(6 | 7)));
            interaction.message_id.clone().filter(|_| updated)
        })
    } else {
        let own = interaction.original_id.as_deref() == Some(message)
            || interaction.followup_ids.iter().any(|f| f == message);
        own.then(|| message.to_owned())
    };
    let Some(target) = target.filter(|t| state.messages.get(t).is_some()) else {
        if interaction.callback.is_none() {
            return reject(
                state,
                request,
                "response message used before the interaction was acknowledged",
                Reply::unknown_message(),
            );
        }
        return Reply::unknown_message();
    };
    match method {
        "GET" => state
            .messages
            .get(&target)
            .map_or_else(Reply::unknown_message, |m| Reply::ok(m.to_json())),
        "PATCH" => {
            let edited = channels::edit_stored(config, state, &target, body);
            if message == "@original" {
                if let Some(stored) = state.interaction_by_token_mut(token) {
                    stored.original_edits.push(body.clone());
                }
            }
            edited.map_or_else(Reply::unknown_message, Reply::ok)
        }
        "DELETE" => {
            channels::delete_stored(config, state, &target);
            Reply::no_content()
        }
        _ => Reply::unhandled(),
    }
}

impl FakeDiscord {
    /// Waits for the bot's callback to an interaction and returns its body
    /// (e.g. `{"type":4,"data":{"content":…}}`).
    pub async fn wait_interaction_response(
        &self,
        interaction_id: &str,
        timeout: Duration,
    ) -> Result<Value, String> {
        let what = format!("the response to interaction {interaction_id}");
        self.shared
            .wait_for(timeout, &what, |s| {
                s.interactions
                    .get(interaction_id)
                    .and_then(|i| i.callback.clone())
            })
            .await
    }

    /// The callback body, if the bot has answered.
    pub fn interaction_response(&self, interaction_id: &str) -> Option<Value> {
        self.shared.read(|s| {
            s.interactions
                .get(interaction_id)
                .and_then(|i| i.callback.clone())
        })
    }

    /// The files the bot uploaded answering an interaction (callback,
    /// follow-ups, edits), in order.
    pub fn interaction_files(&self, interaction_id: &str) -> Vec<super::UploadedFile> {
        self.shared.read(|s| {
            s.interactions
                .get(interaction_id)
                .map(|i| i.files.clone())
                .unwrap_or_default()
        })
    }

    /// Bodies of the follow-ups the bot sent for an interaction, in order.
    pub fn interaction_followups(&self, interaction_id: &str) -> Vec<Value> {
        self.shared.read(|s| {
            s.interactions
                .get(interaction_id)
                .map(|i| i.followups.clone())
                .unwrap_or_default()
        })
    }

    /// Waits until the bot has sent at least `count` follow-ups for an
    /// interaction and returns all of them.
    pub async fn wait_interaction_followups(
        &self,
        interaction_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>, String> {
        let what = format!("{count} follow-up(s) to interaction {interaction_id}");
        self.shared
            .wait_for(timeout, &what, |s| {
                s.interactions
                    .get(interaction_id)
                    .filter(|i| i.followups.len() >= count)
                    .map(|i| i.followups.clone())
            })
            .await
    }

    /// Bodies of the bot's edits of `@original`, in order.
    pub fn interaction_edits(&self, interaction_id: &str) -> Vec<Value> {
        self.shared.read(|s| {
            s.interactions
                .get(interaction_id)
                .map(|i| i.original_edits.clone())
                .unwrap_or_default()
        })
    }

    /// Waits for the first edit of `@original` and returns its body.
    pub async fn wait_interaction_edit(
        &self,
        interaction_id: &str,
        timeout: Duration,
    ) -> Result<Value, String> {
        let what = format!("an edit of the response to interaction {interaction_id}");
        self.shared
            .wait_for(timeout, &what, |s| {
                s.interactions
                    .get(interaction_id)
                    .and_then(|i| i.original_edits.first().cloned())
            })
            .await
    }

    /// The original response message as it stands now (after edits).
    pub fn interaction_original(&self, interaction_id: &str) -> Option<Value> {
        self.shared.read(|s| {
            let id = s.interactions.get(interaction_id)?.original_id.as_deref()?;
            s.messages.get(id).map(StoredMessage::to_json)
        })
    }

    /// The interaction token, e.g. to call the webhook routes directly.
    pub fn interaction_token(&self, interaction_id: &str) -> Option<String> {
        self.shared
            .read(|s| s.interactions.get(interaction_id).map(|i| i.token.clone()))
    }
}
