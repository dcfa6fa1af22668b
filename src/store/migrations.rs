//! Schema migrations, applied in order at start-up; `PRAGMA user_version` records the last.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Each entry moves the schema one version forward. Never edit an entry once released.
const MIGRATIONS: &[&str] = &[
    // 1: personalities, their names and aliases, events, checkpoints, dead letters,
    //    conversation tracking.
    r#"
    CREATE TABLE personalities (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        owner_id     TEXT NOT NULL,
        display_name TEXT NOT NULL,
        avatar_url   TEXT,
        prompt       TEXT NOT NULL,
        model        TEXT,
        version      INTEGER NOT NULL,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX personalities_by_owner ON personalities(owner_id);

    -- Names and aliases share one namespace of normalized keys: the primary key is what
    -- makes "an alias may not equal any other personality's name or alias" hold.
    CREATE TABLE personality_keys (
        key            TEXT PRIMARY KEY,
        personality_id TEXT NOT NULL REFERENCES personalities(id) ON DELETE CASCADE,
        kind           TEXT NOT NULL CHECK (kind IN ('name', 'alias'))
    ) WITHOUT ROWID;
    CREATE INDEX personality_keys_by_personality ON personality_keys(personality_id);

    CREATE TABLE events (
        sequence          INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id          TEXT NOT NULL UNIQUE,
        event_type        TEXT NOT NULL,
        aggregate_id      TEXT NOT NULL,
        aggregate_version INTEGER NOT NULL,
        occurred_at       TEXT NOT NULL,
        actor             TEXT NOT NULL,
        correlation_id    TEXT NOT NULL,
        causation_id      TEXT,
        schema_version    INTEGER NOT NULL,
        payload           TEXT NOT NULL,
        UNIQUE (aggregate_id, aggregate_version)
    );
    CREATE INDEX events_by_correlation ON events(correlation_id);
    CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

    CREATE TABLE subscriber_checkpoints (
        subscriber TEXT PRIMARY KEY,
        sequence   INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE dead_letters (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        subscriber TEXT NOT NULL,
        sequence   INTEGER NOT NULL,
        event_id   TEXT NOT NULL,
        event_type TEXT NOT NULL,
        attempts   INTEGER NOT NULL,
        last_error TEXT NOT NULL,
        parked_at  TEXT NOT NULL,
        UNIQUE (subscriber, sequence)
    );

    CREATE TABLE conversation_messages (
        message_id     TEXT PRIMARY KEY,
        channel_id     TEXT NOT NULL,
        personality_id TEXT NOT NULL,
        created_at     TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX conversation_messages_by_personality ON conversation_messages(personality_id);

    CREATE TABLE active_conversations (
        user_id        TEXT NOT NULL,
        channel_id     TEXT NOT NULL,
        personality_id TEXT NOT NULL,
        last_active_at TEXT NOT NULL,
        PRIMARY KEY (user_id, channel_id)
    ) WITHOUT ROWID;
    CREATE INDEX active_conversations_by_personality ON active_conversations(personality_id);

    CREATE TABLE channel_activations (
        channel_id     TEXT PRIMARY KEY,
        personality_id TEXT NOT NULL,
        activated_by   TEXT NOT NULL,
        activated_at   TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX channel_activations_by_personality ON channel_activations(personality_id);

    CREATE TABLE auto_response_users (
        user_id    TEXT PRIMARY KEY,
        enabled_at TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: servers are the unit of trust. Each personality has a home server (NULL: global,
    //    which every personality made before this was) and an NSFW flag; names and aliases
    //    are unique per scope (a server's id, '' for global), and a global key is kept out
    //    of every server by the store's check on insert.
    r"
    ALTER TABLE personalities ADD COLUMN home_server TEXT;
    ALTER TABLE personalities ADD COLUMN nsfw INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX personalities_by_home_server ON personalities(home_server, owner_id);

    CREATE TABLE personality_keys_by_scope (
        key            TEXT NOT NULL,
        scope          TEXT NOT NULL,
        personality_id TEXT NOT NULL REFERENCES personalities(id) ON DELETE CASCADE,
        kind           TEXT NOT NULL CHECK (kind IN ('name', 'alias')),
        PRIMARY KEY (key, scope)
    ) WITHOUT ROWID;
    INSERT INTO personality_keys_by_scope (key, scope, personality_id, kind)
        SELECT key, '', personality_id, kind FROM personality_keys;
    DROP TABLE personality_keys;
    ALTER TABLE personality_keys_by_scope RENAME TO personality_keys;
    CREATE INDEX personality_keys_by_personality ON personality_keys(personality_id);
    ",
    // 3: each server's settings, as JSON, with the version of its settings events. A server
    //    without a row has the defaults.
    r"
    CREATE TABLE server_settings (
        server_id  TEXT PRIMARY KEY,
        settings   TEXT NOT NULL,
        version    INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;
    ",
    // 4: sampling per personality: its temperature (0–2) and longest answer in tokens; NULL
    //    leaves them to the endpoint and the host's cap, as for every personality before.
    r"
    ALTER TABLE personalities ADD COLUMN temperature REAL;
    ALTER TABLE personalities ADD COLUMN max_tokens INTEGER;
    ",
    // 5: each answer a personality sent: where, whom it answered (the member and their
    //    message), the personality's revision, the model and how long it took. Its Discord
    //    messages are the `conversation_messages` rows naming it (NULL for messages recorded
    //    before this, or not as an answer): a message belongs to at most one answer, so a
    //    column relates them without a second table of message ids.
    r"
    CREATE TABLE answers (
        id             INTEGER PRIMARY KEY,
        channel_id     TEXT NOT NULL,
        server_id      TEXT,
        personality_id TEXT NOT NULL,
        revision       INTEGER NOT NULL,
        member_id      TEXT NOT NULL,
        model          TEXT NOT NULL,
        llm_ms         INTEGER NOT NULL,
        trigger_id     TEXT NOT NULL,
        created_at     TEXT NOT NULL
    );
    CREATE INDEX answers_by_personality ON answers(personality_id);
    CREATE INDEX answers_by_created_at ON answers(created_at);
    ALTER TABLE conversation_messages ADD COLUMN answer_id INTEGER;
    CREATE INDEX conversation_messages_by_answer ON conversation_messages(answer_id);
    ",
    // 6: the keys of a personality in (personality, key) order with their kind, in the
    //    index itself: the start-up load and `aliases_of` tell names from aliases without
    //    reading each key's row.
    r"
    DROP INDEX personality_keys_by_personality;
    CREATE INDEX personality_keys_by_personality ON personality_keys(personality_id, key, kind);
    ",
];

/// The schema version this personae writes (`PRAGMA user_version` after migrating).
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to date. The version is read again and every missing migration
/// applied inside one write transaction (`BEGIN IMMEDIATE`), so processes opening a new file
/// at the same moment wait for each other instead of applying the same migration twice.
pub(crate) fn run(conn: &mut Connection) -> Result<(), StoreError> {
    // Most opens find the schema current and never take the write lock.
    if schema_version(conn)? == MIGRATIONS.len() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = schema_version(&tx)?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::NewerSchema {
            found: current,
            known: MIGRATIONS.len(),
        });
    }
    for sql in MIGRATIONS.iter().skip(current) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)?;
    tx.commit()?;
    Ok(())
}

/// `PRAGMA user_version`: the number of migrations applied.
fn schema_version(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize)
}
