//! The command path through the service, and its baseline. Shared by `examples/load`
//! (`commands`: throughput, percentiles) and `benches/commands.rs` (criterion).
//!
//! One cycle is four commands by a bot admin on a fresh global personality: register (one
//! alias, 500-character prompt) → add an alias → update the prompt → remove. The store
//! keeps its size.
//!
//! The baseline runs the bare SQL those four commands execute, statement for statement, in
//! the same IMMEDIATE transactions, on a connection opened the same way (WAL,
//! synchronous=NORMAL, the store's statement cache), and after a removal the transaction
//! of the conversation-cleanup handler (its four deletes). The baseline's inputs (ids,
//! times, event payloads) are prepared before the clock starts: what is left is SQLite's
//! work.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use personae::app::App;
use personae::application::{Actor, ProfileUpdate, Registration, RequestContext};
use personae::config::{Config, LogFormat};
use personae::domain::{Alias, DomainEvent, ProfileField, UserId};
use personae::store::{Database, Synchronous};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::seed;

/// Which command of a cycle.
pub const COMMANDS: [&str; 4] = ["register", "alias", "update", "remove"];

/// A database seeded with `size` personalities (3 aliases, 500-character prompts each).
pub async fn seeded(
    dir: &Path,
    file: &str,
    size: usize,
    synchronous: Synchronous,
) -> anyhow::Result<Database> {
    let db = seed::open_with(&dir.join(file), synchronous)?;
    seed::personalities(&db, size, 3, 500).await?;
    Ok(db)
}

/// The application over a database, as `personae run` builds it (handlers included).
pub async fn app(db: Database, synchronous: Synchronous) -> anyhow::Result<Arc<App>> {
    let config = Config {
        database_path: db.path().to_owned(),
        database_synchronous: synchronous,
        admin_ids: std::collections::HashSet::default(),
        log_format: LogFormat::Pretty,
        handler_timeout: personae::events::DEFAULT_HANDLER_TIMEOUT,
        allowed_models: Vec::new(),
        max_tokens: 1024,
    };
    let app = App::start_with_database(&config, db).await?;
    Ok(Arc::new(app))
}

fn cycle_name(i: u64) -> String {
    format!("bench {i}")
}

fn first_alias(i: u64) -> String {
    format!("b{i}x")
}

fn second_alias(i: u64) -> String {
    format!("b{i}y")
}

fn updated_prompt() -> String {
    seed::prompt(499) + "!"
}

/// Runs cycle `i` through the service; `times` gets each command's latency.
pub async fn service_cycle(app: &App, i: u64, times: &mut [Duration; 4]) -> anyhow::Result<()> {
    let service = &app.service;
    let actor = Actor::User {
        id: UserId::new(seed::OWNER)?,
        admin: true,
        server_manager: false,
    };
    // Interaction ids are snowflakes: unique and increasing.
    let ctx = |n: u64| RequestContext::interaction(actor.clone(), 1_000_000_000 + i * 4 + n);
    let name = cycle_name(i);

    let start = Instant::now();
    service
        .register(
            &ctx(0),
            Registration {
                name: name.clone(),
                global: true,
                prompt: Some(seed::prompt(500)),
                aliases: vec![first_alias(i)],
                ..Default::default()
            },
        )
        .await?;
    let registered = Instant::now();
    service.add_alias(&ctx(1), &name, &second_alias(i)).await?;
    let aliased = Instant::now();
    service
        .update_profile(
            &ctx(2),
            &name,
            ProfileUpdate {
                prompt: Some(updated_prompt()),
                ..Default::default()
            },
        )
        .await?;
    let updated = Instant::now();
    service.remove(&ctx(3), &name).await?;
    let removed = Instant::now();
    *times = [
        registered - start,
        aliased - registered,
        updated - aliased,
        removed - updated,
    ];
    Ok(())
}

/// Everything the baseline binds for one cycle, made before the clock starts.
pub struct BaselineInput {
    id: String,
    name: String,
    name_key: String,
    alias1: String,
    alias2: String,
    prompt: String,
    new_prompt: String,
    owner: String,
    now: String,
    event_ids: [String; 4],
    payloads: [String; 4],
    correlations: [String; 4],
}

