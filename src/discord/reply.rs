//! Small helpers to answer an interaction.

use poise::serenity_prelude as serenity;
use poise::CreateReply;

use super::{Context, Error};

/// Sends a reply only the user sees.
pub async fn ephemeral(ctx: Context<'_>, text: String) -> Result<(), serenity::Error> {
    ctx.send(
        CreateReply::default()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(no_mentions()),
    )
    .await?;
    Ok(())
}

/// Sends a reply everyone in the channel sees.
pub async fn public(ctx: Context<'_>, text: String) -> Result<(), Error> {
    ctx.send(
        CreateReply::default()
            .content(text)
            .allowed_mentions(no_mentions()),
    )
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

/// An answer to a button click or a modal submission that only the user sees.
pub fn ephemeral_response(text: impl Into<String>) -> serenity::CreateInteractionResponse {
    serenity::CreateInteractionResponse::Message(
        serenity::CreateInteractionResponseMessage::new()
            .content(text)
            .ephemeral(true)
            .allowed_mentions(no_mentions()),
    )
}

/// An answer to a button click that replaces the message the button is on with `text`
/// and removes its buttons.
pub fn replace_with_text(text: impl Into<String>) -> serenity::CreateInteractionResponse {
    serenity::CreateInteractionResponse::UpdateMessage(
        serenity::CreateInteractionResponseMessage::new()
            .content(text)
            .components(Vec::new())
            .allowed_mentions(no_mentions()),
    )
}

/// Escapes Discord markdown so that user text (names, display names) shows as typed.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
