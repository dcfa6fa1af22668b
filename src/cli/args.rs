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
    /// The SQLite file to use, over DATABASE_PATH (default data/personae.db).
    #[arg(long, global = true, value_name = "PATH")]
    pub database: Option<std::path::PathBuf>,
    /// Log as RUST_LOG says (default info) instead of warnings and errors only.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// True for commands that only read: they need an existing database and start no
    /// event subscribers (which would write their checkpoints).
    pub fn is_read_only(&self) -> bool {
        match self {
            Command::Personality { command } => matches!(
                command,
                PersonalityCommand::List { .. }
                    | PersonalityCommand::Info { .. }
                    | PersonalityCommand::History { .. }
            ),
            Command::Events { command } => matches!(
                command,
                EventsCommand::List { .. }
                    | EventsCommand::Verify
                    | EventsCommand::DeadLetters { retry: false }
            ),
            Command::Server { command } => matches!(command, ServerCommand::Show { .. }),
            // Copies the file as it is: it must exist, and nothing may write to it.
            Command::Backup { .. } | Command::Export { .. } => true,
            Command::Import { dry_run, .. } => *dry_run,
            Command::Run => false,
        }
    }
}

impl PersonalityCommand {
    /// Where the command looks its PERSONALITY up; `None` for those that name none.
    pub fn place(&self) -> Option<&Where> {
        match self {
            PersonalityCommand::Update { place, .. }
            | PersonalityCommand::Alias { place, .. }
            | PersonalityCommand::Unalias { place, .. }
            | PersonalityCommand::Remove { place, .. }
            | PersonalityCommand::Global { place, .. }
            | PersonalityCommand::Info { place, .. }
            | PersonalityCommand::History { place, .. }
            | PersonalityCommand::Revert { place, .. }
            | PersonalityCommand::Restore { place, .. } => Some(place),
            PersonalityCommand::Create { .. } | PersonalityCommand::List { .. } => None,
        }
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, change, inspect and remove personalities.
    Personality {
        #[command(subcommand)]
        command: PersonalityCommand,
    },
    /// Show and change a server's settings: where its personalities answer, whether global
    /// ones do, and who may create how many.
    Server {
        #[command(subcommand)]
        command: ServerCommand,
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
    /// Write personalities to a JSON file (personae's export format, or with --card a
    /// Character Card V2) that `import` reads, here or on another bot.
    Export {
        /// Where to write it (a new file; it is never overwritten); stdout without it.
        file: Option<PathBuf>,
        /// Only the personalities of this Discord user id.
        #[arg(long, value_name = "USER_ID")]
        owner: Option<String>,
        /// Only the personalities whose home is this server (guild id); with --card, the
        /// server whose personality PERSONALITY is.
        #[arg(long, value_name = "SERVER_ID")]
        server: Option<String>,
        /// Export this one personality (a name or an alias) as a Character Card V2.
        #[arg(long, value_name = "PERSONALITY", conflicts_with = "owner")]
        card: Option<String>,
    },
    /// Create the personalities of FILE: a personae export, or a character card (V2 or
    /// V3, JSON or PNG). Each is created whole or not at all; each refusal gets a line.
    #[command(group(clap::ArgGroup::new("scope").args(["server", "global"])))]
    Import {
        /// The file to read (at most 8 MiB).
        file: PathBuf,
        /// The owner of every imported personality (a card names none; an export's own
        /// owners are kept without it).
        #[arg(long, value_name = "USER_ID")]
        owner: Option<String>,
        /// The server (guild id) every imported personality belongs to (a card names none;
        /// an export's own home servers are kept without it).
        #[arg(long, value_name = "SERVER_ID")]
        server: Option<String>,
        /// Make every imported personality global.
        #[arg(long)]
        global: bool,
        /// Check everything and say what would happen; create nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Where a name is looked up: a server's personalities and the global ones, or only the
/// global ones without `--server`.
#[derive(Debug, Clone, clap::Args)]
pub struct Where {
    /// The server (guild id) whose personality PERSONALITY is; without it, only global
    /// personalities are found.
    #[arg(long, value_name = "SERVER_ID")]
    pub server: Option<String>,
}

/// `personae personality …`. PERSONALITY is a name or an alias.
#[derive(Debug, Subcommand)]
pub enum PersonalityCommand {
    /// Create a personality in a server (--server) or for every server (--global).
    #[command(group(clap::ArgGroup::new("scope").required(true).args(["server", "global"])))]
    Create {
        /// Name, unique in its server: letters, digits, spaces, '-' and '_' (at most 64
        /// characters).
        name: String,
        /// Discord user id of the owner.
        #[arg(long, value_name = "USER_ID")]
        owner: String,
        /// The server (guild id) it belongs to.
        #[arg(long, value_name = "SERVER_ID")]
        server: Option<String>,
        /// Usable in every server that allows global personalities, and in DMs.
        #[arg(long)]
        global: bool,
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
        /// The personality's name or one of its aliases.
        personality: String,
        #[command(flatten)]
        place: Where,
        /// Name shown on its messages.
        #[arg(long)]
        display_name: Option<String>,
        /// System prompt (at most 6000 characters).
        #[arg(long)]
        prompt: Option<String>,
        /// LLM model; "" goes back to LLM_MODEL.
        #[arg(long)]
        model: Option<String>,
        /// Avatar image URL (http or https); "" removes it.
        #[arg(long)]
        avatar_url: Option<String>,
        /// true: it answers only in age-restricted channels, never in DMs.
        #[arg(long, value_name = "true|false")]
        nsfw: Option<bool>,
        /// Sampling temperature, 0 to 2; "default" leaves it to the model.
        #[arg(long, value_name = "T")]
        temperature: Option<String>,
        /// Longest answer in tokens, at most LLM_MAX_TOKENS; "default" is LLM_MAX_TOKENS.
        #[arg(long, value_name = "N")]
        max_tokens: Option<String>,
    },
    /// Add an alias.
    Alias {
        /// The personality's name or one of its aliases.
        personality: String,
        /// The new alias, answered to as @alias.
        alias: String,
        #[command(flatten)]
        place: Where,
    },
    /// Remove an alias.
    Unalias {
        /// The personality's name or one of its aliases.
        personality: String,
        /// The alias to remove.
        alias: String,
        #[command(flatten)]
        place: Where,
    },
    /// Remove a personality; its name and aliases are free at once, and `restore` brings it back within 30 days.
    Remove {
        /// The personality's name or one of its aliases.
        personality: String,
        #[command(flatten)]
        place: Where,
    },
    /// Make a server's personality global: usable in every server. Refused when another
    /// server uses one of its names or aliases.
    Global {
        /// The personality's name or one of its aliases.
        personality: String,
        #[command(flatten)]
        place: Where,
    },
    /// List personalities: every one, or those a server sees (its own and the global ones).
    List {
        /// Only those of this Discord user id.
        #[arg(long, value_name = "USER_ID")]
        owner: Option<String>,
        /// Only those usable in this server (guild id).
        #[arg(long, value_name = "SERVER_ID")]
        server: Option<String>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// List a personality's profile revisions: when, who, which fields changed.
    History {
        /// The personality's name or one of its aliases.
        personality: String,
        #[command(flatten)]
        place: Where,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Set a personality's profile back to an earlier revision, as a new update.
    Revert {
        /// The personality's name or one of its aliases.
        personality: String,
        /// The revision to go back to (see `history`).
        revision: i64,
        #[command(flatten)]
        place: Where,
    },
    /// Bring back a personality removed at most 30 days ago, as it was, with every alias no
    /// other personality took meanwhile (the others are listed).
    Restore {
        /// The removed personality's name.
        name: String,
        #[command(flatten)]
        place: Where,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Show one personality.
    Info {
        /// The personality's name or one of its aliases.
        personality: String,
        #[command(flatten)]
        place: Where,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// `personae server …`.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Show a server's settings.
    Show {
        /// The server (guild id).
        server: String,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Change a server's settings: everything given is saved as one change.
    Set {
        /// The server (guild id).
        server: String,
        /// Where personalities answer: every channel, only the listed ones, or all but those.
        #[arg(long, value_name = "all|listed|all-but-listed")]
        channels: Option<String>,
        /// Put a channel (id) on the list; repeat for several. A thread follows its channel.
        #[arg(long = "list-channel", value_name = "CHANNEL_ID")]
        list_channels: Vec<String>,
        /// Take a channel (id) off the list; repeat for several.
        #[arg(long = "unlist-channel", value_name = "CHANNEL_ID")]
        unlist_channels: Vec<String>,
        /// Whether global personalities answer in this server and show in its lists.
        #[arg(long, value_name = "true|false")]
        globals: Option<bool>,
        /// How many personalities one member may own here (1 to 1000).
        #[arg(long, value_name = "N")]
        member_limit: Option<u16>,
        /// Whether members without Manage Server may create personalities.
        #[arg(long, value_name = "true|false")]
        members_may_create: Option<bool>,
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
        /// Deliver each once more; delivered ones are deleted.
        #[arg(long)]
        retry: bool,
    },
    /// Check that every personality's and every server's stored state equals the fold of
    /// its events.
    Verify,
}
