//! Application command registration: bulk overwrite (`PUT`), single create
//! (`POST`) and listing, globally or per guild. Beyond the schema, the fake
//! checks what Discord checks for chat-input commands (lower-case names
//! without spaces, a description, and unique names) and for the commands of
//! the "Apps" menus (short names, no description, no options).

use std::collections::HashSet;

use serde_json::Value;

use super::payloads;
use super::record::RecordedRequest;
use super::rest::{reject, Reply};
use super::state::{Shared, State};
use super::FakeDiscord;

fn wrong_application(state: &mut State, request: &RecordedRequest) -> Reply {
    let reply = Reply::error(
        403,
        20012,
        "You are not authorized to perform this action on this application",
    );
    reject(
        state,
        request,
        "application id in the path is not the bot's",
        reply,
    )
}

/// `GET /applications/{app}[/guilds/{guild}]/commands`.
pub(crate) fn list(shared: &Shared, state: &State, app: &str, guild: Option<&str>) -> Reply {
    if app != shared.config.application_id {
        return Reply::error(
            403,
            20012,
            "You are not authorized to perform this action on this application",
        );
    }
    let scope = guild.map(str::to_owned);
    Reply::ok(Value::Array(
        state
            .commands
            .registered
            .get(&scope)
            .cloned()
            .unwrap_or_default(),
    ))
}

/// `PUT /applications/{app}[/guilds/{guild}]/commands`: replaces the scope's
/// commands; commands keep their id when their name stays.
pub(crate) fn overwrite(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    app: &str,
    guild: Option<&str>,
    body: &Value,
) -> Reply {
    if app != shared.config.application_id {
        return wrong_application(state, request);
    }
    let commands = body.as_array().cloned().unwrap_or_default();
    if let Some((field, message)) = check_commands(&commands) {
        let reply = Reply::invalid_field(&field, "APPLICATION_COMMAND_INVALID", &message);
        return reject(state, request, &format!("{field}: {message}"), reply);
    }
    let registered: Vec<Value> = commands
        .iter()
        .map(|command| {
            let name = command["name"].as_str().unwrap_or_default();
            let id = state
                .commands
                .id_of(name, guild)
                .unwrap_or_else(|| state.ids.next());
            payloads::command_response(command, &id, app, guild)
        })
        .collect();
    state
        .commands
        .registered
        .insert(guild.map(str::to_owned), registered.clone());
    state.commands.last_request = commands;
    state.commands.registrations += 1;
    Reply::ok(Value::Array(registered))
}

/// `POST /applications/{app}[/guilds/{guild}]/commands`: adds or replaces
/// one command (201 when new, 200 when it replaced one).
pub(crate) fn create(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    app: &str,
    guild: Option<&str>,
    body: &Value,
) -> Reply {
    if app != shared.config.application_id {
        return wrong_application(state, request);
    }
    if let Some((field, message)) = check_command(body, "") {
        let reply = Reply::invalid_field(&field, "APPLICATION_COMMAND_INVALID", &message);
        return reject(state, request, &format!("{field}: {message}"), reply);
    }
    let name = body["name"].as_str().unwrap_or_default();
    let existing = state.commands.id_of(name, guild);
    let id = existing.clone().unwrap_or_else(|| state.ids.next());
    let response = payloads::command_response(body, &id, app, guild);
    let scope = state
        .commands
        .registered
        .entry(guild.map(str::to_owned))
        .or_default();
    scope.retain(|c| c["name"] != name);
    scope.push(response.clone());
    state.commands.last_request = vec![body.clone()];
    state.commands.registrations += 1;
    Reply::json(if existing.is_some() { 200 } else { 201 }, response)
}

/// The first problem in a list of commands: `(field path, message)`.
fn check_commands(commands: &[Value]) -> Option<(String, String)> {
    let mut seen = HashSet::new();
    for (index, command) in commands.iter().enumerate() {
        let prefix = format!("{index}.");
        if let Some(problem) = check_command(command, &prefix) {
            return Some(problem);
        }
        let key = (
            command["type"].as_u64().unwrap_or(1),
            command["name"].as_str().unwrap_or_default(),
        );
        if !seen.insert(key) {
            return Some((
                format!("{prefix}name"),
                "Application command names must be unique".to_owned(),
            ));
        }
    }
    None
}

/// Discord's rules for chat-input (type 1) commands and their options, and
/// for user and message commands (types 2 and 3, the "Apps" menus).
fn check_command(command: &Value, prefix: &str) -> Option<(String, String)> {
    if command["type"].as_u64().unwrap_or(1) != 1 {
        return check_menu_command(command, prefix);
    }
    check_named(command, prefix)
}

/// A user or message command: a name of 1 to 32 characters (spaces and
/// capitals allowed), no description and no options.
fn check_menu_command(command: &Value, prefix: &str) -> Option<(String, String)> {
    let name = command["name"].as_str().unwrap_or_default();
    if name.trim().is_empty() || name.chars().count() > 32 {
        return Some((
            format!("{prefix}name"),
            format!("Command name is invalid: {name:?}"),
        ));
    }
    if command["description"]
        .as_str()
        .is_some_and(|d| !d.is_empty())
    {
        return Some((
            format!("{prefix}description"),
            "Context menu commands cannot have description".to_owned(),
        ));
    }
    if command["options"].as_array().is_some_and(|o| !o.is_empty()) {
        return Some((
            format!("{prefix}options"),
            "Context menu commands cannot have options".to_owned(),
        ));
    }
    None
}

fn check_named(item: &Value, prefix: &str) -> Option<(String, String)> {
    let name = item["name"].as_str().unwrap_or_default();
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c == '-' || c == '_' || c.is_alphanumeric())
        && !name.chars().any(char::is_uppercase);
    if !valid_name {
        return Some((
            format!("{prefix}name"),
            format!("Command name is invalid: {name:?}"),
        ));
    }
    if item["description"].as_str().is_none_or(str::is_empty) {
        return Some((
            format!("{prefix}description"),
            "This field is required".to_owned(),
        ));
    }
    let options = item["options"].as_array().map_or(&[][..], Vec::as_slice);
    let mut names = HashSet::new();
    for (index, option) in options.iter().enumerate() {
        let option_prefix = format!("{prefix}options.{index}.");
        if let Some(problem) = check_named(option, &option_prefix) {
            return Some(problem);
        }
        if !names.insert(option["name"].as_str().unwrap_or_default()) {
            return Some((
                format!("{option_prefix}name"),
                "Option names must be unique".to_owned(),
            ));
        }
    }
    let required_after_optional = options.windows(2).any(|pair| {
        pair[0]["required"] != true
            && pair[1]["required"] == true
            && pair[1]["type"].as_u64() > Some(2)
    });
    if required_after_optional {
        return Some((
            format!("{prefix}options"),
            "Required options must be placed before non-required options".to_owned(),
        ));
    }
    None
}

impl FakeDiscord {
    /// The command bodies of the most recent successful registration
    /// request (a bulk `PUT`, or the single command of a `POST`).
    pub fn registered_commands(&self) -> Vec<Value> {
        self.shared.read(|s| s.commands.last_request.clone())
    }
}
