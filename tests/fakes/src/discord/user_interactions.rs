//! What users do that becomes an interaction: slash commands, message
//! commands, autocomplete, component clicks and modal submissions. Each is stored
//! (for the answers the bot sends, see `interactions`) and dispatched as
//! INTERACTION_CREATE in the shape Discord sends.

use std::time::Instant;

use serde_json::{json, Value};

use super::channels::bot_user;
use super::interactions::{APPLICATION_COMMAND, AUTOCOMPLETE, MESSAGE_COMPONENT, MODAL_SUBMIT};

/// `data.type` of a message command (a chat-input command is 1, a user command 2).
const MESSAGE_COMMAND: u8 = 3;
use super::payloads::{self, MessageDraft, ALL_PERMISSIONS};
use super::state::{Interaction, State, StoredMessage};
use super::FakeDiscord;

/// A slash command (or, through [`FakeDiscord::autocomplete`], an
/// autocomplete request) by a user. `Default`: alice (7001) in channel 6001
/// of guild 8001 with all permissions.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    /// The invoking user's id.
    pub user_id: String,
    /// The invoking user's username.
    pub user_name: String,
    /// Where the command is used.
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

/// A message command: a user picks a command from a message's "Apps" menu
/// (see [`FakeDiscord::message_command`]). `Default`: alice (7001) in
/// channel 6001 of guild 8001 with all permissions.
#[derive(Clone, Debug)]
pub struct MessageCommandSpec {
    /// The invoking user's id.
    pub user_id: String,
    /// The invoking user's username.
    pub user_name: String,
    /// Where the command is used: the target message's channel.
    pub channel_id: String,
    /// `None`: the command is used in a DM with the bot.
    pub guild_id: Option<String>,
    /// The member's permission bitfield in the channel.
    pub permissions: String,
    /// The command's name as registered, e.g. `Personality info`.
    pub name: String,
    /// The message the command is used on. A stored message is sent whole
    /// in `data.resolved.messages`; an unknown id gets a minimal message by
    /// the bot.
    pub target_id: String,
}

impl Default for MessageCommandSpec {
    fn default() -> Self {
        Self {
            user_id: "7001".to_owned(),
            user_name: "alice".to_owned(),
            channel_id: "6001".to_owned(),
            guild_id: Some("8001".to_owned()),
            permissions: ALL_PERMISSIONS.to_owned(),
            name: String::new(),
            target_id: String::new(),
        }
    }
}

/// A click on a message component (button or select menu). `Default`:
/// alice in channel 6001 of guild 8001, a button.
#[derive(Clone, Debug)]
pub struct ComponentSpec {
    /// The user's id.
    pub user_id: String,
    /// The user's username.
    pub user_name: String,
    /// Where the interaction happens.
    pub channel_id: String,
    /// `None`: in a DM with the bot.
    pub guild_id: Option<String>,
    /// The member's permission bitfield in the channel.
    pub permissions: String,
    /// The component's custom id, as the bot set it.
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
    /// The user's id.
    pub user_id: String,
    /// The user's username.
    pub user_name: String,
    /// Where the interaction happens.
    pub channel_id: String,
    /// `None`: in a DM with the bot.
    pub guild_id: Option<String>,
    /// The member's permission bitfield in the channel.
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

impl FakeDiscord {
    /// A user runs a slash command: INTERACTION_CREATE (type 2) is
    /// dispatched. Returns the interaction id.
    pub async fn slash_command(&self, spec: CommandSpec) -> String {
        self.command_interaction(APPLICATION_COMMAND, spec)
    }

    /// A user runs a message command on a message: INTERACTION_CREATE
    /// (type 2) with `data.type` 3, the `target_id` and the message in
    /// `data.resolved.messages`, as Discord sends it. Returns the
    /// interaction id.
    pub async fn message_command(&self, spec: MessageCommandSpec) -> String {
        let origin = Origin {
            user_id: &spec.user_id,
            user_name: &spec.user_name,
            channel_id: &spec.channel_id,
            guild_id: spec.guild_id.as_deref(),
            permissions: &spec.permissions,
        };
        let config = &self.shared.config;
        self.interact(
            APPLICATION_COMMAND,
            &origin,
            Some(&spec.name),
            None,
            |state| {
                let command_id = state
                    .commands
                    .id_of(&spec.name, spec.guild_id.as_deref())
                    .unwrap_or_else(|| state.ids.next());
                let message = state.messages.get(&spec.target_id).map_or_else(
                    || {
                        MessageDraft::new(&spec.target_id, &spec.channel_id, bot_user(config), "")
                            .to_json()
                    },
                    StoredMessage::to_json,
                );
                let mut data = json!({
                    "id": command_id,
                    "name": spec.name,
                    "type": MESSAGE_COMMAND,
                    "target_id": spec.target_id,
                    "resolved": {"messages": {spec.target_id.clone(): message}},
                });
                if let Some(guild_id) = &spec.guild_id {
                    data["guild_id"] = json!(guild_id);
                }
                data
            },
        )
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
        let guild_id = self.shared.config.guild_id.clone();
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
            let mut resolved = super::cdn::resolved_attachments(&state.cdn, &spec.options)
                .unwrap_or_else(|| json!({}));
            let channels = resolved_channels(state, &spec.options, &guild_id);
            if !channels.is_empty() {
                resolved["channels"] = json!(channels);
            }
            if resolved.as_object().is_some_and(|r| !r.is_empty()) {
                data["resolved"] = resolved;
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
                    files: Vec::new(),
                },
            );
            id
        })
    }
}

/// `resolved.channels` for the channel options (type 7) among `options`, at any depth
/// (subcommands nest theirs), as Discord sends them: partial channels with permissions.
fn resolved_channels(
    state: &State,
    options: &[Value],
    guild_id: &str,
) -> serde_json::Map<String, Value> {
    let mut resolved = serde_json::Map::new();
    for option in options {
        if let Some(nested) = option["options"].as_array() {
            resolved.extend(resolved_channels(state, nested, guild_id));
        }
        if option["type"] == 7 {
            if let Some(id) = option["value"].as_str() {
                let mut channel = partial_channel(&state.channel(id, guild_id));
                channel["permissions"] = json!(ALL_PERMISSIONS);
                resolved.insert(id.to_owned(), channel);
            }
        }
    }
    resolved
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
