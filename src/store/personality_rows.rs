//! Current state of every personality, and the namespace of names and aliases.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::event_rows::{parse_time, parse_uuid};
use super::StoreError;
use crate::application::{Creator, EventFilter, KeyHolder, Listing, Removed};
use crate::domain::{
    lookup_key, AggregateId, Alias, AvatarUrl, DisplayName, DomainEvent, MaxTokens, ModelName,
    Personality, PersonalityId, PersonalityName, Profile, Prompt, Scope, ServerId,
    StoredPersonality, Temperature, UserId,
};

macro_rules! columns {
    () => {
        "id, name, owner_id, display_name, avatar_url, prompt, model, version, created_at, \
         updated_at, home_server, nsfw, temperature, max_tokens"
    };
}

/// The `scope` column of a key: the home server's id, '' for a global personality.
fn scope_column(scope: Scope) -> String {
    scope.server().map(|s| s.to_string()).unwrap_or_default()
}

const COLUMNS: &str = columns!();

/// Writes the effect of `events` (already applied to `personality`) inside the caller's
/// transaction. `expected_version` is the version the caller loaded: a row at any other
/// version means someone else changed it first. A new personality's `creator` is held to
/// its home server's settings.
pub(crate) fn save<'a>(
    tx: &Connection,
    personality: &Personality,
    expected_version: i64,
    creator: Option<Creator>,
    events: impl IntoIterator<Item = &'a DomainEvent>,
) -> Result<(), StoreError> {
    let id = personality.id().to_string();
    let scope = personality.scope();
    let mut events = events.into_iter().peekable();
    let restoring = matches!(events.peek(), Some(DomainEvent::PersonalityRestored { .. }));
    if expected_version > 0 {
        // Checked before anything is written: keys of a stale or removed personality must
        // not be touched. A restored one has no row, and its last event is the removal.
        let stored: Option<i64> = tx
            .prepare_cached("SELECT version FROM personalities WHERE id = ?1")?
            .query_row([&id], |r| r.get(0))
            .optional()?;
        let current = match stored {
            None if restoring => Some(super::event_rows::last_version(tx, &id)?),
            _ if restoring => None,
            stored => stored,
        };
        if current != Some(expected_version) {
            return Err(StoreError::Conflict);
        }
    }
    for event in events {
        match event {
            DomainEvent::PersonalityCreated {
                name,
                aliases,
                scope,
                owner_id,
                ..
            }
            | DomainEvent::PersonalityRestored {
                name,
                aliases,
                scope,
                owner_id,
                ..
            } => {
                if let (Some(creator), Scope::Server(server)) = (creator, scope) {
                    check_creator(tx, creator, *owner_id, *server)?;
                }
                insert_row(tx, personality)?;
                insert_key(tx, &name.key(), &id, "name", *scope)?;
                for alias in aliases {
                    insert_key(tx, alias.as_str(), &id, "alias", *scope)?;
                }
            }
            DomainEvent::PersonalityAliasAdded { alias } => {
                insert_key(tx, alias.as_str(), &id, "alias", scope)?;
            }
            DomainEvent::PersonalityMadeGlobal { .. } => make_keys_global(tx, &id)?,
            DomainEvent::PersonalityAliasRemoved { alias } => {
                tx.prepare_cached(
                    "DELETE FROM personality_keys WHERE key = ?1 AND personality_id = ?2",
                )?
                .execute(params![alias.as_str(), id])?;
            }
            // A server's settings are stored by `settings_rows`, never with a personality.
            DomainEvent::PersonalityProfileUpdated { .. }
            | DomainEvent::ServerSettingsChanged { .. } => {}
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
    // A restore inserted the row as it is now.
    if expected_version > 0 && !restoring {
        let updated = tx
            .prepare_cached(
                "UPDATE personalities SET display_name = ?1, avatar_url = ?2, prompt = ?3, model = ?4, \
                 version = ?5, updated_at = ?6, home_server = ?9, nsfw = ?10, \
                 temperature = ?11, max_tokens = ?12 \
                 WHERE id = ?7 AND version = ?8",
            )?
            .execute(params![
                personality.profile().display_name.as_str(),
                personality.profile().avatar_url.as_ref().map(AvatarUrl::as_str),
                personality.profile().prompt.as_str(),
                personality.profile().model.as_ref().map(ModelName::as_str),
                personality.version(),
                personality.updated_at().to_rfc3339(),
                id,
                expected_version,
                scope.server().map(|s| s.to_string()),
                personality.profile().nsfw,
                personality.profile().temperature.map(f64::from),
                personality.profile().max_tokens.map(u32::from),
            ])?;
        if updated != 1 {
            return Err(StoreError::Conflict);
        }
    }
    Ok(())
}

fn insert_row(tx: &Connection, p: &Personality) -> Result<(), StoreError> {
    tx.prepare_cached(concat!(
        "INSERT INTO personalities (",
        columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    ))?
    .execute(params![
        p.id().to_string(),
        p.name().as_str(),
        p.owner_id().to_string(),
        p.profile().display_name.as_str(),
        p.profile().avatar_url.as_ref().map(AvatarUrl::as_str),
        p.profile().prompt.as_str(),
        p.profile().model.as_ref().map(ModelName::as_str),
        p.version(),
        p.created_at().to_rfc3339(),
        p.updated_at().to_rfc3339(),
        p.scope().server().map(|s| s.to_string()),
        p.profile().nsfw,
        p.profile().temperature.map(f64::from),
        p.profile().max_tokens.map(u32::from),
    ])?;
    Ok(())
}

/// Refuses a new personality in `server` that the server's settings don't let `creator`
/// make: members when only managers may create, and an `owner` who has as many there as a
/// member may.
fn check_creator(
    tx: &Connection,
    creator: Creator,
    owner: UserId,
    server: ServerId,
) -> Result<(), StoreError> {
    let settings = super::settings_rows::get(tx, server)?.settings;
    if creator == Creator::Member && !settings.members_may_create {
        return Err(StoreError::CreationClosed);
    }
    let limit = settings.member_limit.get();
    let owned: i64 = tx
        .prepare_cached(
            "SELECT COUNT(*) FROM personalities WHERE home_server = ?1 AND owner_id = ?2",
        )?
        .query_row(params![server.to_string(), owner.to_string()], |r| r.get(0))?;
    if usize::try_from(owned).unwrap_or(usize::MAX) >= limit {
        return Err(StoreError::OwnerLimit(limit));
    }
    Ok(())
}

/// Adds a key of personality `id` in `scope`; refuses one that another personality holds
/// where it would clash: in the same server or globally for a server's key, anywhere for a
/// global key (a global name is reserved in every server).
fn insert_key(
    tx: &Connection,
    key: &str,
    id: &str,
    kind: &str,
    scope: Scope,
) -> Result<(), StoreError> {
    refuse_clash(tx, key, id, scope)?;
    tx.prepare_cached(
        "INSERT INTO personality_keys (key, scope, personality_id, kind) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![key, scope_column(scope), id, kind])?;
    Ok(())
}

/// Fails with [`StoreError::KeyTaken`] when another personality holds `key` where a key of
/// `scope` would clash with it.
fn refuse_clash(tx: &Connection, key: &str, id: &str, scope: Scope) -> Result<(), StoreError> {
    match holder(tx, key, id, scope)? {
        Some(holder) => Err(StoreError::KeyTaken {
            key: key.to_owned(),
            holder,
        }),
        None => Ok(()),
    }
}

/// The personality other than `id` that holds `key` where a key of `scope` would clash
/// with it, if any.
fn holder(
    conn: &Connection,
    key: &str,
    id: &str,
    scope: Scope,
) -> Result<Option<KeyHolder>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT p.name, k.kind, k.scope FROM personality_keys k \
             JOIN personalities p ON p.id = k.personality_id \
             WHERE k.key = ?1 AND k.personality_id != ?2 AND (?3 = '' OR k.scope IN (?3, '')) \
             LIMIT 1",
        )?
        .query_row(params![key, id, scope_column(scope)], |r| {
            Ok(KeyHolder {
                personality_name: r.get(0)?,
                is_name: r.get::<_, String>(1)? == "name",
                server: r.get::<_, String>(2)?.parse().ok(),
            })
        })
        .optional()?)
}

