//! Current state of every personality, and the namespace of names and aliases.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::event_rows::{parse_time, parse_uuid};
use super::StoreError;
use crate::domain::{
    Alias, AvatarUrl, DisplayName, DomainEvent, ModelName, Personality, PersonalityId,
    PersonalityName, Profile, Prompt, UserId,
};

/// Who holds a name-or-alias key, for error messages that say what the key is taken by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub personality_id: PersonalityId,
    pub personality_name: String,
    pub is_name: bool,
}

const COLUMNS: &str =
    "id, name, owner_id, display_name, avatar_url, prompt, model, version, created_at, updated_at";

/// Writes the effect of `events` (already applied to `personality`) inside the caller's
/// transaction. `expected_version` is the version the caller loaded: a row at any other
/// version means someone else changed it first.
pub(crate) fn save(
    tx: &Transaction<'_>,
    personality: &Personality,
    expected_version: i64,
    events: &[DomainEvent],
) -> Result<(), StoreError> {
    let id = personality.id.to_string();
    for event in events {
        match event {
            DomainEvent::PersonalityCreated { name, aliases, .. } => {
                insert_row(tx, personality)?;
                insert_key(tx, &name.key(), &id, "name")?;
                for alias in aliases {
                    insert_key(tx, alias.as_str(), &id, "alias")?;
                }
            }
            DomainEvent::PersonalityAliasAdded { alias } => {
                insert_key(tx, alias.as_str(), &id, "alias")?
            }
            DomainEvent::PersonalityAliasRemoved { alias } => {
                tx.prepare_cached(
                    "DELETE FROM personality_keys WHERE key = ?1 AND personality_id = ?2",
                )?
                .execute(params![alias.as_str(), id])?;
            }
            DomainEvent::PersonalityProfileUpdated { .. } => {}
            DomainEvent::PersonalityRemoved { .. } => {
                // The keys go with the row (ON DELETE CASCADE): the name and aliases are free at once.
                let deleted = tx
                    .prepare_cached("DELETE FROM personalities WHERE id = ?1 AND version = ?2")?
                    .execute(params![id, expected_version])?;
                if deleted != 1 {
                    return Err(StoreError::Conflict);
                }
                return Ok(());
            }
        }
    }
    if expected_version > 0 {
        let updated = tx
            .prepare_cached(
                "UPDATE personalities SET display_name = ?1, avatar_url = ?2, prompt = ?3, model = ?4, \
                 version = ?5, updated_at = ?6 WHERE id = ?7 AND version = ?8",
            )?
            .execute(params![
                personality.profile.display_name.as_str(),
                personality.profile.avatar_url.as_ref().map(AvatarUrl::as_str),
                personality.profile.prompt.as_str(),
                personality.profile.model.as_ref().map(ModelName::as_str),
                personality.version,
                personality.updated_at.to_rfc3339(),
                id,
                expected_version,
            ])?;
        if updated != 1 {
            return Err(StoreError::Conflict);
        }
    }
    Ok(())
}

fn insert_row(tx: &Transaction<'_>, p: &Personality) -> Result<(), StoreError> {
    tx.prepare_cached(&format!(
        "INSERT INTO personalities ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        p.id.to_string(),
        p.name.as_str(),
        p.owner_id.to_string(),
        p.profile.display_name.as_str(),
        p.profile.avatar_url.as_ref().map(AvatarUrl::as_str),
        p.profile.prompt.as_str(),
        p.profile.model.as_ref().map(ModelName::as_str),
        p.version,
        p.created_at.to_rfc3339(),
        p.updated_at.to_rfc3339(),
    ])?;
    Ok(())
}

fn insert_key(tx: &Transaction<'_>, key: &str, id: &str, kind: &str) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO personality_keys (key, personality_id, kind) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![key, id, kind])?;
    Ok(())
}

/// Who holds `key` (a normalized name or alias), if anyone.
pub(crate) fn key_owner(conn: &Connection, key: &str) -> Result<Option<KeyOwner>, StoreError> {
    conn.prepare_cached(
        "SELECT k.personality_id, p.name, k.kind FROM personality_keys k \
         JOIN personalities p ON p.id = k.personality_id WHERE k.key = ?1",
    )?
    .query_row([key], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })
    .optional()?
    .map(|(id, name, kind)| {
        Ok(KeyOwner {
            personality_id: PersonalityId::from_uuid(parse_uuid(&id)?),
            personality_name: name,
            is_name: kind == "name",
        })
    })
    .transpose()
}

/// The personality whose name or alias normalizes to `key`.
pub(crate) fn find_by_key(conn: &Connection, key: &str) -> Result<Option<Personality>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached("SELECT personality_id FROM personality_keys WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    match id {
        Some(id) => get(conn, &id),
        None => Ok(None),
    }
}

/// The personality with this id.
pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<Personality>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM personalities WHERE id = ?1"
        ))?
        .query_row([id], read_row)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let mut personality = row?;
    personality.aliases = aliases_of(conn, id)?;
    Ok(Some(personality))
}

