//! Which handler answers which REST route. Paths are matched without the
//! `/api/v10` prefix; anything not listed is answered 404 and recorded as
//! unhandled.

use serde_json::{json, Value};

use super::record::RecordedRequest;
use super::rest::Reply;
use super::state::{Shared, State};
use super::{channels, commands, interactions, payloads, rate_limits, webhooks};

/// Answers one request; runs under the state lock, so what a handler
/// changes becomes visible together with the recorded request.
pub(crate) fn route(
    shared: &Shared,
    state: &mut State,
    request: &RecordedRequest,
    path: &str,
) -> Reply {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let body = request.body.as_ref().unwrap_or(&Value::Null);
    let config = &shared.config;
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["gateway"]) => Reply::ok(json!({"url": shared.ws_url()})),
        ("GET", ["gateway", "bot"]) => Reply::ok(json!({
            "url": shared.ws_url(),
            "shards": 1,
            "session_start_limit":
                {"total": 1000, "remaining": 999, "reset_after": 86_400_000, "max_concurrency": 1},
        })),
        ("GET", ["oauth2", "applications", "@me"] | ["applications", "@me"]) => {
            let bot = payloads::user(&config.bot_user_id, &config.bot_username, true);
            Reply::ok(payloads::application(&config.application_id, &bot))
        }
        ("GET", ["users", "@me"]) => Reply::ok(payloads::current_user(
            &config.bot_user_id,
            &config.bot_username,
        )),
        ("GET", ["users", user_id]) => {
            let name = state.username(user_id);
            Reply::ok(payloads::user(
                user_id,
                &name,
                *user_id == config.bot_user_id,
            ))
        }
        ("GET", ["guilds", guild_id, "members", user_id]) if *guild_id == config.guild_id => {
            let name = state.username(user_id);
            let user = payloads::user(user_id, &name, *user_id == config.bot_user_id);
            Reply::ok(payloads::member(user, None))
        }
        ("GET", ["guilds", guild_id, "channels"]) if *guild_id == config.guild_id => {
            channels::list_guild_channels(shared, state)
        }

        ("GET", ["applications", app, "commands"]) => commands::list(shared, state, app, None),
        ("GET", ["applications", app, "guilds", guild, "commands"]) => {
            commands::list(shared, state, app, Some(guild))
        }
        ("PUT", ["applications", app, "commands"]) => {
            commands::overwrite(shared, state, request, app, None, body)
        }
        ("PUT", ["applications", app, "guilds", guild, "commands"]) => {
            commands::overwrite(shared, state, request, app, Some(guild), body)
        }
        ("POST", ["applications", app, "commands"]) => {
            commands::create(shared, state, request, app, None, body)
        }
        ("POST", ["applications", app, "guilds", guild, "commands"]) => {
            commands::create(shared, state, request, app, Some(guild), body)
        }

        ("GET", ["channels", channel]) => channels::get_channel(shared, state, channel),
        ("POST", ["channels", _, "typing"]) => Reply::no_content(),
        ("GET", ["channels", channel, "messages"]) => channels::history(state, request, channel),
        ("POST", ["channels", channel, "messages"]) => {
            channels::create_message(shared, state, request, channel, body)
        }
        ("GET", ["channels", channel, "messages", message]) => {
            channels::get_message(state, channel, message)
        }
        ("PATCH", ["channels", channel, "messages", message]) => {
            channels::edit_message(shared, state, request, channel, message, body)
        }
        ("DELETE", ["channels", channel, "messages", message]) => {
            channels::delete_message(shared, state, channel, message)
        }
        ("PUT" | "DELETE", ["channels", channel, "messages", message, "reactions", _, "@me"]) => {
            channels::react(state, channel, message)
        }

        ("POST", ["channels", channel, "webhooks"]) => {
            webhooks::create(shared, state, request, channel, body)
        }
        ("GET", ["channels", channel, "webhooks"]) => webhooks::list(shared, state, Some(channel)),
        ("GET", ["guilds", guild, "webhooks"]) if *guild == config.guild_id => {
            webhooks::list(shared, state, None)
        }
        ("GET", ["webhooks", id]) => webhooks::get(shared, state, id, None),
        ("PATCH", ["webhooks", id]) => webhooks::modify(shared, state, request, id, None, body),
        ("DELETE", ["webhooks", id]) => webhooks::delete(state, id, None),

        (_, ["webhooks", app, token, ..])
            if interactions::is_interaction_webhook(shared, state, app, token) =>
        {
            interactions::webhook_route(shared, state, request, token, &segments[3..], body)
        }
        ("GET", ["webhooks", id, token]) => webhooks::get(shared, state, id, Some(token)),
        ("PATCH", ["webhooks", id, token]) => {
            webhooks::modify(shared, state, request, id, Some(token), body)
        }
        ("DELETE", ["webhooks", id, token]) => webhooks::delete(state, id, Some(token)),
        ("POST", ["webhooks", id, token]) => rate_limits::limited(shared, state, id, |state| {
            webhooks::execute(shared, state, request, id, token, body)
        }),
        (_, ["webhooks", id, token, "messages", message]) => {
            rate_limits::limited(shared, state, id, |state| {
                webhooks::message(shared, state, request, id, token, message, body)
            })
        }

        ("POST", ["interactions", id, token, "callback"]) => {
            interactions::callback(shared, state, request, id, token, body)
        }

        _ => Reply::unhandled(),
    }
}
