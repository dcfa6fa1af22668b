//! Slash commands, one group per file. The first paragraph of each command's doc comment
//! is its description in Discord.

mod activation;
mod autocomplete;
mod conversation;
mod help;
mod message_actions;
mod personality;
mod settings;

use poise::serenity_prelude as serenity;
use tracing::error;

use super::{BotError, Context, Data, Error};
use crate::application::{Actor, RequestContext, ServiceError};
use crate::domain::{ServerId, UserId};

/// Every command the bot registers.
pub fn all() -> Vec<poise::Command<Data, Error>> {
    let mut commands = vec![help::help()];
    commands.extend(personality::commands());
    commands.extend(activation::commands());
    commands.extend(conversation::commands());
    commands.extend(settings::commands());
    commands.extend(message_actions::commands());
    commands
}

/// The invoking user as a domain id.
fn author_id(ctx: Context<'_>) -> Result<UserId, ServiceError> {
    Ok(UserId::new(ctx.author().id.get())?)
}

/// The server the command is used in; `None` in a DM.
fn server(ctx: Context<'_>) -> Option<ServerId> {
    ctx.guild_id().and_then(|g| ServerId::new(g.get()).ok())
}

/// The member's permissions where the interaction happens, as Discord resolved them; `None`
/// in a DM.
fn member_permissions(ctx: Context<'_>) -> Option<serenity::Permissions> {
    let poise::Context::Application(app) = ctx else {
        return None;
    };
    app.interaction.member.as_ref().and_then(|m| m.permissions)
}

/// Whether the member has Manage Server where the command is used.
fn manages_server(ctx: Context<'_>) -> bool {
    member_permissions(ctx).is_some_and(|p| p.manage_guild())
}

/// The invoking user as an actor, with bot-admin rights when listed in BOT_ADMIN_IDS.
fn actor(ctx: Context<'_>) -> Result<Actor, ServiceError> {
    Ok(ctx
        .data()
        .app
        .service
        .actor_for(author_id(ctx)?, manages_server(ctx)))
}

/// Who acts, where and why: the interaction id correlates everything it causes.
fn request(ctx: Context<'_>) -> Result<RequestContext, ServiceError> {
    Ok(RequestContext::interaction(actor(ctx)?, ctx.id()).in_server(server(ctx)))
}

/// The text for an error that a command answers itself (on a button click or a modal
/// submission, where poise's `on_error` can't answer): the user's sentence, or, for our
/// failures, a reference after logging it with the correlation id.
fn error_text(error: &BotError, ctx: Context<'_>) -> String {
    if let Some(message) = error.user_message() {
        message
    } else {
        let correlation_id = ctx.id();
        error!(correlation_id, command = %ctx.command().qualified_name, error = %error, "command failed");
        format!(
            "Something went wrong on our side. If it keeps happening, give the bot's host this reference: {correlation_id}."
        )
    }
}
