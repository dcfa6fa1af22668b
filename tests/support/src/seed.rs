//! Fills a database quickly for the benchmarks: personalities written exactly as the
//! service writes them (state row, name and alias keys, their `PersonalityCreated` event)
//! but all in one transaction, and bare event streams for catch-up. Shared by
//! `examples/load` and `benches/commands.rs`.
//!
//! The statements are copies of the store's (`src/store/personality_rows.rs` and
//! `src/store/event_rows.rs`): the store keeps them crate-private, and the command-path
//! baseline must run the very same SQL anyway.

use std::path::Path;

use anyhow::Context as _;
use chrono::Utc;
use personae::domain::{
    Alias, DisplayName, DomainEvent, NewPersonality, Personality, PersonalityId, PersonalityName,
    Profile, ProfileField, Prompt, Scope, UserId,
};
use personae::events::SCHEMA_VERSION;
use personae::store::{Database, Synchronous};
use rusqlite::{params, Transaction};

/// The durable subscribers `App::start` registers (`src/handlers/`), whose checkpoints a
/// seeded database sets to its last event, as in a bot that has been running.
pub const DURABLE_SUBSCRIBERS: [&str; 2] = ["conversation-cleanup", "audit"];

pub const INSERT_PERSONALITY: &str =
    "INSERT INTO personalities (id, name, owner_id, display_name, \
     avatar_url, prompt, model, version, created_at, updated_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
/// A key of a global personality (every seeded personality is global, as every one made
/// before personalities had a home server).
pub const INSERT_KEY: &str =
    "INSERT INTO personality_keys (key, scope, personality_id, kind) VALUES (?1, '', ?2, ?3)";
pub const INSERT_EVENT: &str = "INSERT INTO events (event_id, event_type, aggregate_id, \
     aggregate_version, occurred_at, actor, correlation_id, causation_id, schema_version, payload) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
const SAVE_CHECKPOINT: &str =
    "INSERT INTO subscriber_checkpoints (subscriber, sequence, updated_at) \
     VALUES (?1, ?2, ?3) ON CONFLICT(subscriber) DO UPDATE SET sequence = excluded.sequence";

/// The owner every seeded personality has.
pub const OWNER: u64 = 7001;

/// Opens (and migrates) a database file the way the bot does: WAL, synchronous=NORMAL.
pub fn open(path: &Path) -> anyhow::Result<Database> {
    open_with(path, Synchronous::Normal)
}

/// A benchmark database with this `synchronous` setting.
pub fn open_with(path: &Path, synchronous: Synchronous) -> anyhow::Result<Database> {
    Database::open(path, synchronous).context("opening the benchmark database")
}

/// A prompt of exactly `chars` characters of plain prose.
pub fn prompt(chars: usize) -> String {
    const TEXT: &str = "You are a cheerful bard who answers in short rhymes, remembers every \
        traveller's name, and never reveals the ending of a story before it is told. ";
    TEXT.chars().cycle().take(chars).collect()
}

/// The name of the `i`-th seeded personality.
pub fn name(i: usize) -> String {
    format!("seed {i}")
}

/// The `j`-th alias of the `i`-th seeded personality.
pub fn alias(i: usize, j: usize) -> String {
    format!("s{i}a{j}")
}

/// A personality as the service would register it (with its `PersonalityCreated` event
/// still uncommitted).
pub fn registered(name: &str, aliases: &[String], prompt: &str) -> anyhow::Result<Personality> {
    let new = NewPersonality {
        card_extensions: None,
        name: PersonalityName::parse(name)?,
        owner_id: UserId::new(OWNER)?,
        scope: Scope::Global,
        profile: Profile {
            display_name: DisplayName::parse(name)?,
            avatar_url: None,
            prompt: Prompt::parse(prompt)?,
            model: None,
            nsfw: false,
            temperature: None,
            max_tokens: None,
        },
        aliases: aliases
            .iter()
            .map(|a| Alias::parse(a))
            .collect::<Result<_, _>>()?,
    };
    Ok(Personality::register(
        PersonalityId::new(),
        new,
        Utc::now(),
    )?)
}

