//! The `personae` binary: parses the command line and calls into the library.

use std::process::ExitCode;

use clap::Parser;
use personae::cli::{self, Cli, CliError, Command};
use personae::config::{process_env, Config, DiscordConfig, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are answers; anything else is a usage mistake: exit 1,
            // as for every other mistake of the user's.
            let code = u8::from(e.use_stderr());
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A missing .env is fine; a broken one is worth a line.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("error: {}", cli::sentence(&format!(".env: {e}")));
            return ExitCode::from(1);
        }
    }
    let config = match Config::from_env(&process_env) {
        Ok(mut config) => {
            if let Some(path) = cli.database.clone() {
                config.database_path = path;
            }
            config
        }
        Err(e) => {
            eprintln!("error: {}", cli::sentence(&e.to_string()));
            return ExitCode::from(1);
        }
    };
    let is_run = matches!(cli.command, Command::Run);
    let read_only = cli.command.is_read_only();
    if read_only && !config.database_path.exists() {
        eprintln!(
            "error: There is no database at {}. Run personae from the folder that holds it, or name it with --database PATH or DATABASE_PATH.",
            config.database_path.display()
        );
        return ExitCode::from(1);
    }
    // The command line answers on stdout; log lines only when asked (`-v`), whatever
    // RUST_LOG a .env written for the bot says.
    let logging = if is_run || cli.verbose {
        Logging::FromEnv("info")
    } else {
        Logging::Quiet
    };
    init_logging(config.log_format, logging);
    // `backup` reads the database without starting the application (no migration, no
    // catch-up: it must not change what it copies).
    let backup_target = match &cli.command {
        Command::Backup { file } => Some(file.clone()),
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        if is_run {
            let discord =
                DiscordConfig::from_env(&process_env).map_err(|e| CliError::User(e.to_string()))?;
            personae::app::run(&config, &discord, personae::discord::shutdown_signal())
                .await
                .map_err(|e| {
                    if e.is_configuration_mistake() {
                        CliError::User(e.to_string())
                    } else {
                        CliError::Other(e.into())
                    }
                })
        } else if let Some(target) = backup_target {
            cli::backup(&config, &target).await
        } else {
            let app = if read_only {
                personae::app::App::start_read_only(&config).await
            } else {
                personae::app::App::start_command_line(&config).await
            }
            .map_err(|e| {
                if personae::store::StoreError::is_newer_schema_in(&e) {
                    CliError::User(format!("{e:#}"))
                } else {
                    CliError::Other(e)
                }
            })?;
            let result = cli::execute(&app, cli.command).await;
            app.shutdown().await;
            result
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Which log lines are written.
#[derive(Clone, Copy)]
enum Logging {
    /// RUST_LOG, or this level when it is unset.
    FromEnv(&'static str),
    /// Warnings and errors only.
    Quiet,
}

/// Logs to stderr.
fn init_logging(format: LogFormat, logging: Logging) {
    let filter = match logging {
        Logging::FromEnv(default_level) => {
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level))
        }
        Logging::Quiet => EnvFilter::new("warn"),
    };
    // Colours only for a person at a terminal, not in journald or a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
