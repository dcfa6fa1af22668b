//! `/personality …`: create, change, remove and look at personalities. Every change goes
//! through the service with the interaction as correlation id; refusals come back from the
//! service as sentences naming the field and the rule, and `on_error` shows them ephemerally.

mod history;
mod list;
mod prompt;
mod remove;
mod restore;
mod transfer;
mod view;

use poise::CreateReply;

use super::autocomplete::{alias_of_chosen_personality, any_personality, changeable_personality};
use super::request;
use crate::application::{ProfileUpdate, Registration};
use crate::discord::{reply, BotError, Context, Data, Error};

/// The word that sets the model back to the bot's default (Discord can't send empty strings).
const DEFAULT_MODEL_WORD: &str = "default";
/// The word that removes the avatar.
const NO_AVATAR_WORD: &str = "none";

/// The `/personality` command and its subcommands.
pub fn commands() -> Vec<poise::Command<Data, Error>> {
    vec![personality()]
}

/// Create, change and look at AI personalities.
///
/// Discord gives permissions per top-level command, so server admins restrict all of
/// `/personality` at once in Server Settings → Integrations; members may use it by default.
/// Guild-only: in DMs Discord checks no server permissions, so a member blocked there could
/// otherwise still create personalities.
#[poise::command(
    slash_command,
    subcommands(
        "create",
        "update",
        "prompt::prompt",
        "alias",
        "unalias",
        "remove::remove",
        "restore::restore",
        "list::list",
        "info",
        "history::history",
        "history::revert",
        "global",
        "transfer::export",
        "transfer::import"
    ),
    subcommand_required,
    guild_only,
    default_member_permissions = "SEND_MESSAGES"
)]
#[allow(clippy::unused_async)] // poise needs an async body, even for a parent command.
pub async fn personality(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// Create a personality for this server: a name, and optionally how it looks and sounds.
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
#[allow(clippy::too_many_arguments)] // One per option of the slash command.
async fn create(
    ctx: Context<'_>,
    #[description = "Name, unique in this server: letters, digits, spaces, - and _ (people talk to it with @name)"]
    #[max_length = 64]
    name: String,
    #[description = "The name its messages show (default: the name)"]
    #[max_length = 80]
    display_name: Option<String>,
    #[description = "Who it is and how it talks (for long, multi-line prompts use /personality prompt)"]
    #[max_length = 6000]
    prompt: Option<String>,
    #[description = "The LLM model it uses (default: the bot's default model)"]
    #[max_length = 100]
    model: Option<String>,
    #[description = "Its avatar: an http(s) image URL"]
    #[max_length = 2048]
    avatar_url: Option<String>,
    #[description = "Another name it answers to"]
    #[max_length = 50]
    alias: Option<String>,
    #[description = "Bot admins: usable in every server, not only this one"] global: Option<bool>,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let registration = Registration {
        name,
        owner_id: None,
        global: global.unwrap_or(false),
        display_name,
        avatar_url: avatar_url.map(|a| cleared_by(a, NO_AVATAR_WORD)),
        prompt,
        model: model.map(|m| cleared_by(m, DEFAULT_MODEL_WORD)),
        aliases: alias.into_iter().collect(),
        ..Registration::default()
    };
    let created = ctx
        .data()
        .app
        .service
        .register(&request, registration)
        .await?;
    reply::private(ctx, view::created(&created)).await
}

