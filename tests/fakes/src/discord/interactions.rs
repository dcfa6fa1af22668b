//! Interactions: the fake sends slash commands, autocomplete requests,
//! button clicks and modal submissions as INTERACTION_CREATE, then serves
//! the bot's answers — the callback, follow-ups through
//! `/webhooks/{app}/{token}`, and edits of `@original` — and keeps them for
//! tests to inspect.
//!
//! As on Discord, an interaction can be acknowledged once, within
//! [`FakeDiscordConfig::interaction_ack_deadline`](super::FakeDiscordConfig::interaction_ack_deadline),
//! with a callback type that fits it; follow-ups need an acknowledgement
//! first. Breaking these rules is answered as Discord does and listed in
//! [`FakeDiscord::validation_errors`].

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::channels::{self, bot_user, empty_message_reply, is_empty_message};
use super::payloads::{self, MessageDraft, ALL_PERMISSIONS};
use super::record::RecordedRequest;
use super::rest::{reject, Reply};
use super::state::{Interaction, Shared, State, StoredMessage};
use super::FakeDiscord;

/// Interaction types.
const APPLICATION_COMMAND: u8 = 2;
const MESSAGE_COMPONENT: u8 = 3;
const AUTOCOMPLETE: u8 = 4;
const MODAL_SUBMIT: u8 = 5;

/// Message flags.
const EPHEMERAL: u64 = 64;
const LOADING: u64 = 128;

/// A slash command (or, through [`FakeDiscord::autocomplete`], an
/// autocomplete request) by a user. `Default`: alice (7001) in channel 6001
/// of guild 8001 with all permissions.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    /// `None`: the command is used in a DM with the bot.
    pub guild_id: Option<String>,
    /// The member's permission bitfield in the channel.
    pub permissions: String,
    /// The top-level command name, e.g. `personality`.
    pub name: String,
    /// `data.options`, e.g. a subcommand with its options:
    /// `[{"name":"create","type":1,"options":[{"name":"name","type":3,"value":"Aria"}]}]`.
    /// For autocomplete, mark the option being typed with `"focused": true`
    /// (its value is a string, even for number options).
    pub options: Vec<Value>,
}

impl Default for CommandSpec {
    fn default() -> Self {
        Self {
            user_id: "7001".to_owned(),
            user_name: "alice".to_owned(),
            channel_id: "6001".to_owned(),
            guild_id: Some("8001".to_owned()),
            permissions: ALL_PERMISSIONS.to_owned(),
            name: String::new(),
            options: Vec::new(),
        }
    }
}

impl CommandSpec {
    /// `/name` with these options, by alice in the default channel.
    pub fn new(name: &str, options: Vec<Value>) -> Self {
        Self {
            name: name.to_owned(),
            options,
            ..Self::default()
        }
    }
}

/// A click on a message component (button or select menu). `Default`:
/// alice in channel 6001 of guild 8001, a button.
#[derive(Clone, Debug)]
pub struct ComponentSpec {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub guild_id: Option<String>,
    pub permissions: String,
    pub custom_id: String,
    /// The message the component is on. A stored message is sent whole;
    /// an unknown id gets a minimal message by the bot.
    pub message_id: String,
    /// 2 button (default), 3 string select, …
    pub component_type: u8,
    /// Selected values, for select menus.
    pub values: Vec<String>,
}

impl Default for ComponentSpec {
    fn default() -> Self {
        Self {
            user_id: "7001".to_owned(),
            user_name: "alice".to_owned(),
            channel_id: "6001".to_owned(),
            guild_id: Some("8001".to_owned()),
            permissions: ALL_PERMISSIONS.to_owned(),
            custom_id: String::new(),
            message_id: String::new(),
            component_type: 2,
            values: Vec::new(),
        }
    }
}

/// A submitted modal. `Default`: alice in channel 6001 of guild 8001.
#[derive(Clone, Debug)]
pub struct ModalSpec {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub guild_id: Option<String>,
    pub permissions: String,
    /// The modal's custom id, as the bot set it.
    pub custom_id: String,
    /// `data.components`: action rows of text inputs with their values, e.g.
    /// `[{"type":1,"components":[{"type":4,"custom_id":"name","value":"Aria"}]}]`.
    pub components: Vec<Value>,
    /// The message whose component opened the modal, if any.
    pub message_id: Option<String>,
}

impl Default for ModalSpec {
    fn default() -> Self {
        Self {
            user_id: "7001".to_owned(),
            user_name: "alice".to_owned(),
            channel_id: "6001".to_owned(),
            guild_id: Some("8001".to_owned()),
            permissions: ALL_PERMISSIONS.to_owned(),
            custom_id: String::new(),
            components: Vec::new(),
            message_id: None,
        }
    }
}

