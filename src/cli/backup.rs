//! `personae backup FILE`: copy, check, and say what the copy holds.

use std::path::Path;
use std::sync::Arc;

use super::CliError;
use crate::application::{PersonalityService, ServiceConfig};
use crate::config::Config;
use crate::events::{BusConfig, EventBus};
use crate::store::{BackupError, Database};

/// Copies the configured database to `target` (SQLite's online backup: safe while the bot
/// runs), checks the copy's integrity and that its stored state is the fold of its events
/// (`events verify`), and prints what it holds.
pub async fn backup(config: &Config, target: &Path) -> Result<(), CliError> {
    let source = config.database_path.clone();
    let copy_to = target.to_owned();
    let started = std::time::Instant::now();
    let contents = tokio::task::spawn_blocking(move || crate::store::backup(&source, &copy_to))
        .await
        .map_err(|e| CliError::Other(anyhow::anyhow!("the backup task failed: {e}")))?
        .map_err(|e| match e {
            BackupError::NoDatabase(_) | BackupError::TargetExists(_) => {
                CliError::User(e.to_string())
            }
            BackupError::Integrity(_) | BackupError::Store { .. } => CliError::Other(e.into()),
        })?;
    let took = started.elapsed();
    if contents.schema_version != crate::store::latest_schema_version() {
        // Verifying opens the copy, and opening migrates it: the copy must stay as the bot
        // that wrote it left it.
        return Err(CliError::User(format!(
            "the copy at {} is sound (integrity ok), but has schema version {} and this personae {}: run `personae backup` with the same version of personae as the bot to verify it",
            target.display(),
            contents.schema_version,
            crate::store::latest_schema_version()
        )));
    }

    let verified = verify_copy(target).await;
    let report = match verified {
        Ok(report) => report,
        Err(e) => {
            return Err(CliError::Other(anyhow::anyhow!(
                "the copy at {} could not be verified (keep the previous backup): {e:#}",
                target.display()
            )))
        }
    };
    if !report.is_ok() {
        for line in &report.mismatches {
            eprintln!("{line}");
        }
        return Err(CliError::Other(anyhow::anyhow!(
            "the copy at {} does not pass `events verify`: {} of {} personalities differ from their events (the live database has the same problem; see the lines above)",
            target.display(),
            report.mismatches.len(),
            report.personalities
        )));
    }
    println!(
        "Backed up {} to {} ({}) in {:.2} s.",
        config.database_path.display(),
        target.display(),
        human_bytes(contents.bytes),
        took.as_secs_f64()
    );
    println!("Checked: integrity ok; the stored state matches the events.");
    println!(
        "It holds: personalities {} (and {} removed), names and aliases {}, events {} (last sequence {}), subscriber checkpoints {}, dead letters {}, conversation rows {}; schema version {}.",
        contents.personalities,
        report.removed,
        contents.keys,
        contents.events,
        contents.last_sequence,
        contents.checkpoints,
        contents.dead_letters,
        contents.conversation_rows,
        contents.schema_version
    );
    let live = config.database_path.display();
    println!(
        "To restore: stop personae, delete {live}-wal and {live}-shm if they exist, copy {} to {live}, start personae.",
        target.display(),
    );
    Ok(())
}

/// Runs `events verify` on the copy, through the same service the bot uses.
async fn verify_copy(path: &Path) -> anyhow::Result<crate::application::VerifyReport> {
    let path = path.to_owned();
    let db = tokio::task::spawn_blocking(move || {
        Database::open(&path, crate::store::Synchronous::Normal)
    })
    .await??;
    let service = PersonalityService::new(
        Arc::new(db),
        EventBus::new(BusConfig::default()),
        ServiceConfig::default(),
    );
    Ok(service.verify().await?)
}

fn human_bytes(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} kB", bytes as f64 / 1024.0)
    }
}
