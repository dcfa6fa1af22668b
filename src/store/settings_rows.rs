//! Server settings rows: one per server that changed its settings.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::event_rows::parse_time;
use super::StoreError;
use crate::domain::{ServerId, ServerSettings};

/// The settings of `server`: the defaults when it never changed them.
pub(crate) fn get(conn: &Connection, server: ServerId) -> Result<ServerSettings, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT server_id, settings, version, updated_at FROM server_settings \
             WHERE server_id = ?1",
        )?
        .query_row([server.to_string()], read_row)
        .optional()?;
    row.transpose()
        .map(|stored| stored.unwrap_or_else(|| ServerSettings::defaults(server)))
}

/// The settings of every server that changed them.
pub(crate) fn list(conn: &Connection) -> Result<Vec<ServerSettings>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT server_id, settings, version, updated_at FROM server_settings ORDER BY server_id",
    )?;
    let rows = stmt.query_map([], read_row)?;
    let mut all = Vec::new();
    for row in rows {
        all.push(row??);
    }
    Ok(all)
}

/// Stores `next`, which was decided on version `next.version - 1`; refuses with
/// [`StoreError::Conflict`] when the stored version moved on meanwhile.
pub(crate) fn save(tx: &Connection, next: &ServerSettings) -> Result<(), StoreError> {
    let updated_at = next
        .updated_at
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339();
    let settings = serde_json::to_string(&next.settings)?;
    let written = if next.version == 1 {
        tx.prepare_cached(
            "INSERT INTO server_settings (server_id, settings, version, updated_at) \
             VALUES (?1, ?2, 1, ?3) ON CONFLICT (server_id) DO NOTHING",
        )?
        .execute(params![next.server.to_string(), settings, updated_at])?
    } else {
        tx.prepare_cached(
            "UPDATE server_settings SET settings = ?2, version = ?3, updated_at = ?4 \
             WHERE server_id = ?1 AND version = ?5",
        )?
        .execute(params![
            next.server.to_string(),
            settings,
            next.version,
            updated_at,
            next.version - 1
        ])?
    };
    if written != 1 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<ServerSettings, StoreError>> {
    let server: String = row.get(0)?;
    let settings: String = row.get(1)?;
    let version: i64 = row.get(2)?;
    let updated_at: String = row.get(3)?;
    Ok((|| {
        let corrupt = |e: String| StoreError::Corrupt(format!("settings of server {server}: {e}"));
        Ok(ServerSettings {
            server: server.parse().map_err(|e| corrupt(format!("{e}")))?,
            settings: serde_json::from_str(&settings).map_err(|e| corrupt(e.to_string()))?,
            version,
            updated_at: Some(parse_time(&updated_at)?),
        })
    })())
}