/// Who triggers an interaction, and where.
struct Origin<'a> {
    user_id: &'a str,
    user_name: &'a str,
    channel_id: &'a str,
    guild_id: Option<&'a str>,
    permissions: &'a str,
}

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
    /// A user runs a slash command: INTERACTION_CREATE (type 2) is
    /// dispatched. Returns the interaction id.
    pub async fn slash_command(&self, spec: CommandSpec) -> String {
        self.command_interaction(APPLICATION_COMMAND, spec)
    }

    /// A user types in an autocomplete option: INTERACTION_CREATE (type 4)
    /// with the same shape as a command; one option should carry
    /// `"focused": true`. Returns the interaction id; the bot answers with a
    /// type 8 callback.
    pub async fn autocomplete(&self, spec: CommandSpec) -> String {
        self.command_interaction(AUTOCOMPLETE, spec)
    }

    fn command_interaction(&self, kind: u8, spec: CommandSpec) -> String {
        let origin = Origin {
            user_id: &spec.user_id,
            user_name: &spec.user_name,
            channel_id: &spec.channel_id,
            guild_id: spec.guild_id.as_deref(),
            permissions: &spec.permissions,
        };
        self.interact(kind, &origin, Some(&spec.name), None, |state| {
            let command_id = state
                .commands
                .id_of(&spec.name, spec.guild_id.as_deref())
                .unwrap_or_else(|| state.ids.next());
            let mut data =
                json!({"id": command_id, "name": spec.name, "type": 1, "options": spec.options});
            if let Some(guild_id) = &spec.guild_id {
                data["guild_id"] = json!(guild_id);
            }
            data
        })
    }

    /// A user clicks a button (or picks from a select menu) on a message:
    /// INTERACTION_CREATE (type 3) with the whole message. Returns the
    /// interaction id.
    pub async fn button_click(&self, spec: ComponentSpec) -> String {
        let origin = Origin {
            user_id: &spec.user_id,
            user_name: &spec.user_name,
            channel_id: &spec.channel_id,
            guild_id: spec.guild_id.as_deref(),
            permissions: &spec.permissions,
        };
        self.interact(
            MESSAGE_COMPONENT,
            &origin,
            None,
            Some(&spec.message_id),
            |_| {
                let mut data =
                    json!({"custom_id": spec.custom_id, "component_type": spec.component_type});
                if spec.component_type != 2 {
                    data["values"] = json!(spec.values);
                }
                data
            },
        )
    }

    /// A user submits a modal: INTERACTION_CREATE (type 5). Returns the
    /// interaction id.
    pub async fn modal_submit(&self, spec: ModalSpec) -> String {
        let origin = Origin {
            user_id: &spec.user_id,
            user_name: &spec.user_name,
            channel_id: &spec.channel_id,
            guild_id: spec.guild_id.as_deref(),
            permissions: &spec.permissions,
        };
        self.interact(
            MODAL_SUBMIT,
            &origin,
            None,
            spec.message_id.as_deref(),
            |_| json!({"custom_id": spec.custom_id, "components": spec.components}),
        )
    }

    /// Builds, stores and dispatches one interaction.
    fn interact(
        &self,
        kind: u8,
        origin: &Origin<'_>,
        name: Option<&str>,
        message_id: Option<&str>,
        data: impl FnOnce(&mut State) -> Value,
    ) -> String {
        let config = &self.shared.config;
        self.shared.update(|state| {
            let id = state.ids.next();
            let token = state.ids.token("itok");
            let user = payloads::user(origin.user_id, origin.user_name, false);
            state
                .users
                .insert(origin.user_id.to_owned(), origin.user_name.to_owned());
            if origin.guild_id.is_none() && !state.channels.contains_key(origin.channel_id) {
                let channel = payloads::dm_channel(origin.channel_id, user.clone());
                state.channels.insert(origin.channel_id.to_owned(), channel);
            }
            let channel = state.channel(origin.channel_id, &config.guild_id);
            let mut payload = json!({
                "id": id,
                "application_id": config.application_id,
                "type": kind,
                "token": token,
                "version": 1,
                "channel_id": origin.channel_id,
                "channel": partial_channel(&channel),
                "app_permissions": ALL_PERMISSIONS,
                "locale": "en-US",
                "entitlements": [],
                "attachment_size_limit": 10_485_760,
                "data": data(state),
            });
            match origin.guild_id {
                Some(guild_id) => {
                    payload["guild_id"] = json!(guild_id);
                    payload["guild_locale"] = json!("en-US");
                    payload["member"] = payloads::member(user.clone(), Some(origin.permissions));
                    payload["authorizing_integration_owners"] = json!({"0": guild_id});
                    payload["context"] = json!(0);
                }
                None => {
                    payload["user"] = user.clone();
                    payload["authorizing_integration_owners"] = json!({"0": "0"});
                    payload["context"] = json!(1);
                }
            }
            if let Some(message_id) = message_id {
                payload["message"] = state.messages.get(message_id).map_or_else(
                    || {
                        MessageDraft::new(message_id, origin.channel_id, bot_user(config), "")
                            .to_json()
                    },
                    StoredMessage::to_json,
                );
            }
            state.gateway.dispatch("INTERACTION_CREATE", payload);
            state.interaction_tokens.insert(token.clone(), id.clone());
            state.interactions.insert(
                id.clone(),
                Interaction {
                    id: id.clone(),
                    token,
                    kind,
                    channel_id: origin.channel_id.to_owned(),
                    guild_id: origin.guild_id.map(str::to_owned),
                    user,
                    name: name.map(str::to_owned),
                    message_id: message_id.map(str::to_owned),
                    sent_at: Instant::now(),
                    callback: None,
                    original_id: None,
                    followups: Vec::new(),
                    followup_ids: Vec::new(),
                    original_edits: Vec::new(),
                },
            );
            id
        })
    }

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

/// The `channel` object an interaction carries.
fn partial_channel(channel: &Value) -> Value {
    let mut partial = json!({"id": channel["id"], "type": channel["type"]});
    for key in [
        "name",
        "guild_id",
        "parent_id",
        "thread_metadata",
        "recipients",
    ] {
        if let Some(value) = channel.get(key).filter(|v| !v.is_null()) {
            partial[key] = value.clone();
        }
    }
    partial
}
