//! The `personae` binary: parses the command line and calls into the library.

use std::process::ExitCode;

use clap::Parser;
use personae::cli::{self, Cli, CliError, Command};
use personae::config::{process_env, Config, DiscordConfig, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A missing .env is fine; a broken one is worth a line.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("error: .env: {e}");
            return ExitCode::from(1);
        }
    }
    let config = match Config::from_env(&process_env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let is_run = matches!(cli.command, Command::Run);
    // `backup` reads the database without starting the application (no migration, no
    // catch-up: it must not change what it copies).
    let backup_target = match &cli.command {
        Command::Backup { file } => Some(file.clone()),
        _ => None,
    };
    init_logging(config.log_format, if is_run { "info" } else { "warn" });
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
            let app = personae::app::App::start_command_line(&config)
                .await
                .map_err(CliError::Other)?;
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

/// Logs to stderr; RUST_LOG overrides the default level.
fn init_logging(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
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
