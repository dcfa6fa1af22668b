//! Concurrency: 64 tasks run random commands at once against one application, in a small
//! namespace so that they collide. Afterwards names and aliases are unique, every
//! personality's versions are 1, 2, 3, … in its events, there is exactly one event per
//! successful command, the events reached the bus in sequence order, the caches equal the
//! database and the stored state equals the fold of the events.
//!
//! Default: 64 tasks × 500 commands. `PERSONAE_LONG_TESTS=1`: 64 × 5,000.
//! `PERSONAE_CONCURRENCY_OPS` (commands per task) and `PERSONAE_CONCURRENCY_SEED` override.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use personae::application::{
    PersonalityService, ProfileUpdate, Registration, RequestContext, ServiceError,
};
use personae::cache::{ProfileCache, ProfileInfo};
use personae::domain::{DomainEvent, EventType, PersonalityId};
use personae::events::{handler_fn, EventEnvelope, EventLog, Topic};
use personae::routing::mention::find_mention;
use personae_testkit::plain_index::PlainIndex;
use personae_testkit::{admin, alice, bob, spawn_app};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TASKS: u64 = 64;
const NAMES: usize = 40;
const ALIASES: usize = 60;
const LONG_ENV: &str = "PERSONAE_LONG_TESTS";

fn name(i: usize) -> String {
    format!("Persona{i:02}")
}

/// 60 aliases: most are plain, some have two words, and ten are other personalities' names.
fn alias(j: usize) -> String {
    match j {
        0..=39 => format!("alias-{j}"),
        40..=49 => format!("the {}", j - 40),
        _ => name(j - 50).to_lowercase(),
    }
}

/// The kinds of command, in the order of [`EventType::ALL`]'s counterparts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Update,
    Remove,
    Alias,
    Unalias,
}

impl Kind {
    fn event_type(self) -> EventType {
        match self {
            Kind::Create => EventType::PersonalityCreated,
            Kind::Update => EventType::PersonalityProfileUpdated,
            Kind::Remove => EventType::PersonalityRemoved,
            Kind::Alias => EventType::PersonalityAliasAdded,
            Kind::Unalias => EventType::PersonalityAliasRemoved,
        }
    }
}

const KINDS: [Kind; 5] = [
    Kind::Create,
    Kind::Update,
    Kind::Remove,
    Kind::Alias,
    Kind::Unalias,
];

/// Successful commands per kind, and what went wrong that shouldn't have.
#[derive(Default)]
struct Outcomes {
    succeeded: [AtomicU64; 5],
    refused: AtomicU64,
    conflicts: AtomicU64,
    failures: Mutex<Vec<String>>,
}

fn typed_loosely(rng: &mut StdRng, text: &str) -> String {
    match rng.gen_range(0..4) {
        0 => text.to_uppercase(),
        1 => format!(" @{text} "),
        _ => text.to_owned(),
    }
}

/// A personality to aim at: usually one that exists (read from the cache while the other
/// tasks change it), else any name or alias of the namespace. Returns its aliases too.
fn reference(rng: &mut StdRng, cache: &ProfileCache) -> (String, Vec<String>) {
    let existing = cache.all();
    if !existing.is_empty() && rng.gen_bool(0.6) {
        let p = &existing[rng.gen_range(0..existing.len())];
        let aliases: Vec<String> = p.aliases.iter().map(ToString::to_string).collect();
        let text = if aliases.is_empty() || rng.gen_bool(0.7) {
            p.name.to_string()
        } else {
            aliases[rng.gen_range(0..aliases.len())].clone()
        };
        return (typed_loosely(rng, &text), aliases);
    }
    let text = if rng.gen_bool(0.8) {
        name(rng.gen_range(0..NAMES))
    } else {
        alias(rng.gen_range(0..ALIASES))
    };
    (typed_loosely(rng, &text), Vec::new())
}

