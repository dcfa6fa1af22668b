//! `/activate` and `/deactivate`: a personality that answers every message in a channel.
//! Both need Manage Messages: by default in Discord (server admins can change who sees the
//! commands in Server Settings → Integrations), and checked again on every use.

use super::autocomplete::any_personality;
use super::request;
use crate::discord::channels;
use crate::discord::reply::{self, escape_markdown};
use crate::discord::{BotError, Context, Data, Error};

/// `/activate` and `/deactivate`.
pub fn commands() -> Vec<poise::Command<Data, Error>> {
    vec![activate(), deactivate()]
}

/// Make a personality answer every message in this channel.
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_MESSAGES",
    required_permissions = "MANAGE_MESSAGES"
)]
pub async fn activate(
    ctx: Context<'_>,
    #[description = "The personality that will answer every message here"]
    #[autocomplete = "any_personality"]
    personality: String,
) -> Result<(), Error> {
    let app = &ctx.data().app;
    let channel = channels::facts(ctx.serenity_context(), ctx.channel_id()).await?;
    let activation = app
        .conversations
        .activate(&request(ctx)?, channel, &personality)
        .await?;
    let name = escape_markdown(activation.personality.name().as_str());
    let replaced = activation
        .replaced
        .and_then(|id| app.cache.get(id))
        .map(|p| format!(" instead of **{}**", escape_markdown(p.name.as_str())))
        .unwrap_or_default();
    reply::public(
        ctx,
        format!("**{name}** now answers every message in this channel{replaced}. Stop it with /deactivate."),
    )
    .await
}

/// Stop the personality that answers every message in this channel.
#[poise::command(
    slash_command,
    guild_only,
    default_member_permissions = "MANAGE_MESSAGES",
    required_permissions = "MANAGE_MESSAGES"
)]
pub async fn deactivate(ctx: Context<'_>) -> Result<(), Error> {
    let app = &ctx.data().app;
    let stopped = app
        .conversations
        .deactivate(&request(ctx)?, ctx.channel_id().get())
        .await?;
    let Some(stopped) = stopped else {
        return Err(BotError::user("No personality is active in this channel."));
    };
    let text = match app.cache.get(stopped) {
        Some(p) => format!(
            "**{}** no longer answers every message in this channel.",
            escape_markdown(p.name.as_str())
        ),
        None => "The personality no longer answers every message in this channel.".to_owned(),
    };
    reply::public(ctx, text).await
}
