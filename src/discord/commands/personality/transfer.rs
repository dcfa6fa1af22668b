//! `/personality export` and `/personality import`: a personality as a file, and files
//! (personae exports, character cards as JSON or PNG) as personalities of the member.

use poise::serenity_prelude as serenity;
use poise::CreateReply;

use crate::application::{ImportMode, ImportOutcome, ServiceError};
use crate::discord::attachments::download;
use crate::discord::commands::autocomplete::changeable_personality;
use crate::discord::commands::{author_id, request};
use crate::discord::reply::{escape_markdown, no_mentions};
use crate::discord::{BotError, Context, Error};
use crate::domain::{Personality, Scope};
use crate::transfer::{self, ExportDocument, ExportedPersonality, Placement};

/// The most personalities one file imported in Discord may hold: the answer lists each.
const MAX_PER_DISCORD_IMPORT: usize = 25;

/// Get a personality as a file: to keep, to move to another bot, or to edit elsewhere.
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
pub async fn export(
    ctx: Context<'_>,
    #[description = "The personality to export"]
    #[autocomplete = "changeable_personality"]
    personality: String,
    #[description = "True: a Character Card V2 (for SillyTavern and others) instead of personae's own format"]
    as_card: Option<bool>,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let service = &ctx.data().app.service;
    let target = service.get(request.server, &personality).await?;
    // Its prompt is in the file: only those who may read and change it get one.
    if !request.may_manage(target.owner_id(), target.scope()) {
        return Err(ServiceError::NotOwner(target.name().to_string()).into());
    }
    let extensions = service.card_extensions(target.id()).await?;
    let (bytes, file_name) = if as_card.unwrap_or(false) {
        let card = transfer::export_card(&target, extensions.as_ref());
        let text = serde_json::to_string_pretty(&card).map_err(|e| BotError::Other(e.into()))?;
        (
            text.into_bytes(),
            format!("{}.card.json", file_stem(&target)),
        )
    } else {
        let document = ExportDocument::new(
            vec![ExportedPersonality::new(&target, extensions.as_ref())],
            chrono::Utc::now(),
        );
        (
            document.to_json().into_bytes(),
            format!("{}.personae.json", file_stem(&target)),
        )
    };
    let reply = CreateReply::default()
        .content(format!(
            "**{}**, as a file. `/personality import` reads it here or on another bot.",
            escape_markdown(target.name().as_str())
        ))
        .attachment(serenity::CreateAttachment::bytes(bytes, file_name))
        .ephemeral(true)
        .allowed_mentions(no_mentions());
    ctx.send(reply).await?;
    Ok(())
}

/// Create personalities from a file: a personae export, or a character card (JSON or PNG).
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
pub async fn import(
    ctx: Context<'_>,
    #[description = "A personae export, or a character card (V2 or V3) as JSON or PNG"]
    file: serenity::Attachment,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let Some(server) = request.server else {
        return Err(ServiceError::ServerRequired.into());
    };
    let max_bytes = transfer::MAX_FILE_BYTES;
    if file.size as usize > max_bytes {
        return Err(BotError::User(format!(
            "The file is larger than {} MiB, the most an import reads.",
            max_bytes / (1024 * 1024)
        )));
    }
    // The download may take longer than Discord waits for a first answer.
    ctx.defer_ephemeral().await?;
    let data = ctx.data();
    let bytes = download(
        &data.downloads,
        &data.attachment_hosts,
        &file.url,
        max_bytes,
    )
    .await
    .map_err(|e| BotError::User(capitalized(&e.to_string())))?;
    let (_, portables) = transfer::read(&bytes).map_err(|e| BotError::User(e.to_string()))?;
    if portables.is_empty() {
        return Err(BotError::User(
            "The file holds no personalities; nothing to import.".into(),
        ));
    }
    if portables.len() > MAX_PER_DISCORD_IMPORT {
        return Err(BotError::User(format!(
            "The file holds {} personalities; an import here takes at most {MAX_PER_DISCORD_IMPORT}. The bot's host can import it with `personae import`.",
            portables.len()
        )));
    }
    // Whatever the file says, what a member imports is theirs and this server's.
    let placement = Placement {
        owner: Some(author_id(ctx)?),
        scope: Some(Scope::Server(server)),
    };
    let items = portables.into_iter().map(|p| placement.place(p)).collect();
    let outcomes = data
        .app
        .service
        .import(&request, items, ImportMode::Write)
        .await;
    if let Some(failure) = outcomes
        .iter()
        .find_map(|o| o.result.as_ref().err().filter(|e| !e.is_user_error()))
    {
        tracing::error!(correlation_id = %request.correlation_id, error = %failure, "import failed");
    }
    ctx.send(
        CreateReply::default()
            .content(summary(&outcomes, ctx.id()))
            .ephemeral(true)
            .allowed_mentions(no_mentions()),
    )
    .await?;
    Ok(())
}

/// One line per personality of the file: imported, or why not.
fn summary(outcomes: &[ImportOutcome], reference: u64) -> String {
    let lines: Vec<String> = outcomes
        .iter()
        .map(|outcome| {
            let name = if outcome.name.is_empty() {
                "(no name)".to_owned()
            } else {
                escape_markdown(&outcome.name)
            };
            match &outcome.result {
                Ok(p) => format!("Imported **{}**.", escape_markdown(p.name().as_str())),
                Err(e) if e.is_user_error() => {
                    format!("**{name}** was not imported: {}", full_stop(&e.to_string()))
                }
                Err(_) => format!(
                    "**{name}** was not imported: something went wrong on our side (reference {reference})."
                ),
            }
        })
        .collect();
    let text = lines.join("\n");
    // 25 lines of at most a few hundred characters; Discord takes 2000.
    crate::discord::split_message(&text, 2000)
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// The text with a full stop at the end.
fn full_stop(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// The text as a sentence: a capital first letter and a full stop.
fn capitalized(text: &str) -> String {
    let mut chars = text.trim().chars();
    let first = chars.next().map(|c| c.to_uppercase().to_string());
    full_stop(&format!("{}{}", first.unwrap_or_default(), chars.as_str()))
}

/// A file name from the personality's name: its letters and digits, '-' for the rest.
fn file_stem(p: &Personality) -> String {
    let stem: String = p
        .name()
        .as_str()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    stem.trim_matches('-').to_lowercase()
}