/// Writes `count` personalities, each with `aliases_each` aliases and a prompt of
/// `prompt_chars` characters, with their events, in one transaction; then moves the durable
/// subscribers' checkpoints to the last event.
pub async fn personalities(
    db: &Database,
    count: usize,
    aliases_each: usize,
    prompt_chars: usize,
) -> anyhow::Result<()> {
    let prompt = prompt(prompt_chars);
    db.call(move |conn| {
        let tx = conn.transaction()?;
        for i in 0..count {
            let aliases: Vec<String> = (0..aliases_each).map(|j| alias(i, j)).collect();
            let mut p = registered(&name(i), &aliases, &prompt)
                .map_err(|e| personae::store::StoreError::Corrupt(e.to_string()))?;
            let events = p.take_uncommitted_events();
            insert_personality(&tx, &p)?;
            for event in &events {
                insert_event(&tx, p.id(), 1, event, &format!("seed-{i}"))?;
            }
        }
        set_checkpoints_to_end(&tx)?;
        tx.commit()?;
        Ok(())
    })
    .await?;
    Ok(())
}

/// The state row and keys of a freshly registered personality.
pub fn insert_personality(tx: &Transaction<'_>, p: &Personality) -> rusqlite::Result<()> {
    let id = p.id().to_string();
    tx.prepare_cached(INSERT_PERSONALITY)?.execute(params![
        id,
        p.name().as_str(),
        p.owner_id().to_string(),
        p.profile().display_name.as_str(),
        Option::<&str>::None,
        p.profile().prompt.as_str(),
        Option::<&str>::None,
        p.version(),
        p.created_at().to_rfc3339(),
        p.updated_at().to_rfc3339(),
    ])?;
    let mut key = tx.prepare_cached(INSERT_KEY)?;
    key.execute(params![p.name().key(), id, "name"])?;
    for a in p.aliases() {
        key.execute(params![a.as_str(), id, "alias"])?;
    }
    Ok(())
}

/// One event row, as `event_rows::append` writes it.
pub fn insert_event(
    tx: &Transaction<'_>,
    aggregate: PersonalityId,
    version: i64,
    event: &DomainEvent,
    correlation_id: &str,
) -> rusqlite::Result<()> {
    let payload = serde_json::to_string(event)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    insert_event_json(tx, aggregate, version, event, &payload, correlation_id)
}

fn insert_event_json(
    tx: &Transaction<'_>,
    aggregate: PersonalityId,
    version: i64,
    event: &DomainEvent,
    payload: &str,
    correlation_id: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(INSERT_EVENT)?.execute(params![
        uuid::Uuid::now_v7().to_string(),
        event.event_type().as_str(),
        aggregate.to_string(),
        version,
        Utc::now().to_rfc3339(),
        format!("user:{OWNER}"),
        correlation_id,
        Option::<&str>::None,
        SCHEMA_VERSION,
        payload,
    ])?;
    Ok(())
}

fn set_checkpoints_to_end(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let last: i64 = tx.query_row("SELECT COALESCE(MAX(sequence), 0) FROM events", [], |r| {
        r.get(0)
    })?;
    for subscriber in DURABLE_SUBSCRIBERS {
        tx.execute(
            SAVE_CHECKPOINT,
            params![subscriber, last, Utc::now().to_rfc3339()],
        )?;
    }
    Ok(())
}

/// Appends `count` events as ten-event histories (created, then alias added, profile
/// updated and alias removed in turn), with prompts of `prompt_chars` characters, in one
/// transaction. Returns the average payload size in bytes. Checkpoints are left alone.
pub async fn event_histories(
    db: &Database,
    count: usize,
    prompt_chars: usize,
) -> anyhow::Result<usize> {
    let mut template = registered("history", &["first".to_owned()], &prompt(prompt_chars))?;
    let second = Alias::parse("second")?;
    let events = [
        template.take_uncommitted_events().remove(0),
        DomainEvent::PersonalityAliasAdded {
            alias: second.clone(),
        },
        DomainEvent::PersonalityProfileUpdated {
            changed: vec![ProfileField::Prompt],
            profile: template.profile().clone(),
        },
        DomainEvent::PersonalityAliasRemoved { alias: second },
    ];
    let payloads = events
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    let bytes = db
        .call(move |conn| {
            let mut bytes = 0usize;
            let tx = conn.transaction()?;
            let mut aggregate = PersonalityId::new();
            for n in 0..count {
                let version = (n % 10) as i64 + 1;
                let kind = if version == 1 {
                    aggregate = PersonalityId::new();
                    0
                } else {
                    1 + (version as usize - 2) % 3
                };
                bytes += payloads[kind].len();
                let correlation = format!("history-{n}");
                insert_event_json(
                    &tx,
                    aggregate,
                    version,
                    &events[kind],
                    &payloads[kind],
                    &correlation,
                )?;
            }
            tx.commit()?;
            Ok(bytes)
        })
        .await?;
    Ok(bytes / count.max(1))
}
