//! `/settings …`: a server's rules for its personalities, changed by the members who manage
//! the server (Manage Server) or a bot admin. Each change is one event, like a
//! personality's; the answer shows the settings as they now are, to the member only.

use poise::serenity_prelude as serenity;

use super::request;
use crate::application::ServiceError;
use crate::discord::{reply, Context, Data, Error};
use crate::domain::{
    ChannelId, ChannelMode, MemberLimit, ServerId, SettingChange, Settings, MAX_MEMBER_LIMIT,
};

/// The `/settings` command and its subcommands.
pub fn commands() -> Vec<poise::Command<Data, Error>> {
    vec![settings()]
}

/// Where this server's personalities answer, and who may create them.
///
/// Shown by default only to members with Manage Server (server admins can change that in
/// Server Settings → Integrations); the service checks again on every use.
#[poise::command(
    slash_command,
    subcommands(
        "show",
        "channels",
        "list_channel",
        "unlist_channel",
        "globals",
        "member_limit",
        "member_create"
    ),
    subcommand_required,
    guild_only,
    default_member_permissions = "MANAGE_GUILD"
)]
#[allow(clippy::unused_async)] // poise needs an async body, even for a parent command.
pub async fn settings(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// Show this server's settings.
#[poise::command(slash_command)]
async fn show(ctx: Context<'_>) -> Result<(), Error> {
    let request = request(ctx)?;
    let server = here(ctx)?;
    let stored = ctx
        .data()
        .app
        .service
        .server_settings(&request, server)
        .await?;
    reply::private(ctx, describe(&stored.settings)).await
}

/// The channels' rule, in Discord's choice list.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
enum ChannelChoice {
    #[name = "Every channel"]
    All,
    #[name = "Only the listed channels"]
    Listed,
    #[name = "Every channel but the listed ones"]
    AllButListed,
}

impl From<ChannelChoice> for ChannelMode {
    fn from(choice: ChannelChoice) -> Self {
        match choice {
            ChannelChoice::All => ChannelMode::All,
            ChannelChoice::Listed => ChannelMode::Listed,
            ChannelChoice::AllButListed => ChannelMode::AllButListed,
        }
    }
}

/// Choose where personalities answer: every channel, only listed ones, or all but those.
#[poise::command(slash_command)]
async fn channels(
    ctx: Context<'_>,
    #[description = "Where personalities answer (the list: /settings list-channel)"]
    answer_in: ChannelChoice,
) -> Result<(), Error> {
    change(ctx, SettingChange::Channels(answer_in.into())).await
}

/// Put a channel on the list the channel rule uses (its threads follow it).
#[poise::command(slash_command, rename = "list-channel")]
async fn list_channel(
    ctx: Context<'_>,
    #[description = "The channel to list"]
    #[channel_types("Text", "News", "Forum", "Voice", "Stage")]
    channel: serenity::ChannelId,
) -> Result<(), Error> {
    change(ctx, SettingChange::ListChannel(channel_id(channel)?)).await
}

/// Take a channel off the list the channel rule uses.
#[poise::command(slash_command, rename = "unlist-channel")]
async fn unlist_channel(
    ctx: Context<'_>,
    #[description = "The channel to take off the list"] channel: serenity::ChannelId,
) -> Result<(), Error> {
    change(ctx, SettingChange::UnlistChannel(channel_id(channel)?)).await
}

/// Turn the bot's global personalities on or off in this server.
#[poise::command(slash_command)]
async fn globals(
    ctx: Context<'_>,
    #[description = "Whether global personalities answer here and show in lists"] enabled: bool,
) -> Result<(), Error> {
    change(ctx, SettingChange::Globals(enabled)).await
}

/// Set how many personalities one member may own in this server.
#[poise::command(slash_command, rename = "member-limit")]
async fn member_limit(
    ctx: Context<'_>,
    #[description = "Personalities per member"]
    #[min = 1]
    #[max = 1000]
    limit: u16,
) -> Result<(), Error> {
    let limit = MemberLimit::new(limit).map_err(ServiceError::from)?;
    change(ctx, SettingChange::MemberLimit(limit)).await
}

/// Let members without Manage Server create personalities, or not.
#[poise::command(slash_command, rename = "member-create")]
async fn member_create(
    ctx: Context<'_>,
    #[description = "Whether every member may create personalities (managers always may)"]
    allowed: bool,
) -> Result<(), Error> {
    change(ctx, SettingChange::MembersMayCreate(allowed)).await
}

/// Applies one change and shows the settings it leads to.
async fn change(ctx: Context<'_>, change: SettingChange) -> Result<(), Error> {
    let request = request(ctx)?;
    let server = here(ctx)?;
    let stored = ctx
        .data()
        .app
        .service
        .change_settings(&request, server, vec![change])
        .await?;
    reply::private(ctx, format!("Saved. {}", describe(&stored.settings))).await
}

/// The server the command is used in (`/settings` is guild-only: always one).
fn here(ctx: Context<'_>) -> Result<ServerId, ServiceError> {
    super::server(ctx).ok_or(ServiceError::NotServerManager)
}

fn channel_id(channel: serenity::ChannelId) -> Result<ChannelId, ServiceError> {
    Ok(ChannelId::new(channel.get())?)
}

/// The settings as a member reads them.
fn describe(settings: &Settings) -> String {
    let listed = settings
        .listed_channels
        .iter()
        .map(|c| format!("<#{c}>"))
        .collect::<Vec<_>>()
        .join(", ");
    let listed = if listed.is_empty() {
        "no channel".to_owned()
    } else {
        listed
    };
    let channels = match settings.channels {
        ChannelMode::All if !settings.listed_channels.is_empty() => {
            format!("every channel (the list, unused while every channel is allowed: {listed})")
        }
        ChannelMode::All => "every channel".to_owned(),
        ChannelMode::Listed => format!("only {listed}"),
        ChannelMode::AllButListed => format!("every channel but {listed}"),
    };
    let globals = if settings.globals {
        "answer here"
    } else {
        "turned off"
    };
    let creators = if settings.members_may_create {
        "every member"
    } else {
        "only members with Manage Server"
    };
    format!(
        "**Settings of this server**\n\
         Personalities answer in: {channels}\n\
         Global personalities: {globals}\n\
         Personalities per member: at most {} (1–{MAX_MEMBER_LIMIT})\n\
         Who may create personalities: {creators}",
        settings.member_limit,
    )
}
