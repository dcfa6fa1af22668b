//! Small helpers to answer an interaction.

use poise::serenity_prelude as serenity;
use poise::CreateReply;

use super::{Context, Error};

/// Sends a reply only the user sees.
pub async fn ephemeral(ctx: Context<'_>, text: String) -> Result<(), serenity::Error> {
    ctx.send(CreateReply::default().content(text).ephemeral(true).allowed_mentions(no_mentions()))
        .await?;
    Ok(())
}

/// Sends a reply everyone in the channel sees.
pub async fn public(ctx: Context<'_>, text: String) -> Result<(), Error> {
    ctx.send(CreateReply::default().content(text).allowed_mentions(no_mentions()))
        .await?;
    Ok(())
}

/// Sends a reply only the user sees, from a command body.
pub async fn private(ctx: Context<'_>, text: String) -> Result<(), Error> {
    ephemeral(ctx, text).await?;
    Ok(())
}

/// Allowed mentions that ping nobody: no users, roles, @everyone or @here.
pub fn no_mentions() -> serenity::CreateAllowedMentions {
    serenity::CreateAllowedMentions::new()
        .everyone(false)
        .all_users(false)
        .all_roles(false)
        .replied_user(false)
}