impl BaselineInput {
    /// The inputs of cycle `i`.
    pub fn new(i: u64) -> anyhow::Result<Self> {
        let name = cycle_name(i);
        let mut p = seed::registered(&name, &[first_alias(i)], &seed::prompt(500))?;
        let created = p.take_uncommitted_events().remove(0);
        let alias2 = Alias::parse(&second_alias(i))?;
        let mut profile = p.profile().clone();
        profile.prompt = personae::domain::Prompt::parse(&updated_prompt())?;
        let events = [
            created,
            DomainEvent::PersonalityAliasAdded {
                alias: alias2.clone(),
            },
            DomainEvent::PersonalityProfileUpdated {
                changed: vec![ProfileField::Prompt],
                profile: profile.clone(),
            },
            DomainEvent::PersonalityRemoved {
                name: p.name().clone(),
                display_name: p.profile().display_name.clone(),
                aliases: vec![Alias::parse(&first_alias(i))?, alias2.clone()],
            },
        ];
        let json = |e: &DomainEvent| serde_json::to_string(e);
        Ok(Self {
            id: p.id().to_string(),
            name_key: p.name().key(),
            name,
            alias1: first_alias(i),
            alias2: alias2.as_str().to_owned(),
            prompt: p.profile().prompt.as_str().to_owned(),
            new_prompt: profile.prompt.as_str().to_owned(),
            owner: seed::OWNER.to_string(),
            now: Utc::now().to_rfc3339(),
            event_ids: std::array::from_fn(|_| uuid::Uuid::now_v7().to_string()),
            payloads: [
                json(&events[0])?,
                json(&events[1])?,
                json(&events[2])?,
                json(&events[3])?,
            ],
            correlations: std::array::from_fn(|n| (1_000_000_000 + i * 4 + n as u64).to_string()),
        })
    }
}

const KEY_OWNER: &str = "SELECT k.personality_id, p.name, k.kind FROM personality_keys k \
     JOIN personalities p ON p.id = k.personality_id WHERE k.key = ?1";
const FIND_KEY: &str =
    "SELECT personality_id FROM personality_keys WHERE key = ?1 AND scope IN ('', '')";
const GET_ROW: &str = "SELECT id, name, owner_id, display_name, avatar_url, prompt, model, \
     version, created_at, updated_at, home_server, nsfw FROM personalities WHERE id = ?1";
const ALIASES_OF: &str =
    "SELECT key FROM personality_keys WHERE personality_id = ?1 AND kind = 'alias' ORDER BY key";
const UPDATE_ROW: &str =
    "UPDATE personalities SET display_name = ?1, avatar_url = ?2, prompt = ?3, model = ?4, \
     version = ?5, updated_at = ?6, home_server = NULL, nsfw = 0 WHERE id = ?7 AND version = ?8";
const DELETE_ROW: &str = "DELETE FROM personalities WHERE id = ?1 AND version = ?2";

fn key_owner(conn: &Connection, key: &str) -> rusqlite::Result<Option<(String, String, String)>> {
    conn.prepare_cached(KEY_OWNER)?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
}