/// The latest removal, among `server`'s personalities and the global ones (the global ones
/// only for `None`), of one whose name had `key` and that was not restored since: the
/// personality folded from its events, and who holds its keys now.
pub(crate) fn find_removed(
    conn: &Connection,
    server: Option<ServerId>,
    key: &str,
) -> Result<Option<Removed>, StoreError> {
    // Removals are few beside the other events, and a restore is rare: reading them all
    // newest first spares a table (and a migration) for removed names. Only the name of
    // each is parsed; a candidate's whole history only when its name matches.
    let mut removals = conn.prepare_cached(
        "SELECT aggregate_id, aggregate_version, json_extract(payload, '$.payload.name') \
         FROM events WHERE event_type = 'PersonalityRemoved' ORDER BY sequence DESC",
    )?;
    let mut rows = removals.query([])?;
    while let Some(row) = rows.next()? {
        let name: String = row.get(2)?;
        if lookup_key(&name) != key {
            continue;
        }
        let aggregate_id: String = row.get(0)?;
        let version: i64 = row.get(1)?;
        if super::event_rows::last_version(conn, &aggregate_id)? != version {
            continue; // restored since
        }
        let aggregate: AggregateId = aggregate_id
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("event of {aggregate_id}: {e}")))?;
        let Some(id) = aggregate.personality() else {
            continue;
        };
        let filter = EventFilter {
            aggregate_id: Some(aggregate),
            ..EventFilter::default()
        };
        let history = super::event_rows::list(conn, &filter)?;
        let Some(personality) =
            Personality::replay(id, history.iter().map(|e| (&e.event, e.occurred_at)))
        else {
            continue;
        };
        let scope = personality.scope();
        if !(scope.is_global() || scope.server() == server) {
            continue;
        }
        let name_holder = holder(conn, &personality.name().key(), &aggregate_id, scope)?;
        let mut taken_aliases = Vec::new();
        for alias in personality.aliases() {
            if holder(conn, alias.as_str(), &aggregate_id, scope)?.is_some() {
                taken_aliases.push(alias.clone());
            }
        }
        return Ok(Some(Removed {
            personality,
            name_holder,
            taken_aliases,
        }));
    }
    Ok(None)
}

