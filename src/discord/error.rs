//! Errors of the Discord layer, and how each reaches the user.

use poise::serenity_prelude as serenity;
use thiserror::Error;
use tracing::{error, warn};

use super::{Data, Error};
use crate::application::ServiceError;
use crate::metrics::Outcome;

/// What a command or the message path can fail with.
#[derive(Debug, Error)]
pub enum BotError {
    /// A personality command was refused: the message is the user's to read.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The user asked for something that can't be done here; one sentence for them.
    #[error("{0}")]
    User(String),
    /// Discord refused or failed a request. Built through `From`, which strips URLs.
    #[error("Discord request failed: {0}")]
    Discord(poise::serenity_prelude::Error),
    /// Anything else unexpected.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl BotError {
    /// A user-facing refusal.
    pub fn user(message: impl Into<String>) -> Self {
        BotError::User(message.into())
    }

    /// The sentence shown to the user when it is theirs to fix; `None` for our failures.
    pub fn user_message(&self) -> Option<String> {
        match self {
            BotError::Service(e) if e.is_user_error() => Some(sentence(&e.to_string())),
            BotError::User(m) => Some(m.clone()),
            BotError::Service(ServiceError::Storage(e)) if e.is_unwritable() => Some(
                "The bot can't save changes right now: its storage is full or read-only. Nothing was changed; please tell the bot's host.".to_owned(),
            ),
            _ => None,
        }
    }
}

/// Why serving Discord stopped or could not start.
#[derive(Debug, Error)]
pub enum DiscordError {
    /// The token is wrong or was reset: the host's to fix.
    #[error("DISCORD_TOKEN: Discord rejected the token (gateway close code 4004); reset it in the Developer Portal → Bot and update .env.")]
    InvalidToken,
    /// The bot asks for the Message Content intent and it is off in the Developer Portal:
    /// Discord refuses the whole connection (close code 4014).
    #[error("Discord refused the connection (close code 4014, disallowed intents): turn on Message Content Intent in the Developer Portal → your application → Bot → Privileged Gateway Intents, then start personae again.")]
    DisallowedIntents,
    /// The gateway connection failed for good.
    #[error("the Discord connection failed: {0}")]
    Gateway(#[source] poise::serenity_prelude::Error),
    /// The LLM client could not be built from its settings.
    #[error("cannot set up the LLM client: {0}")]
    Llm(#[source] crate::llm::LlmError),
    /// Anything else while setting up.
    #[error("cannot set up the Discord client: {0:#}")]
    Setup(anyhow::Error),
}

impl DiscordError {
    /// True when the host can fix it in the configuration.
    pub fn is_configuration_mistake(&self) -> bool {
        matches!(
            self,
            DiscordError::InvalidToken | DiscordError::DisallowedIntents
        )
    }
}

impl From<serenity::Error> for BotError {
    fn from(e: serenity::Error) -> Self {
        BotError::Discord(without_urls(e))
    }
}

/// The error without the URL of its request: interaction follow-ups and webhook executions
/// carry their token in the URL, and errors end up in the log.
pub fn without_urls(e: serenity::Error) -> serenity::Error {
    match e {
        serenity::Error::Http(serenity::HttpError::Request(request)) => {
            serenity::Error::Http(serenity::HttpError::Request(request.without_url()))
        }
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(mut response)) => {
            response.url = String::new();
            serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(response))
        }
        other => other,
    }
}

impl From<crate::application::StoreError> for BotError {
    fn from(e: crate::application::StoreError) -> Self {
        BotError::Service(ServiceError::Storage(e))
    }
}

/// Makes a message one sentence ending with a full stop. Field errors keep the option's
/// name as the user sees it in the command (`display_name: …`).
fn sentence(text: &str) -> String {
    let mut out = text.trim().to_owned();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// poise's error hook: refusals go back to the user ephemerally; our failures are logged
/// with the correlation id (the interaction id) and the user sees that id, never a debug dump.
pub async fn on_error(framework_error: poise::FrameworkError<'_, Data, Error>) {
    count_failed_command(&framework_error);
    match framework_error {
        poise::FrameworkError::Command { error, ctx, .. } => {
            let correlation_id = ctx.id();
            ctx.data().inflight.command_finished(correlation_id);
            let text = if let Some(message) = error.user_message() {
                message
            } else {
                error!(correlation_id, command = %ctx.command().qualified_name, error = %error, "command failed");
                format!("Something went wrong on our side. If it keeps happening, give the bot's host this reference: {correlation_id}.")
            };
            if let Err(e) = super::reply::ephemeral(ctx, text).await {
                warn!(correlation_id, error = %e, "could not send the error reply");
            }
        }
        poise::FrameworkError::CommandPanic { ctx, payload, .. } => {
            let correlation_id = ctx.id();
            ctx.data().inflight.command_finished(correlation_id);
            error!(correlation_id, command = %ctx.command().qualified_name, panic = payload.as_deref().unwrap_or("?"), "command panicked");
            let text = format!("Something went wrong on our side. Reference: {correlation_id}.");
            let _ = super::reply::ephemeral(ctx, text).await;
        }
        poise::FrameworkError::MissingUserPermissions {
            ctx,
            missing_permissions,
            ..
        } => {
            let text = match missing_permissions {
                Some(p) => format!("You need the {p} permission to use this command."),
                None => "You don't have the permissions this command needs.".to_owned(),
            };
            let _ = super::reply::ephemeral(ctx, text).await;
        }
        poise::FrameworkError::GuildOnly { ctx, .. } => {
            let _ = super::reply::ephemeral(
                ctx,
                "This command only works in a server channel.".to_owned(),
            )
            .await;
        }
        poise::FrameworkError::ArgumentParse {
            ctx, input, error, ..
        } => {
            let text = match input {
                Some(input) => format!("I couldn't read \"{input}\": {error}."),
                None => format!("I couldn't read the command's options: {error}."),
            };
            let _ = super::reply::ephemeral(ctx, text).await;
        }
        other => {
            if let Err(e) = poise::builtins::on_error(other).await {
                warn!(error = %e, "error while handling a framework error");
            }
        }
    }
}

/// Counts a command that did not succeed: refused when it is the user's to fix, failed
/// when it is ours. Errors outside a command (the event handler, setup) are not commands.
fn count_failed_command(framework_error: &poise::FrameworkError<'_, Data, Error>) {
    let outcome = match framework_error {
        poise::FrameworkError::Command { error, .. } if error.user_message().is_some() => {
            Outcome::refused
        }
        poise::FrameworkError::Command { .. }
        | poise::FrameworkError::CommandPanic { .. }
        | poise::FrameworkError::MissingBotPermissions { .. } => Outcome::failed,
        _ => Outcome::refused,
    };
    if let Some(ctx) = framework_error.ctx() {
        ctx.data()
            .app
            .metrics
            .command(&ctx.command().qualified_name, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_sentences_and_failures_have_no_user_text() {
        let e = BotError::Service(ServiceError::Invalid {
            field: "display_name",
            reason: "must be at most 80 characters (got 81)".into(),
        });
        assert_eq!(
            e.user_message().unwrap(),
            "display_name: must be at most 80 characters (got 81)."
        );
        let e = BotError::Other(anyhow::anyhow!("db exploded"));
        assert_eq!(e.user_message(), None);
    }
}
