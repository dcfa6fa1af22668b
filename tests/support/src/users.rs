//! Playing Discord users in end-to-end tests: slash commands and their answers.

use personae_fakes::discord::CommandSpec;
use serde_json::{json, Value};

use super::bot::{Bot, WAIT};

/// Every permission but Manage Server (32): a member trusted with the channel who doesn't
/// run the server.
pub const MEMBER_PERMISSIONS: &str = "2147483615";

/// Every permission, Manage Server included.
pub const MANAGER_PERMISSIONS: &str = "2147483647";

/// `/NAME options…` by `user` in the default channel, with every permission but Manage
/// Server.
pub fn command(user: &str, name: &str, options: Vec<Value>) -> CommandSpec {
    CommandSpec {
        user_id: user.to_owned(),
        user_name: format!("user{user}"),
        permissions: MEMBER_PERMISSIONS.to_owned(),
        ..CommandSpec::new(name, options)
    }
}

/// `/personality SUB options…` by `user`.
#[allow(clippy::needless_pass_by_value)] // Called with `vec![…]` literals, like `command`.
pub fn personality(user: &str, sub: &str, options: Vec<Value>) -> CommandSpec {
    command(
        user,
        "personality",
        vec![json!({"name": sub, "type": 1, "options": options})],
    )
}

/// A string option.
pub fn text_option(name: &str, value: &str) -> Value {
    json!({"name": name, "type": 3, "value": value})
}

/// A boolean option.
pub fn bool_option(name: &str, value: bool) -> Value {
    json!({"name": name, "type": 5, "value": value})
}

/// The option being typed, for autocomplete.
pub fn focused(name: &str, typed: &str) -> Value {
    json!({"name": name, "type": 3, "value": typed, "focused": true})
}

/// Runs a slash command and returns its interaction id and the bot's callback.
pub async fn run(bot: &Bot, spec: CommandSpec) -> (String, Value) {
    let id = bot.discord.slash_command(spec).await;
    let response = bot
        .discord
        .wait_interaction_response(&id, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n--- bot logs ---\n{}", bot.logs()));
    (id, response)
}

/// Runs a slash command and returns the bot's callback.
pub async fn answer(bot: &Bot, spec: CommandSpec) -> Value {
    run(bot, spec).await.1
}
