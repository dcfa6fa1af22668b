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
        let id = match (answer.message_ids.get(i), in_dm) {
            (Some(&id), false) => {
                let edit = WebhookEdit {
                    content: chunk,
                    allowed_mentions: AllowedMentions::default(),
                };
                match data.webhooks.edit(answer.channel_id, id, &edit).await {
                    Ok(()) => id,
                    // Deleted by a moderator meanwhile, or sent by a webhook since replaced:
                    // the new text takes a new message.
                    Err(e) if e.is_unknown_message() => data
                        .webhooks
                        .send(
                            answer.channel_id,
                            &webhook_message(personality, edit.content),
                        )
                        .await
                        .map_err(|e| BotError::Other(e.into()))?,
                    Err(e) => return Err(BotError::Other(e.into())),
                }
            }
            (Some(&id), true) => {
                let edit = serenity::EditMessage::new()
                    .content(chunk)
                    .allowed_mentions(super::reply::no_mentions());
                channel
                    .edit_message(&ctx.http, serenity::MessageId::new(id), edit)
                    .await?;
                id
            }
            (None, false) => data
                .webhooks
                .send(answer.channel_id, &webhook_message(personality, chunk))
                .await
                .map_err(|e| BotError::Other(e.into()))?,
            (None, true) => {
                let message = serenity::CreateMessage::new()
                    .content(chunk)
                    .allowed_mentions(super::reply::no_mentions());
                channel.send_message(&ctx.http, message).await?.id.get()
            }
        };
        shown.push(id);
    }
    for &surplus in answer.message_ids.iter().skip(shown.len()) {
        delete_one(ctx, data, answer, surplus).await?;
    }
    Ok(shown)
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