async fn one_command(
    service: &PersonalityService,
    cache: &ProfileCache,
    rng: &mut StdRng,
) -> (Kind, Result<(), ServiceError>) {
    let user = match rng.gen_range(0..10) {
        0..=6 => alice(),
        7 => bob(),
        _ => admin(),
    };
    let ctx = RequestContext::new(service.actor_for(user, false))
        .in_server(Some(personae_testkit::home()));
    let kind = match rng.gen_range(0..100) {
        0..=24 => Kind::Create,
        25..=49 => Kind::Alias,
        50..=64 => Kind::Unalias,
        65..=89 => Kind::Update,
        _ => Kind::Remove,
    };
    let result = match kind {
        Kind::Create => {
            let base = name(rng.gen_range(0..NAMES));
            let input = Registration {
                name: typed_loosely(rng, &base).replace('@', ""),
                prompt: Some(format!("prompt {}", rng.gen_range(0..3))),
                aliases: (0..rng.gen_range(0..3))
                    .map(|_| alias(rng.gen_range(0..ALIASES)))
                    .collect(),
                ..Default::default()
            };
            service.register(&ctx, input).await.map(drop)
        }
        Kind::Alias => {
            let (target, new) = (reference(rng, cache).0, alias(rng.gen_range(0..ALIASES)));
            service.add_alias(&ctx, &target, &new).await.map(drop)
        }
        Kind::Unalias => {
            let (target, aliases) = reference(rng, cache);
            let old = if !aliases.is_empty() && rng.gen_bool(0.8) {
                aliases[rng.gen_range(0..aliases.len())].clone()
            } else {
                alias(rng.gen_range(0..ALIASES))
            };
            service.remove_alias(&ctx, &target, &old).await.map(drop)
        }
        Kind::Update => {
            let update = ProfileUpdate {
                display_name: rng
                    .gen_bool(0.5)
                    .then(|| format!("Shown {}", rng.gen_range(0..4))),
                prompt: rng
                    .gen_bool(0.5)
                    .then(|| format!("prompt {}", rng.gen_range(0..3))),
                model: rng
                    .gen_bool(0.3)
                    .then(|| ["gpt-4o", ""][rng.gen_range(0..2)].to_owned()),
                ..Default::default()
            };
            let target = reference(rng, cache).0;
            service
                .update_profile(&ctx, &target, update)
                .await
                .map(drop)
        }
        Kind::Remove => {
            let target = reference(rng, cache).0;
            service.remove(&ctx, &target).await.map(drop)
        }
    };
    (kind, result)
}

