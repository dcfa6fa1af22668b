//! `/personality history` and `/personality revert`: a personality's profile revisions, and
//! going back to one as a new update.

use poise::serenity_prelude as serenity;
use poise::CreateReply;

use super::view;
use crate::application::Revision;
use crate::discord::commands::autocomplete::changeable_personality;
use crate::discord::commands::request;
use crate::discord::reply::{self, escape_markdown};
use crate::discord::{Context, Error};

/// Revisions per page.
const PER_PAGE: usize = 10;
/// How much of a changed prompt a line shows.
const PROMPT_PREVIEW_CHARS: usize = 80;

/// List a personality's profile revisions: when, who, which fields changed.
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
pub async fn history(
    ctx: Context<'_>,
    #[description = "The personality"]
    #[autocomplete = "changeable_personality"]
    personality: String,
    #[description = "Page, newest first (default 1)"]
    #[min = 1]
    page: Option<u32>,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let (personality, mut revisions) = ctx
        .data()
        .app
        .service
        .history(&request, &personality)
        .await?;
    revisions.reverse();
    let pages = view::page_count(revisions.len(), PER_PAGE);
    let page = usize::try_from(page.unwrap_or(1))
        .unwrap_or(usize::MAX)
        .clamp(1, pages);
    let lines: Vec<String> = revisions
        .iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .map(line)
        .collect();
    let embed = serenity::CreateEmbed::new()
        .title(format!(
            "History of {}",
            escape_markdown(personality.name().as_str())
        ))
        .description(lines.join("\n"))
        .footer(serenity::CreateEmbedFooter::new(format!(
            "Page {page} of {pages} · {} revisions · go back with /personality revert",
            revisions.len()
        )));
    ctx.send(
        CreateReply::default()
            .embed(embed)
            .ephemeral(true)
            .allowed_mentions(reply::no_mentions()),
    )
    .await?;
    Ok(())
}

/// Set a personality's profile back to an earlier revision (history keeps every revision).
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
pub async fn revert(
    ctx: Context<'_>,
    #[description = "The personality"]
    #[autocomplete = "changeable_personality"]
    personality: String,
    #[description = "The revision to go back to (see /personality history)"]
    #[min = 1]
    revision: u32,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let reverted = ctx
        .data()
        .app
        .service
        .revert(&request, &personality, i64::from(revision))
        .await?;
    reply::private(
        ctx,
        format!(
            "**{}** is back to revision {revision}, saved as revision {}.",
            escape_markdown(reverted.name().as_str()),
            reverted.version()
        ),
    )
    .await
}

/// One revision as a line: number, time, who, what changed.
fn line(revision: &Revision) -> String {
    let who = match revision.actor.strip_prefix("user:") {
        Some(id) => format!("<@{id}>"),
        None => "the host".to_owned(),
    };
    let what = if revision.is_creation() {
        "created".to_owned()
    } else {
        revision
            .changed
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let prompt = if revision.is_creation()
        || revision
            .changed
            .contains(&crate::domain::ProfileField::Prompt)
    {
        let text: String = revision
            .profile
            .prompt
            .as_str()
            .chars()
            .take(PROMPT_PREVIEW_CHARS)
            .collect();
        format!("\n> {}", escape_markdown(&text.replace('\n', " ")))
    } else {
        String::new()
    };
    format!(
        "**r{}** · <t:{}:f> · {who} · {what}{prompt}",
        revision.number,
        revision.at.timestamp()
    )
}