/// Hands every personality, with the normalized key of its name, to `visit`, one at a
/// time and in no useful order, keeping none: the start-up load of the caches, which must
/// not hold the whole table twice. Returns how many there were.
pub(crate) fn for_each(
    conn: &Connection,
    mut visit: impl FnMut(Personality, String),
) -> Result<usize, StoreError> {
    // Both in id order, merged as they stream: no sort, no map of all aliases. The keys
    // come from the index on personality_id alone, which holds (personality_id, key):
    // asking for `kind` too would cost a look-up in the table for every key, so the name's
    // key is told apart by value instead (an alias never equals its personality's name).
    let mut rows_stmt =
        conn.prepare(&format!("SELECT {COLUMNS} FROM personalities ORDER BY id"))?;
    let mut keys_stmt = conn
        .prepare("SELECT personality_id, key FROM personality_keys ORDER BY personality_id, key")?;
    let mut rows = rows_stmt.query([])?;
    let mut keys = keys_stmt.query([])?;
    let mut key = keys.next()?;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let mut personality = read_row(row)??;
        let name_key = personality.name.key();
        let id = text(row, 0)?;
        let mut aliases = Vec::new();
        while let Some(k) = key {
            match text(k, 0)?.cmp(id) {
                std::cmp::Ordering::Greater => break,
                // Keys of an id without a row can't exist (foreign key); skip them anyway.
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    let k = text(k, 1)?;
                    if k != name_key {
                        aliases.push(parse_alias(k)?);
                    }
                }
            }
            key = keys.next()?;
        }
        personality.aliases = aliases;
        visit(personality, name_key);
        count += 1;
    }
    Ok(count)
}

/// A text column, borrowed from the row.
fn text<'r>(row: &'r Row<'_>, column: usize) -> Result<&'r str, StoreError> {
    row.get_ref(column)?
        .as_str()
        .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
}

/// How many personalities and how many names and aliases are stored.
pub(crate) fn counts(conn: &Connection) -> Result<(usize, usize), StoreError> {
    let count = |sql: &str| -> Result<usize, StoreError> {
        Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as usize)
    };
    Ok((
        count("SELECT COUNT(*) FROM personalities")?,
        count("SELECT COUNT(*) FROM personality_keys")?,
    ))
}

/// Every personality (or every one of `owner`), by name.
pub(crate) fn list(
    conn: &Connection,
    owner: Option<UserId>,
) -> Result<Vec<Personality>, StoreError> {
    let (sql, owner) = match owner {
        Some(o) => (
            format!("SELECT {COLUMNS} FROM personalities WHERE owner_id = ?1 ORDER BY name COLLATE NOCASE"),
            Some(o.to_string()),
        ),
        None => (format!("SELECT {COLUMNS} FROM personalities ORDER BY name COLLATE NOCASE"), None),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = match &owner {
        Some(o) => stmt
            .query_map([o], read_row)?
            .collect::<Result<Vec<_>, _>>()?,
        None => stmt
            .query_map([], read_row)?
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut personalities: Vec<Personality> = rows.into_iter().collect::<Result<_, _>>()?;
    let mut aliases = all_aliases(conn)?;
    for p in &mut personalities {
        p.aliases = aliases.remove(&p.id.to_string()).unwrap_or_default();
    }
    Ok(personalities)
}

fn aliases_of(conn: &Connection, id: &str) -> Result<Vec<Alias>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key FROM personality_keys WHERE personality_id = ?1 AND kind = 'alias' ORDER BY key",
    )?;
    let keys = stmt.query_map([id], |r| r.get::<_, String>(0))?;
    keys.map(|k| parse_alias(&k?)).collect()
}

fn all_aliases(
    conn: &Connection,
) -> Result<std::collections::HashMap<String, Vec<Alias>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT personality_id, key FROM personality_keys WHERE kind = 'alias' ORDER BY key",
    )?;
    let mut map: std::collections::HashMap<String, Vec<Alias>> = std::collections::HashMap::new();
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (id, key) = row?;
        map.entry(id).or_default().push(parse_alias(&key)?);
    }
    Ok(map)
}

fn parse_alias(key: &str) -> Result<Alias, StoreError> {
    Alias::parse(key).map_err(|e| StoreError::Corrupt(format!("alias {key:?}: {e}")))
}

fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<Personality, StoreError>> {
    let id: String = row.get(0)?;
    let name: String = row.get(1)?;
    let owner: String = row.get(2)?;
    let display_name: String = row.get(3)?;
    let avatar_url: Option<String> = row.get(4)?;
    let prompt: String = row.get(5)?;
    let model: Option<String> = row.get(6)?;
    let version: i64 = row.get(7)?;
    let created_at: String = row.get(8)?;
    let updated_at: String = row.get(9)?;
    let corrupt = |field: &str, e: crate::domain::DomainError| {
        StoreError::Corrupt(format!("personality {id}: {field}: {e}"))
    };
    Ok((|| {
        Ok(Personality::restore(
            PersonalityId::from_uuid(parse_uuid(&id)?),
            PersonalityName::parse(&name).map_err(|e| corrupt("name", e))?,
            owner.parse::<UserId>().map_err(|e| corrupt("owner", e))?,
            Profile {
                display_name: DisplayName::parse(&display_name)
                    .map_err(|e| corrupt("display_name", e))?,
                avatar_url: avatar_url
                    .map(|u| AvatarUrl::parse(&u))
                    .transpose()
                    .map_err(|e| corrupt("avatar_url", e))?,
                prompt: Prompt::parse(&prompt).map_err(|e| corrupt("prompt", e))?,
                model: model
                    .map(|m| ModelName::parse(&m))
                    .transpose()
                    .map_err(|e| corrupt("model", e))?,
            },
            Vec::new(),
            parse_time(&created_at)?,
            parse_time(&updated_at)?,
            version,
        ))
    })())
}