/// What `find_by_key` reads: the key, the row (every column), the aliases.
fn load(conn: &Connection, key: &str) -> rusqlite::Result<()> {
    let id: String = conn
        .prepare_cached(FIND_KEY)?
        .query_row([key], |r| r.get(0))?;
    let row: (String, String, String, String, Option<String>, String) =
        conn.prepare_cached(GET_ROW)?.query_row([&id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?;
    std::hint::black_box(row);
    let mut stmt = conn.prepare_cached(ALIASES_OF)?;
    let aliases: Vec<String> = stmt
        .query_map([&id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    std::hint::black_box(aliases);
    Ok(())
}

fn event(
    conn: &Connection,
    input: &BaselineInput,
    n: usize,
    event_type: &str,
    version: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(seed::INSERT_EVENT)?.execute(params![
        input.event_ids[n],
        event_type,
        input.id,
        version,
        input.now,
        format!("user:{}", input.owner),
        input.correlations[n],
        input.correlations[n],
        personae::events::SCHEMA_VERSION,
        input.payloads[n],
    ])?;
    Ok(())
}

fn immediate<T>(
    conn: &mut Connection,
    work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let result = work(&tx)?;
    tx.commit()?;
    Ok(result)
}

/// Runs the bare SQL of cycle `input` on `conn`; `times` gets each command's latency.
pub fn baseline_cycle(
    conn: &mut Connection,
    input: &BaselineInput,
    times: &mut [Duration; 4],
) -> rusqlite::Result<()> {
    for (command, time) in times.iter_mut().enumerate() {
        let start = Instant::now();
        baseline_command(conn, input, command)?;
        *time = start.elapsed();
    }
    Ok(())
}

/// Runs command `command` (an index into [`COMMANDS`]) of cycle `input` on `conn`: the bare
/// SQL of that command, in its IMMEDIATE transaction.
pub fn baseline_command(
    conn: &mut Connection,
    input: &BaselineInput,
    command: usize,
) -> rusqlite::Result<()> {
    immediate(conn, |tx| baseline_statements(tx, input, command))?;
    if command == 3 {
        // The conversation-cleanup handler's transaction after the removal.
        immediate(conn, |tx| {
            for sql in CLEANUP {
                tx.prepare_cached(sql)?.execute([&input.id])?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// What the conversation-cleanup handler deletes after a removal.
const CLEANUP: [&str; 4] = [
    "DELETE FROM conversation_messages WHERE personality_id = ?1",
    "DELETE FROM active_conversations WHERE personality_id = ?1",
    "DELETE FROM channel_activations WHERE personality_id = ?1",
    "DELETE FROM answers WHERE personality_id = ?1",
];

/// The statements of command `command` of cycle `input`, inside a transaction the caller
/// opened.
pub fn baseline_statements(
    tx: &Connection,
    input: &BaselineInput,
    command: usize,
) -> rusqlite::Result<()> {
    match command {
        0 => {
            assert!(key_owner(tx, &input.name_key)?.is_none());
            assert!(key_owner(tx, &input.alias1)?.is_none());
            tx.prepare_cached(seed::INSERT_PERSONALITY)?
                .execute(params![
                    input.id,
                    input.name,
                    input.owner,
                    input.name,
                    Option::<&str>::None,
                    input.prompt,
                    Option::<&str>::None,
                    1,
                    input.now,
                    input.now,
                ])?;
            let mut key = tx.prepare_cached(seed::INSERT_KEY)?;
            key.execute(params![input.name_key, input.id, "name"])?;
            key.execute(params![input.alias1, input.id, "alias"])?;
            event(tx, input, 0, "PersonalityCreated", 1)
        }
        1 => {
            load(tx, &input.name_key)?;
            assert!(key_owner(tx, &input.alias2)?.is_none());
            tx.prepare_cached(seed::INSERT_KEY)?.execute(params![
                input.alias2,
                input.id,
                "alias"
            ])?;
            update_row(tx, input, &input.prompt, 2)?;
            event(tx, input, 1, "PersonalityAliasAdded", 2)
        }
        2 => {
            load(tx, &input.name_key)?;
            update_row(tx, input, &input.new_prompt, 3)?;
            event(tx, input, 2, "PersonalityProfileUpdated", 3)
        }
        3 => {
            load(tx, &input.name_key)?;
            let deleted = tx
                .prepare_cached(DELETE_ROW)?
                .execute(params![input.id, 3])?;
            assert_eq!(deleted, 1);
            event(tx, input, 3, "PersonalityRemoved", 4)
        }
        other => panic!("a cycle has {} commands, not {}", COMMANDS.len(), other + 1),
    }
}

fn update_row(
    tx: &Connection,
    input: &BaselineInput,
    prompt: &str,
    version: i64,
) -> rusqlite::Result<()> {
    let updated = tx.prepare_cached(UPDATE_ROW)?.execute(params![
        input.name,
        Option::<&str>::None,
        prompt,
        Option::<&str>::None,
        version,
        input.now,
        input.id,
        version - 1,
    ])?;
    assert_eq!(updated, 1);
    Ok(())
}
