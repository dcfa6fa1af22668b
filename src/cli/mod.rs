//! The command line: the way to try personae without a Discord token, and the way a host
//! inspects and repairs it. It works on the same database as the bot and acts as a bot admin.

mod args;
mod backup;
mod error;
mod events;
mod personality;
mod server;
mod transfer;
mod views;

pub use args::{Cli, Command, EventsCommand, PersonalityCommand, ServerCommand, Where};
pub use backup::backup;
pub use error::{sentence, CliError};
pub use views::{EventView, PersonalityView};

use crate::app::App;

/// Runs one admin command (everything but `run`) against an opened application.
pub async fn execute(app: &App, command: Command) -> Result<(), CliError> {
    match command {
        Command::Personality { command } => personality::execute(app, command).await,
        Command::Server { command } => server::execute(app, command).await,
        Command::Events { command } => events::execute(app, command).await,
        Command::Export {
            file,
            owner,
            server,
            card,
        } => transfer::export(app, file.as_deref(), owner, server, card).await,
        Command::Import {
            file,
            owner,
            server,
            global,
            dry_run,
        } => transfer::import(app, &file, owner, server, global, dry_run).await,
        Command::Run | Command::Backup { .. } => Err(CliError::Other(anyhow::anyhow!(
            "`run` and `backup` are started by main, not here"
        ))),
    }
}
