//! Facts about a channel that decide whether a personality may speak there.

use poise::serenity_prelude as serenity;

use crate::application::ChannelFacts;

/// The channel whose settings apply to `channel`: itself, or a thread's parent channel;
/// `None` for a DM. Read from the gateway's cache, which channel updates keep current, or
/// from Discord when the cache doesn't hold the channel.
async fn governing(
    ctx: &serenity::Context,
    channel: serenity::ChannelId,
) -> Result<Option<serenity::GuildChannel>, serenity::Error> {
    let serenity::Channel::Guild(channel) = channel.to_channel(ctx).await? else {
        return Ok(None);
    };
    let is_thread = matches!(
        channel.kind,
        serenity::ChannelType::PublicThread
            | serenity::ChannelType::PrivateThread
            | serenity::ChannelType::NewsThread
    );
    match channel.parent_id {
        Some(parent) if is_thread => match parent.to_channel(ctx).await? {
            serenity::Channel::Guild(parent) => Ok(Some(parent)),
            _ => Ok(None),
        },
        _ => Ok(Some(channel)),
    }
}

/// Whether `channel` is age-restricted (Discord's "NSFW" channel setting). A thread is as
/// its parent channel; a DM never is.
pub async fn age_restricted(
    ctx: &serenity::Context,
    channel: serenity::ChannelId,
) -> Result<bool, serenity::Error> {
    Ok(governing(ctx, channel).await?.is_some_and(|c| c.nsfw))
}

/// The channel a server's channel settings name for `channel`: a thread's parent, or
/// the channel itself.
pub async fn listed_as(
    ctx: &serenity::Context,
    channel: serenity::ChannelId,
) -> Result<u64, serenity::Error> {
    Ok(governing(ctx, channel)
        .await?
        .map_or(channel.get(), |c| c.id.get()))
}

/// What the services need to know about `channel`.
pub async fn facts(
    ctx: &serenity::Context,
    channel: serenity::ChannelId,
) -> Result<ChannelFacts, serenity::Error> {
    let governing = governing(ctx, channel).await?;
    Ok(ChannelFacts {
        id: channel.get(),
        age_restricted: governing.as_ref().is_some_and(|c| c.nsfw),
        listed_as: governing.map_or(channel.get(), |c| c.id.get()),
    })
}
