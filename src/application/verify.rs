//! `events verify`: the stored state of every personality and every server's settings must
//! equal the fold of its events.

use std::collections::BTreeMap;

use super::Snapshot;
use crate::domain::{AggregateId, Personality, PersonalityId, ServerId, ServerSettings};
use crate::events::EventEnvelope;

/// What `verify` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Personalities checked (stored or folded from events).
    pub personalities: usize,
    /// Of those, how many were removed (their events end with the removal, no row is left).
    pub removed: usize,
    /// Servers whose settings were checked.
    pub servers: usize,
    /// Events read.
    pub events: usize,
    /// One line per personality whose state and history disagree.
    pub mismatches: Vec<String>,
}

impl VerifyReport {
    /// True when every personality matched its history.
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Folds every aggregate's events and compares the result with its stored state.
pub(crate) fn verify(snapshot: &Snapshot) -> VerifyReport {
    let mut personalities: BTreeMap<PersonalityId, Vec<_>> = BTreeMap::new();
    let mut servers: BTreeMap<ServerId, Vec<_>> = BTreeMap::new();
    for e in &snapshot.events {
        match e.aggregate_id {
            AggregateId::Personality(id) => personalities.entry(id).or_default().push(e),
            AggregateId::ServerSettings(server) => servers.entry(server).or_default().push(e),
        }
    }
    let mut report = VerifyReport {
        events: snapshot.events.len(),
        ..Default::default()
    };
    verify_personalities(snapshot, &personalities, &mut report);
    verify_settings(snapshot, &servers, &mut report);
    report
}

fn verify_personalities(
    snapshot: &Snapshot,
    by_aggregate: &BTreeMap<PersonalityId, Vec<&EventEnvelope>>,
    report: &mut VerifyReport,
) {
    let mut stored_by_id: BTreeMap<PersonalityId, &Personality> =
        snapshot.personalities.iter().map(|p| (p.id(), p)).collect();
    for (id, history) in by_aggregate {
        report.personalities += 1;
        check_versions(&id.to_string(), history, report);
        let folded =
            Personality::from_history(*id, history.iter().map(|e| (&e.event, e.occurred_at)));
        match (folded, stored_by_id.remove(id)) {
            (None, None) => report.removed += 1,
            (Some(f), None) => report.mismatches.push(format!(
                "{id} ({}): events say it exists, but it is not stored",
                f.name()
            )),
            (None, Some(s)) => report.mismatches.push(format!(
                "{id} ({}): stored, but its events say it was removed",
                s.name()
            )),
            (Some(f), Some(s)) => {
                if let Some(diff) = difference(&f, s) {
                    report
                        .mismatches
                        .push(format!("{id} ({}): {diff}", s.name()));
                }
            }
        }
    }
    for (id, s) in stored_by_id {
        report.personalities += 1;
        report
            .mismatches
            .push(format!("{id} ({}): stored, but has no events", s.name()));
    }
}

fn verify_settings(
    snapshot: &Snapshot,
    by_server: &BTreeMap<ServerId, Vec<&EventEnvelope>>,
    report: &mut VerifyReport,
) {
    let mut stored: BTreeMap<ServerId, &ServerSettings> =
        snapshot.settings.iter().map(|s| (s.server, s)).collect();
    for (server, history) in by_server {
        report.servers += 1;
        check_versions(&format!("server {server}"), history, report);
        let folded = ServerSettings::from_history(
            *server,
            history.iter().map(|e| (&e.event, e.occurred_at)),
        );
        match (folded, stored.remove(server)) {
            (Some(folded), Some(stored)) if folded == *stored => {}
            (_, None) => report.mismatches.push(format!(
                "server {server}: events change its settings, but none are stored"
            )),
            _ => report.mismatches.push(format!(
                "server {server}: stored settings differ from their events"
            )),
        }
    }
    for server in stored.keys() {
        report.servers += 1;
        report
            .mismatches
            .push(format!("server {server}: settings stored, but no events"));
    }
}

fn check_versions(aggregate: &str, history: &[&EventEnvelope], report: &mut VerifyReport) {
    let contiguous = history
        .iter()
        .enumerate()
        .all(|(i, e)| e.aggregate_version == i as i64 + 1);
    if !contiguous {
        report
            .mismatches
            .push(format!("{aggregate}: event versions are not 1, 2, 3, …"));
    }
}

fn difference(folded: &Personality, stored: &Personality) -> Option<String> {
    let mut diffs = Vec::new();
    if folded.name() != stored.name() {
        diffs.push(format!("name {} ≠ {}", stored.name(), folded.name()));
    }
    if folded.owner_id() != stored.owner_id() {
        diffs.push("owner differs".to_owned());
    }
    if folded.profile() != stored.profile() {
        diffs.push("profile differs".to_owned());
    }
    if folded.aliases() != stored.aliases() {
        diffs.push(format!(
            "aliases {:?} ≠ {:?}",
            stored.aliases(),
            folded.aliases()
        ));
    }
    if folded.version() != stored.version() {
        diffs.push(format!(
            "version {} ≠ {}",
            stored.version(),
            folded.version()
        ));
    }
    if folded.created_at() != stored.created_at() || folded.updated_at() != stored.updated_at() {
        diffs.push("timestamps differ".to_owned());
    }
    (!diffs.is_empty())
        .then(|| format!("stored state differs from its events: {}", diffs.join("; ")))
}
