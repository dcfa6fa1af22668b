//! `/autorespond` and `/reset`: how a user's conversations with personalities go on.

use super::request;
use crate::conversation::{DM_CONVERSATION_TTL, GUILD_CONVERSATION_TTL};
use crate::discord::{reply, Context, Data, Error};

/// `/autorespond` and `/reset`.
pub fn commands() -> Vec<poise::Command<Data, Error>> {
    vec![autorespond(), reset()]
}

/// Keep talking to the last personality without mentioning it.
#[poise::command(slash_command)]
pub async fn autorespond(
    ctx: Context<'_>,
    #[description = "True: the last personality keeps answering you. False: only when mentioned or replied to"]
    enabled: bool,
) -> Result<(), Error> {
    ctx.data()
        .app
        .conversations
        .set_auto_response(&request(ctx)?, enabled)
        .await?;
    let text = if enabled {
        format!(
            "Auto-response is on: the personality you last talked to in a channel keeps answering you there, \
             until {} minutes pass without a message ({} hours in DMs). Turn it off with /autorespond enabled:False.",
            GUILD_CONVERSATION_TTL.as_secs() / 60,
            DM_CONVERSATION_TTL.as_secs() / 3600,
        )
    } else {
        "Auto-response is off: mention a personality (@name) or reply to its messages to talk to it.".to_owned()
    };
    reply::private(ctx, text).await
}

/// End your current conversation in this channel.
#[poise::command(slash_command)]
pub async fn reset(ctx: Context<'_>) -> Result<(), Error> {
    let ended = ctx
        .data()
        .app
        .conversations
        .reset(&request(ctx)?, ctx.channel_id().get())
        .await?;
    // Whether or not a conversation was active, earlier channel messages stop being context.
    ctx.data().context_starts.insert(
        (ctx.author().id.get(), ctx.channel_id().get()),
        ctx.id(),
        std::time::Instant::now(),
    );
    let text = if ended {
        "Your conversation in this channel has ended: the next message starts afresh."
    } else {
        "You had no conversation in this channel, so there was nothing to end."
    };
    reply::private(ctx, text.to_owned()).await
}
