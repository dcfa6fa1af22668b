//! Facts about a channel that decide whether a personality may speak there.

use poise::serenity_prelude as serenity;

/// Whether `channel` is age-restricted (Discord's "NSFW" channel setting). A thread is as
/// its parent channel; a DM never is. Read from the gateway's cache, which channel updates
/// keep current, or from Discord when the cache doesn't hold the channel.
pub async fn age_restricted(
    ctx: &serenity::Context,
    channel: serenity::ChannelId,
) -> Result<bool, serenity::Error> {
    let serenity::Channel::Guild(channel) = channel.to_channel(ctx).await? else {
        return Ok(false);
    };
    let is_thread = matches!(
        channel.kind,
        serenity::ChannelType::PublicThread
            | serenity::ChannelType::PrivateThread
            | serenity::ChannelType::NewsThread
    );
    match channel.parent_id {
        Some(parent) if is_thread => match parent.to_channel(ctx).await? {
            serenity::Channel::Guild(parent) => Ok(parent.nsfw),
            _ => Ok(false),
        },
        _ => Ok(channel.nsfw),
    }
}