/// Moves every key of personality `id` to the global scope, refusing a key that any other
/// personality, in any server, holds.
fn make_keys_global(tx: &Connection, id: &str) -> Result<(), StoreError> {
    let keys = tx
        .prepare_cached("SELECT key FROM personality_keys WHERE personality_id = ?1")?
        .query_map([id], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for key in &keys {
        refuse_clash(tx, key, id, Scope::Global)?;
    }
    tx.prepare_cached("UPDATE personality_keys SET scope = '' WHERE personality_id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The personality whose name or alias normalizes to `key`, among those usable in
/// `server` (its own and the global ones); only the global ones for `None`.
pub(crate) fn find_by_key(
    conn: &Connection,
    server: Option<ServerId>,
    key: &str,
) -> Result<Option<Personality>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT personality_id FROM personality_keys WHERE key = ?1 AND scope IN (?2, '') \
             ORDER BY scope DESC LIMIT 1",
        )?
        .query_row(params![key, scope_column(Scope::from(server))], |r| {
            r.get(0)
        })
        .optional()?;
    match id {
        Some(id) => get(conn, &id),
        None => Ok(None),
    }
}

/// The personality with this id.
pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<Personality>, StoreError> {
    let row = conn
        .prepare_cached(concat!(
            "SELECT ",
            columns!(),
            " FROM personalities WHERE id = ?1"
        ))?
        .query_row([id], read_row)
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let mut stored = row?;
    stored.aliases = aliases_of(conn, id)?;
    Ok(Some(Personality::from_stored(stored)))
}

/// Hands every stored personality to `visit`, one at a time and keeping none (a start-up
/// load of many personalities holds each once, in the cache). Returns how many there were.
pub(crate) fn for_each(
    conn: &Connection,
    mut visit: impl FnMut(Personality),
) -> Result<usize, StoreError> {
    // Both in id order, merged as they stream: no map of every alias.
    let mut rows_stmt =
        conn.prepare(&format!("SELECT {COLUMNS} FROM personalities ORDER BY id"))?;
    let mut aliases_stmt = conn.prepare(
        "SELECT personality_id, key FROM personality_keys WHERE kind = 'alias' \
         ORDER BY personality_id, key",
    )?;
    let mut rows = rows_stmt.query([])?;
    let mut aliases = aliases_stmt.query([])?;
    let mut alias = aliases.next()?;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let mut stored = Fields::of(row)?.parse()?;
        let id = stored.id.to_string();
        while let Some(a) = alias {
            let owner = str_at(a, 0)?;
            if owner > id.as_str() {
                break;
            }
            // Keys of an id without a row can't exist (foreign key); skip them anyway.
            if owner == id {
                stored.aliases.push(parse_alias(str_at(a, 1)?)?);
            }
            alias = aliases.next()?;
        }
        visit(Personality::from_stored(stored));
        count += 1;
    }
    Ok(count)
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

/// The personalities `listing` asks for, by name.
pub(crate) fn list(conn: &Connection, listing: &Listing) -> Result<Vec<Personality>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM personalities \
         WHERE (?1 IS NULL OR owner_id = ?1) \
           AND (?2 IS NULL OR home_server = ?2 OR (?3 AND home_server IS NULL)) \
         ORDER BY name COLLATE NOCASE"
    ))?;
    let (server, globals) = match listing.visible_in {
        Some(visible) => (Some(visible.server.to_string()), visible.with_globals),
        None => (None, true),
    };
    let rows = stmt
        .query_map(
            params![listing.owner.map(|o| o.to_string()), server, globals],
            read_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut aliases = all_aliases(conn)?;
    rows.into_iter()
        .map(|row| {
            let mut stored = row?;
            stored.aliases = aliases.remove(&stored.id.to_string()).unwrap_or_default();
            Ok(Personality::from_stored(stored))
        })
        .collect()
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

fn read_row(row: &Row<'_>) -> rusqlite::Result<Result<StoredPersonality, StoreError>> {
    Ok(Fields::of(row)?.parse())
}

/// The columns of a personality row, borrowed from SQLite's buffers until the value
/// objects make their own copies.
struct Fields<'a> {
    id: &'a str,
    name: &'a str,
    owner: &'a str,
    display_name: &'a str,
    avatar_url: Option<&'a str>,
    prompt: &'a str,
    model: Option<&'a str>,
    version: i64,
    created_at: &'a str,
    updated_at: &'a str,
    home_server: Option<&'a str>,
    nsfw: bool,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
}