fn env_number(var: &str) -> Option<u64> {
    std::env::var(var).ok().and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_random_commands_keep_keys_unique_versions_contiguous_and_caches_equal_to_the_database(
) {
    let long = std::env::var(LONG_ENV).is_ok_and(|v| v == "1");
    let per_task = env_number("PERSONAE_CONCURRENCY_OPS").unwrap_or(if long { 5_000 } else { 500 });
    let seed = env_number("PERSONAE_CONCURRENCY_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    println!("concurrency: seed {seed} (PERSONAE_CONCURRENCY_SEED={seed} repeats the commands)");
    let t = spawn_app().await;
    let app = &t.app;

    // Every event as the bus delivered it, in delivery order.
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&delivered);
    let _probe = app.bus.subscribe(
        Topic::All,
        handler_fn("order-probe", move |e: &EventEnvelope| {
            sink.lock().unwrap().push(e.sequence);
            async { Ok(()) }
        }),
    );

    let outcomes = Arc::new(Outcomes::default());
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let service = Arc::clone(&app.service);
            let cache = Arc::clone(&app.cache);
            let outcomes = Arc::clone(&outcomes);
            tokio::spawn(async move {
                let mut rng =
                    StdRng::seed_from_u64(seed ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                for _ in 0..per_task {
                    let (kind, result) = one_command(&service, &cache, &mut rng).await;
                    let index = KINDS.iter().position(|k| *k == kind).unwrap();
                    match result {
                        Ok(()) => {
                            outcomes.succeeded[index].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(ServiceError::Conflict(_)) => {
                            outcomes.conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.is_user_error() => {
                            outcomes.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => outcomes
                            .failures
                            .lock()
                            .unwrap()
                            .push(format!("{kind:?}: {e}")),
                    }
                }
            })
        })
        .collect();
    let all = futures::future::join_all(tasks);
    let joined = tokio::time::timeout(Duration::from_secs(900), all)
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: the tasks did not finish in 15 minutes"));
    for result in joined {
        result.unwrap_or_else(|e| panic!("seed {seed}: a task panicked: {e}"));
    }
    let elapsed = started.elapsed();
    let failures = outcomes.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "seed {seed}: storage failures: {failures:?}"
    );
    let succeeded: Vec<u64> = outcomes
        .succeeded
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    let total_ok: u64 = succeeded.iter().sum();

    // Names and aliases: unique across all personalities, case-insensitively, and the key
    // table holds exactly the names and aliases of the stored personalities.
    let personalities = app
        .service
        .list(personae::application::Listing::default())
        .await
        .unwrap();
    let mut expected_keys = BTreeSet::new();
    let mut seen = HashSet::new();
    for p in &personalities {
        let keys = std::iter::once((p.name().key(), "name"))
            .chain(p.aliases().iter().map(|a| (a.to_string(), "alias")));
        for (key, kind) in keys {
            assert!(
                seen.insert(key.to_lowercase()),
                "seed {seed}: {key:?} is held twice"
            );
            expected_keys.insert((key, p.id().to_string(), kind.to_owned()));
        }
    }
    let stored_keys: BTreeSet<(String, String, String)> = app
        .db
        .call(|c| {
            let mut stmt = c.prepare("SELECT key, personality_id, kind FROM personality_keys")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap();
    assert_eq!(stored_keys, expected_keys, "seed {seed}: personality_keys");

    // Events: versions 1..=n per personality, one event per successful command, by kind.
    let events = app
        .service
        .events(personae::application::EventFilter::default())
        .await
        .unwrap();
    assert_eq!(
        events.len() as u64,
        total_ok,
        "seed {seed}: one event per successful command"
    );
    for (kind, ok) in KINDS.iter().zip(&succeeded) {
        let stored = events
            .iter()
            .filter(|e| e.event_type() == kind.event_type())
            .count() as u64;
        assert_eq!(stored, *ok, "seed {seed}: {kind:?} events");
    }
    let mut histories: BTreeMap<PersonalityId, Vec<&EventEnvelope>> = BTreeMap::new();
    for e in &events {
        let id = e
            .aggregate_id
            .personality()
            .expect("only personalities' events");
        histories.entry(id).or_default().push(e);
    }
    let live: BTreeMap<PersonalityId, i64> = personalities
        .iter()
        .map(|p| (p.id(), p.version()))
        .collect();
    for (id, history) in &histories {
        let versions: Vec<i64> = history.iter().map(|e| e.aggregate_version).collect();
        let contiguous: Vec<i64> = (1..=history.len() as i64).collect();
        assert_eq!(versions, contiguous, "seed {seed}: versions of {id}");
        assert!(matches!(
            history[0].event,
            DomainEvent::PersonalityCreated { .. }
        ));
        let removed = matches!(
            history.last().unwrap().event,
            DomainEvent::PersonalityRemoved { .. }
        );
        match live.get(id) {
            Some(version) => {
                assert!(!removed, "seed {seed}: {id} is stored but was removed");
                assert_eq!(
                    *version,
                    history.len() as i64,
                    "seed {seed}: version of {id}"
                );
            }
            None => assert!(removed, "seed {seed}: {id} vanished without an event"),
        }
    }
    assert!(
        live.keys().all(|id| histories.contains_key(id)),
        "seed {seed}: a personality without events"
    );

    // The bus saw every event once, in sequence order.
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        *delivered.lock().unwrap(),
        sequences,
        "seed {seed}: events reach the bus once each, in sequence order"
    );

    // The caches equal the database.
    let check_cache = |app: &personae::app::App, when: &str| {
        let mut cached: Vec<ProfileInfo> = app.cache.all().iter().map(|i| (**i).clone()).collect();
        cached.sort_by_key(|i| i.id);
        let mut expected: Vec<ProfileInfo> = personalities.iter().map(ProfileInfo::of).collect();
        expected.sort_by_key(|i| i.id);
        assert_eq!(cached, expected, "seed {seed}: cached profiles {when}");
        let cached_keys: BTreeSet<(String, String)> = app
            .cache
            .keys()
            .into_iter()
            .map(|(_, k, id)| (k, id.to_string()))
            .collect();
        let stored: BTreeSet<(String, String)> = stored_keys
            .iter()
            .map(|(k, id, _)| (k.clone(), id.clone()))
            .collect();
        assert_eq!(cached_keys, stored, "seed {seed}: cached keys {when}");
        // The cache answers the mention parser itself: after all those changes it must find
        // what a plain index of the same keys finds.
        let keys: Vec<(String, PersonalityId)> = app
            .cache
            .keys()
            .into_iter()
            .map(|(_, key, id)| (key, id))
            .collect();
        let index: PlainIndex<PersonalityId> = keys.iter().cloned().collect();
        for (key, id) in keys {
            for suffix in ["", " the 1", ", hi", " alias-1 x"] {
                let message = format!("hey @{key}{suffix}");
                let by_cache = find_mention(&message, &personae_testkit::reachable(&app.cache))
                    .map(|m| (m.target, m.range));
                let by_index = find_mention(&message, &index).map(|m| (m.target, m.range));
                assert_eq!(by_cache, by_index, "seed {seed}: {message:?} {when}");
                if suffix.is_empty() {
                    assert_eq!(
                        by_cache.map(|(t, _)| t),
                        Some(id),
                        "seed {seed}: {message:?}"
                    );
                }
            }
        }
        for p in &personalities {
            let found = app.cache.find(
                Some(personae_testkit::home()),
                &p.name().to_string().to_uppercase(),
            );
            assert_eq!(
                found.map(|i| i.id),
                Some(p.id()),
                "seed {seed}: find {}",
                p.name()
            );
        }
    };
    check_cache(app, "after the run");

    let report = app.service.verify().await.unwrap();
    assert!(
        report.is_ok(),
        "seed {seed}: verify: {:?}",
        report.mismatches
    );
    assert_eq!(app.db.integrity_check().await.unwrap(), "ok");
    assert!(
        app.subscribers
            .wait_caught_up(Duration::from_secs(30))
            .await
            .unwrap(),
        "seed {seed}: durable subscribers caught up"
    );
    let last = sequences.last().copied().unwrap_or(0);
    for status in app.subscribers.statuses() {
        assert_eq!(status.checkpoint, last, "seed {seed}: {status:?}");
    }
    assert!(app.db.dead_letters(None).await.unwrap().is_empty());

    let t = t.restart().await;
    check_cache(&t.app, "after a restart");
    t.app.shutdown().await;

    println!(
        "concurrency: seed {seed}: {TASKS} tasks × {per_task} commands in {elapsed:.1?} \
         ({:.0} commands/s): {total_ok} succeeded {:?}, {} refused, {} conflicts; \
         {} personalities and {} keys at the end",
        (TASKS * per_task) as f64 / elapsed.as_secs_f64(),
        KINDS.iter().zip(&succeeded).collect::<Vec<_>>(),
        outcomes.refused.load(Ordering::Relaxed),
        outcomes.conflicts.load(Ordering::Relaxed),
        personalities.len(),
        stored_keys.len(),
    );
    assert!(
        total_ok > TASKS * per_task / 10,
        "seed {seed}: the workload should do something"
    );
}
