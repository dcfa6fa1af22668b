//! The append-only events table.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::StoreError;
use crate::application::{EventFilter, NewEvent};
use crate::events::{EventEnvelope, SCHEMA_VERSION};

const COLUMNS: &str = "sequence, event_id, aggregate_id, aggregate_version, occurred_at, actor, \
                       correlation_id, causation_id, schema_version, payload";

/// Appends events in order inside the caller's transaction and returns them with their
/// sequence numbers.
pub(crate) fn append(
    tx: &Connection,
    events: Vec<NewEvent>,
) -> Result<Vec<EventEnvelope>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (event_id, event_type, aggregate_id, aggregate_version, occurred_at, \
         actor, correlation_id, causation_id, schema_version, payload) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut stored = Vec::with_capacity(events.len());
    for e in events {
        let payload = serde_json::to_string(&e.event)?;
        stmt.execute(params![
            e.event_id.to_string(),
            e.event.event_type().as_str(),
            e.aggregate_id.to_string(),
            e.aggregate_version,
            e.occurred_at.to_rfc3339(),
            e.actor,
            e.correlation_id,
            e.causation_id,
            SCHEMA_VERSION,
            payload,
        ])?;
        stored.push(e.stored_as(tx.last_insert_rowid()));
    }
    Ok(stored)
}

/// Events matching the filter, in sequence order.
pub(crate) fn list(
    conn: &Connection,
    filter: &EventFilter,
) -> Result<Vec<EventEnvelope>, StoreError> {
    // One statement for every filter: a condition whose parameter is NULL holds.
    let sql = format!(
        "SELECT {COLUMNS} FROM events WHERE sequence > ?1 \
         AND (?2 IS NULL OR sequence < ?2) AND (?3 IS NULL OR event_type = ?3) \
         AND (?4 IS NULL OR correlation_id = ?4) AND (?5 IS NULL OR aggregate_id = ?5) \
         ORDER BY sequence LIMIT ?6"
    );
    let args = params![
        filter.after,
        filter.before,
        filter.event_type.map(|t| t.as_str()),
        filter.correlation_id,
        filter.aggregate_id.map(|a| a.to_string()),
        // A negative limit is no limit.
        filter.limit.map_or(-1, |l| l as i64),
    ];
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(args, read_row)?;
    rows.map(|r| r?).collect()
}

/// The event with this sequence.
pub(crate) fn get(conn: &Connection, sequence: i64) -> Result<Option<EventEnvelope>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM events WHERE sequence = ?1");
    conn.prepare_cached(&sql)?
        .query_row([sequence], read_row)
        .optional()?
        .transpose()
}

/// The version of the last event of `aggregate_id` (as stored), 0 when it has none.
pub(crate) fn last_version(conn: &Connection, aggregate_id: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(MAX(aggregate_version), 0) FROM events WHERE aggregate_id = ?1",
        )?
        .query_row([aggregate_id], |r| r.get(0))?)
}

/// The highest sequence stored, 0 when there are no events.
pub(crate) fn last_sequence(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(sequence), 0) FROM events", [], |r| {
            r.get(0)
        })?,
    )
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<EventEnvelope, StoreError>> {
    // Ids, time and payload are read in place (catching up reads them by the million);
    // only what the envelope keeps as text is copied.
    let event_id = str_at(row, 1)?;
    let aggregate_id = str_at(row, 2)?;
    let occurred_at = str_at(row, 4)?;
    let payload = str_at(row, 9)?;
    let sequence: i64 = row.get(0)?;
    let aggregate_version: i64 = row.get(3)?;
    let actor: String = row.get(5)?;
    let correlation_id: String = row.get(6)?;
    let causation_id: Option<String> = row.get(7)?;
    let schema_version: u32 = row.get(8)?;
    Ok((|| {
        Ok(EventEnvelope {
            sequence,
            event_id: parse_uuid(event_id)?,
            aggregate_id: aggregate_id
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("event {sequence}: {e}")))?,
            aggregate_version,
            occurred_at: parse_time(occurred_at)?,
            actor,
            correlation_id,
            causation_id,
            schema_version,
            event: serde_json::from_str(payload)
                .map_err(|e| StoreError::Corrupt(format!("event {sequence}: {e}")))?,
        })
    })())
}

/// A text column, borrowed from the row; any other type fails as `Row::get` would.
fn str_at<'r>(row: &'r Row<'_>, column: usize) -> rusqlite::Result<&'r str> {
    let value = row.get_ref(column)?;
    value.as_str().map_err(|_| {
        let name = row
            .as_ref()
            .column_name(column)
            .map_or_else(|_| String::new(), str::to_owned);
        rusqlite::Error::InvalidColumnType(column, name, value.data_type())
    })
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("bad id {text:?}: {e}")))
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad time {text:?}: {e}")))
}