impl<'a> Fields<'a> {
    /// The columns of a row selected with `COLUMNS`.
    fn of(row: &'a Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: str_at(row, 0)?,
            name: str_at(row, 1)?,
            owner: str_at(row, 2)?,
            display_name: str_at(row, 3)?,
            avatar_url: optional_str_at(row, 4)?,
            prompt: str_at(row, 5)?,
            model: optional_str_at(row, 6)?,
            version: row.get(7)?,
            created_at: str_at(row, 8)?,
            updated_at: str_at(row, 9)?,
            home_server: optional_str_at(row, 10)?,
            nsfw: row.get(11)?,
            temperature: row.get(12)?,
            max_tokens: row.get(13)?,
        })
    }

    /// The personality, without aliases; every value checked as when it was written.
    fn parse(&self) -> Result<StoredPersonality, StoreError> {
        let id = self.id;
        let corrupt = |field: &str, e: crate::domain::DomainError| {
            StoreError::Corrupt(format!("personality {id}: {field}: {e}"))
        };
        Ok(StoredPersonality {
            id: PersonalityId::from_uuid(parse_uuid(id)?),
            name: PersonalityName::parse(self.name).map_err(|e| corrupt("name", e))?,
            owner_id: self
                .owner
                .parse::<UserId>()
                .map_err(|e| corrupt("owner", e))?,
            scope: self
                .home_server
                .map(str::parse::<ServerId>)
                .transpose()
                .map_err(|e| corrupt("home_server", e))?
                .into(),
            profile: Profile {
                display_name: DisplayName::parse(self.display_name)
                    .map_err(|e| corrupt("display_name", e))?,
                avatar_url: self
                    .avatar_url
                    .map(AvatarUrl::parse)
                    .transpose()
                    .map_err(|e| corrupt("avatar_url", e))?,
                prompt: Prompt::parse(self.prompt).map_err(|e| corrupt("prompt", e))?,
                model: self
                    .model
                    .map(ModelName::parse)
                    .transpose()
                    .map_err(|e| corrupt("model", e))?,
                nsfw: self.nsfw,
                temperature: self
                    .temperature
                    .map(Temperature::try_from)
                    .transpose()
                    .map_err(|e| corrupt("temperature", e))?,
                max_tokens: self
                    .max_tokens
                    .map(MaxTokens::try_from)
                    .transpose()
                    .map_err(|e| corrupt("max_tokens", e))?,
            },
            aliases: Vec::new(),
            created_at: parse_time(self.created_at)?,
            updated_at: parse_time(self.updated_at)?,
            version: self.version,
        })
    }
}

