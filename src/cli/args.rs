use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// personae — AI personalities for your Discord server.
///
/// Configuration comes from the environment and from a .env file in the current folder
/// (see .env.example). The admin commands work on the same database as the bot and act as
/// a bot admin.
#[derive(Debug, Parser)]
#[command(name = "personae", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, change, inspect and remove personalities.
    Personality {
        #[command(subcommand)]
        command: PersonalityCommand,
    },
    /// Inspect, replay and verify the domain events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Start the bot (needs DISCORD_TOKEN).
    Run,
    /// Copy the database to FILE, safely while the bot runs; then check the copy and say
    /// what it holds. Restore: stop the bot, copy FILE over DATABASE_PATH, start it.
    Backup {
        /// Where to write the copy (a new file; it is never overwritten).
        file: PathBuf,
    },
}

/// `personae personality …`. PERSONALITY is a name or an alias.
#[derive(Debug, Subcommand)]
pub enum PersonalityCommand {
    /// Create a personality.
    Create {
        /// Unique name: letters, digits, spaces, '-' and '_' (at most 64 characters).
        name: String,
        /// Discord user id of the owner.
        #[arg(long, value_name = "USER_ID")]
        owner: String,
        /// Name shown on its messages (defaults to NAME).
        #[arg(long)]
        display_name: Option<String>,
        /// System prompt (at most 6000 characters).
        #[arg(long)]
        prompt: Option<String>,
        /// LLM model (defaults to LLM_MODEL).
        #[arg(long)]
        model: Option<String>,
        /// Avatar image URL (http or https).
        #[arg(long)]
        avatar_url: Option<String>,
        /// Another name it answers to as @alias; repeat for several.
        #[arg(long = "alias", value_name = "ALIAS")]
        aliases: Vec<String>,
    },
    /// Change profile fields; an empty --model or --avatar-url clears it.
    Update {
        personality: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        prompt: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        avatar_url: Option<String>,
    },
    /// Add an alias.
    Alias { personality: String, alias: String },
    /// Remove an alias.
    Unalias { personality: String, alias: String },
    /// Remove a personality; its name and aliases are free at once.
    Remove { personality: String },
    /// List personalities.
    List {
        /// Only those of this Discord user id.
        #[arg(long, value_name = "USER_ID")]
        owner: Option<String>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Show one personality.
    Info {
        personality: String,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// `personae events …`.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// List stored events, oldest first.
    List {
        /// Only events with a sequence number greater than SEQ.
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        after: i64,
        /// Only events of this type (e.g. PersonalityCreated).
        #[arg(long = "type", value_name = "TYPE")]
        event_type: Option<String>,
        /// Only events of this correlation id (a Discord interaction id, say).
        #[arg(long, value_name = "ID")]
        correlation: Option<String>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Deliver stored events again to a durable subscriber, from SEQ on.
    Replay {
        /// The subscriber (audit, conversation-cleanup).
        #[arg(long, value_name = "NAME")]
        subscriber: String,
        /// First sequence number to deliver (default: 1, everything).
        #[arg(long, value_name = "SEQ", default_value_t = 1)]
        from: i64,
    },
    /// List events that durable subscribers gave up on; --retry delivers them again.
    DeadLetters {
        #[arg(long)]
        retry: bool,
    },
    /// Check that every personality's stored state equals the fold of its events.
    Verify,
}
