//! `personae export` and `personae import`: personalities to a file and back, here or on
//! another bot.

use std::io::Write;
use std::path::Path;

use chrono::Utc;
use tokio::io::AsyncReadExt;

use super::personality::{parse_server, parse_user};
use super::CliError;
use crate::app::App;
use crate::application::{
    Actor, ImportMode, ImportOutcome, Listing, RequestContext, ServiceError, VisibleIn,
};
use crate::domain::Scope;
use crate::transfer::{self, ExportDocument, ExportedPersonality, FileError, Placement};

/// Writes the personalities asked for (all of them, an owner's, a server's) as an export
/// document, or one personality as a V2 card, to `file` or stdout.
pub(super) async fn export(
    app: &App,
    file: Option<&Path>,
    owner: Option<String>,
    server: Option<String>,
    card: Option<String>,
) -> Result<(), CliError> {
    let service = &app.service;
    let server = parse_server(server.as_deref())?;
    let (text, count) = if let Some(reference) = card {
        let personality = service.get(server, &reference).await.map_err(|e| match e {
            ServiceError::NotFound(_) if server.is_none() => CliError::User(format!(
                "{} Without --server SERVER_ID only global personalities are looked up.",
                super::sentence(&e.to_string())
            )),
            other => other.into(),
        })?;
        let extensions = service.card_extensions(personality.id()).await?;
        let card = transfer::export_card(&personality, extensions.as_ref());
        let text = serde_json::to_string_pretty(&card).map_err(anyhow::Error::from)?;
        (format!("{text}\n"), 1)
    } else {
        let listing = Listing {
            owner: owner.as_deref().map(parse_user).transpose()?,
            visible_in: server.map(|server| VisibleIn {
                server,
                with_globals: false,
            }),
        };
        let mut exported = Vec::new();
        for p in service.list(listing).await? {
            let extensions = service.card_extensions(p.id()).await?;
            exported.push(ExportedPersonality::new(&p, extensions.as_ref()));
        }
        let count = exported.len();
        (ExportDocument::new(exported, Utc::now()).to_json(), count)
    };
    match file {
        None => {
            print!("{text}");
            Ok(())
        }
        Some(path) => {
            write_new(path, text.as_bytes())?;
            let what = if count == 1 {
                "1 personality".to_owned()
            } else {
                format!("{count} personalities")
            };
            println!("Exported {what} to {}.", path.display());
            Ok(())
        }
    }
}

/// Creates the personalities `file` holds, placed by `--owner`, `--server` or `--global`
/// where given; one line per personality, and exit code 1 when any was refused.
pub(super) async fn import(
    app: &App,
    file: &Path,
    owner: Option<String>,
    server: Option<String>,
    global: bool,
    dry_run: bool,
) -> Result<(), CliError> {
    let placement = Placement {
        owner: owner.as_deref().map(parse_user).transpose()?,
        scope: if global {
            Some(Scope::Global)
        } else {
            parse_server(server.as_deref())?.map(Scope::Server)
        },
    };
    let bytes = read_capped(file).await?;
    let (_, portables) =
        transfer::read(&bytes).map_err(|e| CliError::User(file_error(file, &e)))?;
    if portables.is_empty() {
        return Err(CliError::User(format!(
            "{} holds no personalities; nothing to import.",
            file.display()
        )));
    }
    // A card says neither who owns it nor where it lives: ask before trying anything.
    if placement.scope.is_none() && portables.iter().any(|p| p.home.is_none()) {
        return Err(CliError::User(
            "server: a character card has no home server; give --server SERVER_ID or --global."
                .into(),
        ));
    }
    if placement.owner.is_none() && portables.iter().any(|p| p.owner_id.is_none()) {
        return Err(CliError::User(
            "owner: a character card has no owner; give --owner USER_ID.".into(),
        ));
    }
    let items = portables.into_iter().map(|p| placement.place(p)).collect();
    let ctx = RequestContext::new(Actor::CommandLine);
    let mode = if dry_run {
        ImportMode::DryRun
    } else {
        ImportMode::Write
    };
    let outcomes = app.service.import(&ctx, items, mode).await;
    report(&outcomes, dry_run, &ctx.correlation_id)
}

/// One line per personality: created (stdout) or refused (stderr); then the tally.
fn report(outcomes: &[ImportOutcome], dry_run: bool, correlation_id: &str) -> Result<(), CliError> {
    let mut refused = 0;
    let mut failure = None;
    for outcome in outcomes {
        match &outcome.result {
            Ok(p) if dry_run => println!("Would import {} ({}).", p.name(), p.scope()),
            Ok(p) => println!("Imported {} ({}, {}).", p.name(), p.id(), p.scope()),
            Err(e) if e.is_user_error() => {
                refused += 1;
                eprintln!(
                    "{}: {}",
                    shown_name(&outcome.name),
                    super::sentence(&e.to_string())
                );
            }
            Err(e) => {
                refused += 1;
                eprintln!("{}: {e}", shown_name(&outcome.name));
                failure.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let total = outcomes.len();
    let done = total - refused;
    if let Some(failure) = failure {
        return Err(CliError::Other(anyhow::anyhow!(
            "{refused} of {total} personalities were not imported: {failure}"
        )));
    }
    if refused > 0 {
        let verb = if dry_run { "would be" } else { "were" };
        return Err(CliError::User(format!(
            "{refused} of {total} personalities {verb} refused (see the lines above); {done} {}.",
            if dry_run {
                "would be imported"
            } else {
                "imported"
            }
        )));
    }
    if dry_run {
        println!("Dry run: all {total} would be imported; nothing was changed.");
    } else {
        println!("Imported {total} (correlation id {correlation_id}).");
    }
    Ok(())
}

fn shown_name(name: &str) -> String {
    if name.is_empty() {
        "(no name)".to_owned()
    } else {
        name.to_owned()
    }
}

/// The file's bytes, refused past [`transfer::MAX_FILE_BYTES`] before reading it all.
async fn read_capped(file: &Path) -> Result<Vec<u8>, CliError> {
    let opened = tokio::fs::File::open(file)
        .await
        .map_err(|e| CliError::User(format!("Cannot read {}: {e}", file.display())))?;
    let cap = transfer::MAX_FILE_BYTES;
    let mut bytes = Vec::new();
    opened
        .take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| CliError::User(format!("Cannot read {}: {e}", file.display())))?;
    if bytes.len() > cap {
        return Err(CliError::User(file_error(
            file,
            &FileError::TooLarge { max_bytes: cap },
        )));
    }
    Ok(bytes)
}

fn file_error(file: &Path, error: &FileError) -> String {
    format!("Cannot import {}: {error}", file.display())
}

/// Writes `bytes` to a new file at `path`; an existing file is never overwritten.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                CliError::User(format!(
                    "There is a file at {} already; an export never overwrites one: name a new file",
                    path.display()
                ))
            } else {
                CliError::User(format!("Cannot write {}: {e}", path.display()))
            }
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::Other(anyhow::anyhow!("writing {}: {e}", path.display())))
}