/// Change a personality's display name, prompt, model, avatar or sampling.
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
#[allow(clippy::too_many_arguments)] // One per option of the slash command.
async fn update(
    ctx: Context<'_>,
    #[description = "The personality to change"]
    #[autocomplete = "changeable_personality"]
    personality: String,
    #[description = "The name its messages show"]
    #[max_length = 80]
    display_name: Option<String>,
    #[description = "Who it is and how it talks (for long, multi-line prompts use /personality prompt)"]
    #[max_length = 6000]
    prompt: Option<String>,
    #[description = "The LLM model it uses; \"default\" goes back to the bot's default model"]
    #[max_length = 100]
    model: Option<String>,
    #[description = "Its avatar: an http(s) image URL; \"none\" removes the avatar"]
    #[max_length = 2048]
    avatar_url: Option<String>,
    #[description = "NSFW: it answers only in age-restricted channels, never in DMs"] nsfw: Option<
        bool,
    >,
    #[description = "How free its word choice is, 0 to 2 (e.g. 0.7); \"default\" leaves it to the model"]
    #[max_length = 10]
    temperature: Option<String>,
    #[description = "Its longest answer in tokens (up to the bot's limit); \"default\" is the bot's limit"]
    #[max_length = 10]
    max_tokens: Option<String>,
) -> Result<(), Error> {
    let update = ProfileUpdate {
        display_name,
        prompt,
        model: model.map(|m| cleared_by(m, DEFAULT_MODEL_WORD)),
        avatar_url: avatar_url.map(|a| cleared_by(a, NO_AVATAR_WORD)),
        nsfw,
        temperature,
        max_tokens,
    };
    if update.is_empty() {
        return Err(BotError::user(
            "Nothing to update: give at least one of display_name, prompt, model, avatar_url, nsfw, temperature or max_tokens.",
        ));
    }
    let request = request(ctx)?;
    let updated = ctx
        .data()
        .app
        .service
        .update_profile(&request, &personality, update.clone())
        .await?;
    reply::private(ctx, view::updated(&updated, &update)).await
}

/// Give a personality another name it answers to.
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
async fn alias(
    ctx: Context<'_>,
    #[description = "The personality that gets the alias"]
    #[autocomplete = "changeable_personality"]
    personality: String,
    #[description = "The new alias: letters, digits, spaces, - and _"]
    #[max_length = 50]
    alias: String,
) -> Result<(), Error> {
    change_alias(ctx, AliasChange::Add, &personality, &alias).await
}

/// Take an alias away from a personality.
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
async fn unalias(
    ctx: Context<'_>,
    #[description = "The personality that loses the alias"]
    #[autocomplete = "changeable_personality"]
    personality: String,
    #[description = "The alias to remove"]
    #[autocomplete = "alias_of_chosen_personality"]
    alias: String,
) -> Result<(), Error> {
    change_alias(ctx, AliasChange::Remove, &personality, &alias).await
}

enum AliasChange {
    Add,
    Remove,
}

/// Adds or removes an alias through the service and tells the user, privately.
async fn change_alias(
    ctx: Context<'_>,
    change: AliasChange,
    personality: &str,
    alias: &str,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let service = &ctx.data().app.service;
    let answer = match change {
        AliasChange::Add => {
            let changed = service.add_alias(&request, personality, alias).await?;
            view::alias_added(&changed, alias)
        }
        AliasChange::Remove => {
            let changed = service.remove_alias(&request, personality, alias).await?;
            view::alias_removed(&changed, alias)
        }
    };
    reply::private(ctx, answer).await
}

/// Show a personality: names and aliases; owner, model and prompt to those who manage it.
#[poise::command(slash_command)]
async fn info(
    ctx: Context<'_>,
    #[description = "The personality to show"]
    #[autocomplete = "any_personality"]
    personality: String,
    #[description = "Show it to everyone in the channel (default: only you)"] public: Option<bool>,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let found = ctx
        .data()
        .app
        .service
        .get(request.server, &personality)
        .await?;
    let full = request.may_manage(found.owner_id(), found.scope());
    let answer = CreateReply::default()
        .embed(view::info_embed(&found, full))
        .ephemeral(!public.unwrap_or(false))
        .allowed_mentions(reply::no_mentions());
    ctx.send(answer).await?;
    Ok(())
}

/// Bot admins: make this server's personality usable in every server.
#[poise::command(slash_command)]
async fn global(
    ctx: Context<'_>,
    #[description = "The personality to make global"]
    #[autocomplete = "changeable_personality"]
    personality: String,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let made = ctx
        .data()
        .app
        .service
        .make_global(&request, &personality)
        .await?;
    reply::private(ctx, view::made_global(&made)).await
}

/// `word` (any case) means "clear this field", which the service spells as an empty value.
fn cleared_by(value: String, word: &str) -> String {
    if value.trim().eq_ignore_ascii_case(word) {
        String::new()
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clearing_words_become_empty_values_in_any_case() {
        assert_eq!(cleared_by(" Default ".into(), DEFAULT_MODEL_WORD), "");
        assert_eq!(cleared_by("NONE".into(), NO_AVATAR_WORD), "");
        assert_eq!(cleared_by("gpt-4o".into(), DEFAULT_MODEL_WORD), "gpt-4o");
    }
}
