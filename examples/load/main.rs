//! Load commands for personae's benchmarks (see BENCHMARKS.md):
//!
//! ```sh
//! cargo build --release                          # the bot binary `discord` and `startup` run
//! cargo run --release --example load -- bus      # publish vs awaiting the handlers directly
//! cargo run --release --example load -- routing  # the message path at 10 … 100,000 aliases
//! cargo run --release --example load -- commands # command path vs bare SQL, 100 and 100,000
//! cargo run --release --example load -- startup  # cache load time and memory
//! cargo run --release --example load -- discord  # round trips through the fake Discord
//! cargo run --release --example load -- catchup  # a durable subscriber 1,000,000 events behind
//! cargo run --release --example load -- memory   # 100,000 users and channels: memory levels off
//! cargo run --example load -- streaming          # streamed answers: first visible text, edits, 429s
//! ```
//!
//! Logging is set up as `personae run` sets it up (RUST_LOG, default `info`), so code that
//! logs costs here what it costs in the bot.

mod catchup;
mod commands;
mod discord;
mod measure;
mod memory;
mod micro;
mod startup;
mod streaming;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use personae_fakes::discord::FakeDiscord;
use personae_fakes::llm::FakeLlm;
use personae_testkit::bot::{self, Process};
use personae_testkit::seed;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(about = "Load commands for personae's benchmarks (see BENCHMARKS.md)")]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Publishing one event against awaiting its three handlers directly, interleaved.
    Bus {
        #[arg(long, default_value_t = 200)]
        rounds: usize,
    },
    /// Routing 200-character messages at 10, 1,000 and 100,000 aliases, interleaved.
    Routing {
        #[arg(long, default_value_t = 30)]
        rounds: usize,
        /// Messages per variant and round. Each round starts with caches that the other
        /// variants filled; a short round measures re-filling them more than routing.
        #[arg(long, default_value_t = 200_000)]
        iterations: u64,
    },
    /// Register → alias → update → remove through the service, against the bare SQL.
    Commands {
        /// Store sizes (personalities), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "100,100000")]
        sizes: Vec<usize>,
        /// Concurrent clients issuing commands to the service, comma-separated; each
        /// number is measured. The floor in BENCHMARKS.md is stated for one.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        clients: Vec<usize>,
        /// Cycles (4 commands each) per side, size and number of clients.
        #[arg(long, default_value_t = 2500)]
        cycles: u64,
        /// SQLite's `synchronous` for both sides, as DATABASE_SYNCHRONOUS sets it for the
        /// bot: normal, or full (every commit synced to disk before it is acknowledged).
        #[arg(long, default_value = "normal")]
        synchronous: personae::store::Synchronous,
    },
    /// Cache load time and resident memory, in fresh processes.
    Startup {
        /// Store sizes (personalities), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
        sizes: Vec<usize>,
        /// How long the bot idles before its memory is read, in seconds.
        #[arg(long, default_value_t = 5)]
        idle_secs: u64,
        /// Fresh processes of each kind per size; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Internal: `startup` runs this in a fresh process (or run it on a `seed` database).
    #[command(hide = true)]
    StartupChild { database: PathBuf },
    /// Writes a database of personalities (3 aliases, 500-character prompts) to profile with.
    Seed {
        database: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        personalities: usize,
    },
    /// The real bot against the fake Discord and an instant fake LLM.
    Discord {
        #[arg(long, default_value_t = 1000)]
        personalities: usize,
        /// Slash commands per second.
        #[arg(long, default_value_t = 200)]
        command_rate: u32,
        #[arg(long, default_value_t = 30)]
        command_secs: u64,
        /// `@alias` messages per second.
        #[arg(long, default_value_t = 50)]
        message_rate: u32,
        #[arg(long, default_value_t = 20)]
        message_secs: u64,
    },
    /// 100,000 distinct users and channels through the message path's per-user and
    /// per-channel state on a simulated clock, with resident memory as it goes.
    Memory {
        #[arg(long, default_value_t = 100_000)]
        users: u64,
        /// Messages per simulated second.
        #[arg(long, default_value_t = 10)]
        per_second: u64,
    },
    /// Streamed answers through the webhook: first token to first visible message, edits
    /// per message per second and 429s, against whole answers in the same run.
    Streaming {
        /// Conversations at once, comma-separated; each number is measured.
        #[arg(long, value_delimiter = ',', default_value = "1,50")]
        conversations: Vec<usize>,
        /// Characters of each answer.
        #[arg(long, default_value_t = 1200)]
        answer_chars: usize,
        /// Characters the fake LLM writes per event.
        #[arg(long, default_value_t = 8)]
        chars_per_event: usize,
        /// Milliseconds between events (8 characters every 50 ms: about 40 tokens a second).
        #[arg(long, default_value_t = 50)]
        event_interval_ms: u64,
    },
    /// A durable subscriber catching up from far behind.
    Catchup {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Prompt length in the events' payloads.
        #[arg(long, default_value_t = 200)]
        prompt_chars: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match args.mode {
        Mode::Bus { rounds } => return micro::bus(rounds),
        Mode::Routing { rounds, iterations } => return micro::routing(rounds, iterations),
        Mode::Memory { users, per_second } => return memory::run(users, per_second),
        _ => {}
    }
    // The bot's runtime: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match args.mode {
            // Each runs its own runtime, outside this one (dispatched above).
            Mode::Bus { .. } | Mode::Routing { .. } | Mode::Memory { .. } => {
                Err(anyhow::anyhow!("bus and routing run outside the runtime"))
            }
            Mode::Commands {
                sizes,
                clients,
                cycles,
                synchronous,
            } => commands::run(&sizes, &clients, cycles, synchronous)
                .await
                .map(drop),
            Mode::Startup {
                sizes,
                idle_secs,
                runs,
            } => startup::run(&sizes, Duration::from_secs(idle_secs), runs).await,
            Mode::StartupChild { database } => startup::child(&database).await,
            Mode::Seed {
                database,
                personalities,
            } => {
                let db = seed::open(&database)?;
                seed::personalities(&db, personalities, 3, 500).await
            }
            Mode::Discord {
                personalities,
                command_rate,
                command_secs,
                message_rate,
                message_secs,
            } => {
                discord::run(discord::Plan {
                    personalities,
                    command_rate,
                    command_secs,
                    message_rate,
                    message_secs,
                })
                .await
            }
            Mode::Catchup {
                events,
                prompt_chars,
            } => catchup::run(events, prompt_chars).await,
            Mode::Streaming {
                conversations,
                answer_chars,
                chars_per_event,
                event_interval_ms,
            } => {
                streaming::run(streaming::Plan {
                    conversations,
                    answer_chars,
                    chars_per_event,
                    event_interval: Duration::from_millis(event_interval_ms),
                })
                .await
            }
        }
    })
}

/// How long the bot may take to get ready (seeding leaves it a large cache to load).
const READY: Duration = Duration::from_secs(120);
/// How long the bot may take to exit after SIGTERM.
const STOP: Duration = Duration::from_secs(40);

/// `personae run` (the binary beside this example) on `database`, against the fakes, in the
/// guild the fake Discord plays and logging at `info` as a host runs it; `env` adds or
/// overrides variables. Returns once it is ready, with how long that took.
async fn start_bot(
    discord: &FakeDiscord,
    llm: &FakeLlm,
    database: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<(Process, Duration)> {
    let guild = discord.config().guild_id.clone();
    let mut all = vec![("DEV_GUILD_ID", guild.as_str()), ("RUST_LOG", "info")];
    all.extend_from_slice(env);
    bot::run_ready(discord, llm, database, &all, READY).await
}
