//! The Discord messages of a recorded answer, as the message actions change them: written
//! again in place, or deleted. In a server they are the channel webhook's messages, so the
//! bot needs no Manage Messages; in a DM they are the bot's own.

use poise::serenity_prelude as serenity;

use super::messages::{dm_chunks, webhook_chunks, webhook_message};
use super::webhooks::{AllowedMentions, WebhookEdit};
use super::{BotError, Data};
use crate::cache::ProfileInfo;
use crate::conversation::AnswerRecord;

/// Discord's error code for a message that no longer exists.
const UNKNOWN_MESSAGE: isize = 10008;

/// Deletes every message of the answer; one already gone counts as deleted.
pub async fn delete(
    ctx: &serenity::Context,
    data: &Data,
    answer: &AnswerRecord,
) -> Result<(), BotError> {
    for &id in &answer.message_ids {
        delete_one(ctx, data, answer, id).await?;
    }
    Ok(())
}

/// Shows `text` in the answer's messages: edits those it has, sends more when the new text
/// needs more, and deletes those it no longer needs. Returns the answer's messages now, in
/// order.
pub async fn rewrite(
    ctx: &serenity::Context,
    data: &Data,
    answer: &AnswerRecord,
    personality: &ProfileInfo,
    text: &str,
) -> Result<Vec<u64>, BotError> {
    let in_dm = answer.answered.server.is_none();
    let chunks = if in_dm {
        dm_chunks(data, personality, text)
    } else {
        webhook_chunks(data, text)
    };
    let channel = serenity::ChannelId::new(answer.channel_id);
    let mut shown = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.into_iter().enumerate() {
        let old = answer.message_ids.get(i).copied();
        let id = if in_dm {
            show_in_dm(ctx, channel, old, chunk).await?
        } else {
            show_in_server(data, answer, personality, old, chunk).await?
        };
        shown.push(id);
    }
    for &surplus in answer.message_ids.iter().skip(shown.len()) {
        delete_one(ctx, data, answer, surplus).await?;
    }
    Ok(shown)
}

/// Shows `chunk` through the channel's webhook: in the answer's message `old` when there is
/// one, else (or when that message is gone, deleted meanwhile or sent by a webhook since
/// replaced) in a new message. Returns the message's id.
async fn show_in_server(
    data: &Data,
    answer: &AnswerRecord,
    personality: &ProfileInfo,
    old: Option<u64>,
    chunk: String,
) -> Result<u64, BotError> {
    let mut chunk = chunk;
    if let Some(id) = old {
        let edit = WebhookEdit {
            content: chunk,
            allowed_mentions: AllowedMentions::default(),
        };
        match data.webhooks.edit(answer.channel_id, id, &edit).await {
            Ok(()) => return Ok(id),
            Err(e) if e.is_unknown_message() => chunk = edit.content,
            Err(e) => return Err(BotError::Other(e.into())),
        }
    }
    data.webhooks
        .send(answer.channel_id, &webhook_message(personality, chunk))
        .await
        .map_err(|e| BotError::Other(e.into()))
}

/// Shows `chunk` as the bot in a DM: in the answer's message `old` when there is one, else
/// in a new message. Returns the message's id.
async fn show_in_dm(
    ctx: &serenity::Context,
    channel: serenity::ChannelId,
    old: Option<u64>,
    chunk: String,
) -> Result<u64, BotError> {
    if let Some(id) = old {
        let edit = serenity::EditMessage::new()
            .content(chunk)
            .allowed_mentions(super::reply::no_mentions());
        channel
            .edit_message(&ctx.http, serenity::MessageId::new(id), edit)
            .await?;
        return Ok(id);
    }
    let message = serenity::CreateMessage::new()
        .content(chunk)
        .allowed_mentions(super::reply::no_mentions());
    Ok(channel.send_message(&ctx.http, message).await?.id.get())
}

/// Deletes one of the answer's messages: through the webhook in a server, as the bot in a DM.
async fn delete_one(
    ctx: &serenity::Context,
    data: &Data,
    answer: &AnswerRecord,
    id: u64,
) -> Result<(), BotError> {
    if answer.answered.server.is_some() {
        return data
            .webhooks
            .delete(answer.channel_id, id)
            .await
            .map_err(|e| BotError::Other(e.into()));
    }
    let channel = serenity::ChannelId::new(answer.channel_id);
    match channel
        .delete_message(&ctx.http, serenity::MessageId::new(id))
        .await
    {
        Err(e) if is_unknown_message(&e) => Ok(()),
        other => Ok(other?),
    }
}

/// True when Discord answered that the message doesn't exist (any more).
pub fn is_unknown_message(e: &serenity::Error) -> bool {
    matches!(
        e,
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(response))
            if response.error.code == UNKNOWN_MESSAGE
    )
}
