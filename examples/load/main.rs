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
//! ```
//!
//! Logging is set up as `personae run` sets it up (RUST_LOG, default `info`), so code that
//! logs costs here what it costs in the bot.

mod bot;
mod bus_fixture;
mod catchup;
mod command_path;
mod commands;
mod discord;
mod measure;
mod micro;
mod open_loop;
mod routing_fixture;
mod seed;
mod startup;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
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
        #[arg(long, default_value_t = 60)]
        rounds: usize,
    },
    /// Register → alias → update → remove through the service, against the bare SQL.
    Commands {
        /// Store sizes (personalities), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "100,100000")]
        sizes: Vec<usize>,
        /// Concurrent clients issuing commands to the service, comma-separated; each
        /// number is measured.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        clients: Vec<usize>,
        /// Cycles (4 commands each) per side, size and number of clients.
        #[arg(long, default_value_t = 2500)]
        cycles: u64,
        /// SQLite's `synchronous` for both sides, as DATABASE_SYNCHRONOUS sets it for the
        /// bot: normal, or full (every commit synced to disk before it is acknowledged).
        #[arg(long, default_value = "normal")]
        synchronous: personae::store::Synchronous,
        /// Offered rates (commands per second, comma-separated) at which the service and the
        /// bare SQL then run open-loop: users arrive on a schedule, each running one cycle.
        #[arg(long, value_delimiter = ',', default_value = "5000,10000",
              value_parser = clap::value_parser!(u64).range(1..))]
        rates: Vec<u64>,
        /// How long each side (the service, then the bare SQL) runs at each offered rate, in
        /// seconds, in turns of at most half a second.
        #[arg(long, default_value_t = 3)]
        rate_secs: u64,
    },
    /// Cache load time and resident memory, in fresh processes.
    Startup {
        /// Store sizes (personalities), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
        sizes: Vec<usize>,
        /// How long the bot idles before its memory is read, in seconds.
        #[arg(long, default_value_t = 5)]
        idle_secs: u64,
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
        Mode::Routing { rounds } => return micro::routing(rounds),
        _ => {}
    }
    // The bot's runtime: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match args.mode {
            // Each runs its own runtime, outside this one (dispatched above).
            Mode::Bus { .. } | Mode::Routing { .. } => {
                Err(anyhow::anyhow!("bus and routing run outside the runtime"))
            }
            Mode::Commands {
                sizes,
                clients,
                cycles,
                synchronous,
                rates,
                rate_secs,
            } => commands::run(
                &sizes,
                &clients,
                cycles,
                synchronous,
                &commands::Rates {
                    rates,
                    each: Duration::from_secs(rate_secs),
                },
            )
            .await
            .map(drop),
            Mode::Startup { sizes, idle_secs } => {
                startup::run(&sizes, Duration::from_secs(idle_secs)).await
            }
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
        }
    })
}