/// A text column, borrowed from the row; any other type fails as `Row::get` would.
fn str_at<'r>(row: &'r Row<'_>, column: usize) -> rusqlite::Result<&'r str> {
    let value = row.get_ref(column)?;
    value.as_str().map_err(|_| wrong_type(row, column, value))
}

/// A text column that may be NULL.
fn optional_str_at<'r>(row: &'r Row<'_>, column: usize) -> rusqlite::Result<Option<&'r str>> {
    let value = row.get_ref(column)?;
    value
        .as_str_or_null()
        .map_err(|_| wrong_type(row, column, value))
}

fn wrong_type(
    row: &Row<'_>,
    column: usize,
    value: rusqlite::types::ValueRef<'_>,
) -> rusqlite::Error {
    let name = row
        .as_ref()
        .column_name(column)
        .map_or_else(|_| String::new(), str::to_owned);
    rusqlite::Error::InvalidColumnType(column, name, value.data_type())
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::NewPersonality;
    use crate::store::{Database, Synchronous};

    fn personality(name: &str, aliases: &[&str]) -> Personality {
        let new = NewPersonality {
            card_extensions: None,
            name: PersonalityName::parse(name).unwrap(),
            owner_id: UserId::new(7).unwrap(),
            scope: Scope::Global,
            profile: Profile {
                display_name: DisplayName::parse("Someone").unwrap(),
                avatar_url: Some(AvatarUrl::parse("https://example.com/a.png").unwrap()),
                prompt: Prompt::parse("Be kind.\nBe brief.").unwrap(),
                model: None,
                nsfw: false,
                temperature: None,
                max_tokens: None,
            },
            aliases: aliases.iter().map(|a| Alias::parse(a).unwrap()).collect(),
        };
        Personality::register(PersonalityId::new(), new, Utc::now()).unwrap()
    }

    #[tokio::test]
    async fn every_stored_personality_streams_back_as_listed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("rows.db"), Synchronous::Normal).unwrap();
        let stored = vec![
            personality("Aria", &["bard", "the singer"]),
            personality("Ünïcode Name", &["ünï"]),
            personality("Plain", &[]),
        ];
        let to_save = stored.clone();
        db.call(move |conn| {
            let tx = conn.transaction()?;
            for mut p in to_save {
                let events = p.take_uncommitted_events();
                save(&tx, &p, 0, None, &events)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();
        let (listed, streamed) = db
            .call(|conn| {
                let listed = list(conn, &Listing::default())?;
                let mut streamed = Vec::new();
                let count = for_each(conn, |p| streamed.push(p))?;
                assert_eq!(count, streamed.len());
                Ok((listed, streamed))
            })
            .await
            .unwrap();
        let by_id = |mut v: Vec<Personality>| {
            v.sort_by_key(|p| p.id());
            v
        };
        assert_eq!(by_id(streamed), by_id(listed.clone()));
        assert_eq!(listed.len(), stored.len());
        assert_eq!(counts_of(&db).await, (3, 3 + 3));
    }

    async fn counts_of(db: &Database) -> (usize, usize) {
        db.call(|conn| counts(conn)).await.unwrap()
    }
}
