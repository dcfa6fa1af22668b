use super::personality::print_json;
use super::{CliError, EventView, EventsCommand};
use crate::app::App;
use crate::application::EventFilter;
use crate::domain::EventType;
use crate::store::storage_problems;

pub(super) async fn execute(app: &App, command: EventsCommand) -> Result<(), CliError> {
    match command {
        EventsCommand::List {
            after,
            event_type,
            correlation,
            json,
        } => {
            let event_type = event_type
                .map(|t| t.parse::<EventType>())
                .transpose()
                .map_err(CliError::User)?;
            let filter = EventFilter {
                after,
                event_type,
                correlation_id: correlation,
                ..Default::default()
            };
            let events = app.service.events(filter).await?;
            let views: Vec<EventView> = events.iter().map(EventView::from).collect();
            if json {
                print_json(&views)?;
            } else if views.is_empty() {
                println!("No events match.");
            } else {
                for v in &views {
                    println!(
                        "{:>6}  {}  {:<26} {}  v{}  {}  correlation {}",
                        v.sequence,
                        v.occurred_at,
                        v.event_type,
                        v.aggregate_id,
                        v.aggregate_version,
                        v.actor,
                        v.correlation_id
                    );
                }
            }
        }
        EventsCommand::Replay { subscriber, from } => {
            if from < 1 {
                return Err(CliError::User("--from: sequence numbers start at 1".into()));
            }
            let durable = app
                .subscribers
                .subscriber(&subscriber)
                .map_err(|e| CliError::User(e.to_string()))?;
            let report = durable.replay_from(from).await?;
            println!(
                "Replayed into {subscriber} from sequence {from}: {} handled, {} parked as dead letters; checkpoint {}.",
                report.handled, report.parked, report.checkpoint
            );
        }
        EventsCommand::DeadLetters { retry } => {
            let letters = app
                .subscribers
                .dead_letters(None)
                .await
                .map_err(anyhow::Error::from)?;
            if letters.is_empty() {
                println!("No dead letters.");
                return Ok(());
            }
            for d in &letters {
                println!(
                    "#{:<4} {:<22} sequence {:<6} {:<26} attempts {}  parked {}  error: {}",
                    d.id,
                    d.subscriber,
                    d.sequence,
                    d.event_type,
                    d.attempts,
                    d.parked_at.to_rfc3339(),
                    d.last_error
                );
            }
            if retry {
                let report = app
                    .subscribers
                    .retry_dead_letters(None)
                    .await
                    .map_err(anyhow::Error::from)?;
                println!(
                    "Retried {}: {} delivered, {} still failing.",
                    report.retried,
                    report.delivered,
                    report.failed.len()
                );
                if !report.failed.is_empty() {
                    return Err(CliError::Other(anyhow::anyhow!(
                        "{} dead letters still fail; see the errors above",
                        report.failed.len()
                    )));
                }
            }
        }
        EventsCommand::Verify => {
            let mut problems = storage_problems(&app.db).await?;
            // The fold reads every row: only worth it, and only trustworthy, on a sound file.
            let report = if problems.iter().any(|p| p.starts_with("SQLite")) {
                None
            } else {
                let report = app.service.verify().await?;
                problems.extend(report.mismatches.iter().cloned());
                Some(report)
            };
            match report {
                Some(report) if problems.is_empty() => {
                    let current = report.personalities - report.removed;
                    println!(
                        "ok: the stored state matches the events for {} {} ({current} current, {} removed) and the settings of {} {}; {} events read; the file is sound and the key table matches",
                        report.personalities,
                        plural(report.personalities, "personality", "personalities"),
                        report.removed,
                        report.servers,
                        plural(report.servers, "server", "servers"),
                        report.events
                    );
                }
                _ => {
                    for line in &problems {
                        eprintln!("{line}");
                    }
                    return Err(CliError::Other(anyhow::anyhow!(
                        "events verify found {} {}.",
                        problems.len(),
                        plural(problems.len(), "problem", "problems")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// `one` or `many`, as `n` asks.
fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}
