//! What `events verify` checks in the file itself, beside the events: SQLite's own
//! integrity check and foreign keys, and that the names-and-aliases key table agrees with
//! the stored personalities (every personality holds exactly its name's key; every key
//! belongs to a stored personality).

use rusqlite::Connection;

use super::{Database, StoreError};
use crate::domain::lookup_key;

/// One line per problem found; empty when the file is sound.
pub async fn storage_problems(db: &Database) -> Result<Vec<String>, StoreError> {
    db.call(|conn| {
        let mut problems = integrity(conn)?;
        // The key check reads tables the integrity check just found damaged only if it
        // found none: reading a damaged b-tree can fail or mislead.
        if problems.is_empty() {
            problems.extend(keys(conn)?);
        }
        Ok(problems)
    })
    .await
}

/// `PRAGMA integrity_check` and `PRAGMA foreign_key_check`, one line per problem.
fn integrity(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let checked: rusqlite::Result<Vec<String>> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect());
    let mut problems: Vec<String> = match checked {
        Ok(lines) => lines
            .into_iter()
            .filter(|line| line != "ok")
            .map(|line| format!("SQLite integrity check: {line}"))
            .collect(),
        // A page damaged badly enough stops the check itself: that is its finding.
        Err(e) => return Ok(vec![format!("SQLite integrity check: {e}")]),
    };
    let mut stmt = conn.prepare("PRAGMA foreign_key_check")?;
    for row in stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, String>(2)?,
        ))
    })? {
        let (table, rowid, parent) = row?;
        let rowid = rowid.map_or_else(|| "a row".to_owned(), |id| format!("row {id}"));
        problems.push(format!("{table}: {rowid} refers to a missing {parent} row"));
    }
    Ok(problems)
}

/// The key table against the personalities table.
fn keys(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT p.id, p.name, \
                (SELECT group_concat(k.key, char(31)) FROM personality_keys k \
                 WHERE k.personality_id = p.id AND k.kind = 'name') \
         FROM personalities p ORDER BY p.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    for row in rows {
        let (id, name, held) = row?;
        let expected = lookup_key(&name);
        let held: Vec<String> = held
            .map(|h| h.split('\u{1f}').map(str::to_owned).collect())
            .unwrap_or_default();
        if held.is_empty() {
            problems.push(format!(
                "{id} ({name}): its name has no row in the key table, so \"{expected}\" is free for others"
            ));
        } else if held != [expected.clone()] {
            problems.push(format!(
                "{id} ({name}): the key table holds its name as {held:?}, expected \"{expected}\""
            ));
        }
    }
    let mut stmt = conn.prepare(
        "SELECT k.key, k.kind, k.personality_id FROM personality_keys k \
         WHERE NOT EXISTS (SELECT 1 FROM personalities p WHERE p.id = k.personality_id) \
         ORDER BY k.key",
    )?;
    for row in stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })? {
        let (key, kind, id) = row?;
        problems.push(format!(
            "key table: the {kind} \"{key}\" belongs to {id}, which is not stored"
        ));
    }
    Ok(problems)
}
