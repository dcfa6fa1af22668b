//! Crash consistency: a seeded random workload (create, alias, unalias, update, remove) runs
//! in a child process that is killed with SIGKILL at random moments. After every kill the
//! database must pass `PRAGMA integrity_check`, its stored state must equal the fold of its
//! events, every durable subscriber must catch up to the last committed event, and the state
//! must equal what a model built from the acknowledged operations predicts (plus, perhaps,
//! the one operation that was in flight when the child died). Then the child is started again
//! on the same database and the workload goes on.
//!
//! The child prints `TRY <n> <op as json>` before each operation and `ACK <n>` or
//! `NACK <n> <user|storage> <reason>` after it; a refused operation must change nothing.
//!
//! Default: 5,000 operations and 50 kills. `PERSONAE_LONG_TESTS=1`: 50,000 operations and
//! 500 kills (bounded to 15 minutes). `PERSONAE_CRASH_OPS`, `PERSONAE_CRASH_KILLS` and
//! `PERSONAE_CRASH_SEED` override the figures and the seed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use personae::app::App;
use personae::application::{
    PersonalityService, ProfileUpdate, Registration, RequestContext, ServiceError,
};
use personae::cache::ProfileInfo;
use personae::config::{Config, LogFormat};
use personae::domain::{lookup_key, Alias, Personality, UserId, MAX_ALIASES};
use personae::events::EventLog;
use personae::store::{Database, Synchronous};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

const CHILD_ENV: &str = "PERSONAE_TEST_CRASH_WORKLOAD";
const CHILD_TEST: &str = "crash_consistency::crash_workload_child";
const LONG_ENV: &str = "PERSONAE_LONG_TESTS";
/// The bot admin of the workload: may change anyone's personality.
const ADMIN: u64 = 1;
const ALICE: u64 = 7001;
const BOB: u64 = 7002;
/// A child that reports nothing for this long is stuck: the test fails.
const SILENCE_LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// The workload
// ---------------------------------------------------------------------------------------

/// One command of the workload, as the child runs it and the parent replays it on its model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    Create {
        actor: u64,
        /// `None`: the actor owns it.
        owner: Option<u64>,
        name: String,
        display_name: Option<String>,
        avatar_url: Option<String>,
        prompt: Option<String>,
        model: Option<String>,
        aliases: Vec<String>,
    },
    Alias {
        actor: u64,
        reference: String,
        alias: String,
    },
    Unalias {
        actor: u64,
        reference: String,
        alias: String,
    },
    Update {
        actor: u64,
        reference: String,
        display_name: Option<String>,
        avatar_url: Option<String>,
        prompt: Option<String>,
        model: Option<String>,
    },
    Remove {
        actor: u64,
        reference: String,
    },
}

/// A small namespace, so that names and aliases collide often ("Echo" is both a name and
/// an alias).
const NAMES: [&str; 12] = [
    "Aria", "Bard", "Cora", "Dune", "Echo", "Fable", "Gale", "Halo", "Iris", "Juno", "Kite",
    "Lumen",
];
const ALIASES: [&str; 18] = [
    "sage",
    "muse",
    "the bard",
    "oracle",
    "scribe",
    "poet",
    "wisp",
    "nova",
    "the sage",
    "lyra",
    "echo",
    "aria",
    "bot-1",
    "old_one",
    "zoë",
    "ｆｕｌｌ",
    "storm caller",
    "x",
];
const DISPLAY_NAMES: [&str; 5] = [
    "Aria the Bard",
    "Wanderer",
    "Storm Caller",
    "🦀 Ferris",
    "Zoë",
];
const AVATARS: [&str; 3] = [
    "https://cdn.example.com/a.png",
    "https://example.org/b.jpg?size=64",
    "",
];
const MODELS: [&str; 3] = ["gpt-4o", "llama3.1:8b", ""];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

fn maybe<T>(rng: &mut StdRng, p: f64, value: impl FnOnce(&mut StdRng) -> T) -> Option<T> {
    if rng.gen_bool(p) {
        Some(value(rng))
    } else {
        None
    }
}

/// The same name as typed in another way: case and surrounding spaces don't matter.
fn name_variant(rng: &mut StdRng, name: &str) -> String {
    match rng.gen_range(0..6) {
        0 => name.to_lowercase(),
        1 => name.to_uppercase(),
        2 => format!("  {name} "),
        _ => name.to_owned(),
    }
}

/// The same alias as typed in another way: '@', case, spacing, fullwidth forms.
fn alias_variant(rng: &mut StdRng, alias: &str) -> String {
    match rng.gen_range(0..6) {
        0 => format!("@{alias}"),
        1 => alias.to_uppercase(),
        2 => format!(" {} ", alias.replace(' ', "   ")),
        _ => alias.to_owned(),
    }
}

fn actor(rng: &mut StdRng) -> u64 {
    // Mostly the owner of most personalities; sometimes someone who may not change them.
    match rng.gen_range(0..20) {
        0..=13 => ALICE,
        14..=15 => BOB,
        _ => ADMIN,
    }
}

/// The names and aliases of the personalities that exist as the child sees them: most ops
/// aim at one of them, so that most of the workload does something.
type Known = [(String, Vec<String>)];

/// A reference to a personality (by name or alias, typed loosely) and, when it was picked
/// among the existing ones, its aliases.
fn reference(rng: &mut StdRng, known: &Known) -> (String, Vec<String>) {
    if !known.is_empty() && rng.gen_bool(0.7) {
        let (name, aliases) = &known[rng.gen_range(0..known.len())];
        let reference = if aliases.is_empty() || rng.gen_bool(0.7) {
            name_variant(rng, name)
        } else {
            let alias = &aliases[rng.gen_range(0..aliases.len())];
            alias_variant(rng, alias)
        };
        return (reference, aliases.clone());
    }
    let reference = if rng.gen_bool(0.85) {
        let name = pick(rng, &NAMES);
        name_variant(rng, name)
    } else {
        let alias = pick(rng, &ALIASES);
        alias_variant(rng, alias)
    };
    (reference, Vec::new())
}

fn any_alias(rng: &mut StdRng) -> String {
    let alias = pick(rng, &ALIASES);
    alias_variant(rng, alias)
}

fn prompt(rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 => String::new(),
        1 => format!("You are #{}.\nSpeak\tsoftly.", rng.gen_range(0..3)),
        _ => format!("You are #{}.", rng.gen_range(0..5)),
    }
}

fn random_op(rng: &mut StdRng, known: &Known) -> Op {
    let actor = actor(rng);
    match rng.gen_range(0..100) {
        0..=24 => {
            let name = pick(rng, &NAMES);
            // An admin may create for someone else; now and then someone else tries to.
            let owner = match actor {
                ADMIN => Some(ALICE),
                _ if rng.gen_ratio(1, 20) => Some(ADMIN),
                _ => None,
            };
            Op::Create {
                actor,
                owner,
                name: name_variant(rng, name),
                display_name: maybe(rng, 0.3, |r| pick(r, &DISPLAY_NAMES).to_owned()),
                avatar_url: maybe(rng, 0.3, |r| pick(r, &AVATARS).to_owned()),
                prompt: maybe(rng, 0.7, prompt),
                model: maybe(rng, 0.3, |r| pick(r, &MODELS).to_owned()),
                aliases: (0..rng.gen_range(0..3)).map(|_| any_alias(rng)).collect(),
            }
        }
        25..=49 => Op::Alias {
            actor,
            reference: reference(rng, known).0,
            alias: any_alias(rng),
        },
        50..=64 => {
            let (reference, aliases) = reference(rng, known);
            let alias = if !aliases.is_empty() && rng.gen_bool(0.8) {
                let alias = &aliases[rng.gen_range(0..aliases.len())];
                alias_variant(rng, alias)
            } else {
                any_alias(rng)
            };
            Op::Unalias {
                actor,
                reference,
                alias,
            }
        }
        65..=89 => Op::Update {
            actor,
            reference: reference(rng, known).0,
            display_name: maybe(rng, 0.4, |r| pick(r, &DISPLAY_NAMES).to_owned()),
            avatar_url: maybe(rng, 0.3, |r| pick(r, &AVATARS).to_owned()),
            prompt: maybe(rng, 0.5, prompt),
            model: maybe(rng, 0.3, |r| pick(r, &MODELS).to_owned()),
        },
        _ => Op::Remove {
            actor,
            reference: reference(rng, known).0,
        },
    }
}

/// Runs one op through the service, as the Discord layer would.
async fn execute(service: &PersonalityService, op: &Op) -> Result<Personality, ServiceError> {
    let ctx = |actor: u64| {
        RequestContext::new(service.actor_for(UserId::new(actor).unwrap(), false))
            .in_server(Some(personae_testkit::home()))
    };
    match op.clone() {
        Op::Create {
            actor,
            owner,
            name,
            display_name,
            avatar_url,
            prompt,
            model,
            aliases,
        } => {
            let input = Registration {
                name,
                owner_id: owner.map(|o| UserId::new(o).unwrap()),
                global: false,
                display_name,
                avatar_url,
                prompt,
                model,
                aliases,
                ..Registration::default()
            };
            service.register(&ctx(actor), input).await
        }
        Op::Alias {
            actor,
            reference,
            alias,
        } => service.add_alias(&ctx(actor), &reference, &alias).await,
        Op::Unalias {
            actor,
            reference,
            alias,
        } => service.remove_alias(&ctx(actor), &reference, &alias).await,
        Op::Update {
            actor,
            reference,
            display_name,
            avatar_url,
            prompt,
            model,
        } => {
            let update = ProfileUpdate {
                display_name,
                avatar_url,
                prompt,
                model,
                ..ProfileUpdate::default()
            };
            service
                .update_profile(&ctx(actor), &reference, update)
                .await
        }
        Op::Remove { actor, reference } => service.remove(&ctx(actor), &reference).await,
    }
}

// ---------------------------------------------------------------------------------------
// The model: what the database must hold after the acknowledged operations
// ---------------------------------------------------------------------------------------

/// One personality as the model (and the comparison) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    owner: u64,
    display_name: String,
    avatar_url: Option<String>,
    prompt: String,
    model: Option<String>,
    aliases: BTreeSet<String>,
    version: i64,
}

/// Personalities by the key of their name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    by_key: BTreeMap<String, Entry>,
}

fn alias_key(raw: &str) -> String {
    Alias::parse(raw)
        .expect("the workload only uses valid aliases")
        .to_string()
}

fn reference_key(raw: &str) -> String {
    let trimmed = raw.trim();
    lookup_key(trimmed.strip_prefix('@').unwrap_or(trimmed))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl Model {
    fn from_personalities(personalities: &[Personality]) -> Self {
        let by_key = personalities
            .iter()
            .map(|p| {
                let entry = Entry {
                    name: p.name().to_string(),
                    owner: p.owner_id().get(),
                    display_name: p.profile().display_name.to_string(),
                    avatar_url: p.profile().avatar_url.as_ref().map(ToString::to_string),
                    prompt: p.profile().prompt.to_string(),
                    model: p.profile().model.as_ref().map(ToString::to_string),
                    aliases: p.aliases().iter().map(ToString::to_string).collect(),
                    version: p.version(),
                };
                (p.name().key(), entry)
            })
            .collect();
        Self { by_key }
    }

    fn key_taken(&self, key: &str) -> bool {
        self.holder(key).is_some()
    }

    /// The name key of the personality holding `key` as its name or an alias.
    fn holder(&self, key: &str) -> Option<String> {
        if self.by_key.contains_key(key) {
            return Some(key.to_owned());
        }
        self.by_key
            .iter()
            .find(|(_, e)| e.aliases.contains(key))
            .map(|(k, _)| k.clone())
    }

    /// The personality an op refers to, if it exists and the actor may change it.
    fn target(&self, actor: u64, reference: &str) -> Result<String, String> {
        let key = self
            .holder(&reference_key(reference))
            .ok_or_else(|| format!("not found: {reference:?}"))?;
        let owner = self.by_key[&key].owner;
        if actor != ADMIN && actor != owner {
            return Err(format!("{actor} does not own {key:?}"));
        }
        Ok(key)
    }

    /// The model after `op`, or why the service must refuse it.
    fn apply(&self, op: &Op) -> Result<Model, String> {
        let mut next = self.clone();
        match op {
            Op::Create {
                actor,
                owner,
                name,
                display_name,
                avatar_url,
                prompt,
                model,
                aliases,
            } => {
                let owner = owner.unwrap_or(*actor);
                if owner != *actor && *actor != ADMIN {
                    return Err("only an admin creates for someone else".into());
                }
                let name = name.trim().to_owned();
                let key = lookup_key(&name);
                let aliases: BTreeSet<String> = aliases.iter().map(|a| alias_key(a)).collect();
                if aliases.contains(&key) {
                    return Err("an alias equals the name".into());
                }
                // Members own at most DEFAULT_MEMBER_LIMIT personalities in a server (every
                // personality here is the home server's); bot admins aren't limited.
                let owned = self.by_key.values().filter(|e| e.owner == owner).count();
                if *actor != ADMIN && owned >= usize::from(personae::domain::DEFAULT_MEMBER_LIMIT) {
                    return Err("the owner has as many as a member may".into());
                }
                if self.key_taken(&key) {
                    return Err(format!("name {key:?} taken"));
                }
                if let Some(a) = aliases.iter().find(|a| self.key_taken(a)) {
                    return Err(format!("alias {a:?} taken"));
                }
                let entry = Entry {
                    display_name: display_name.clone().unwrap_or_else(|| name.clone()),
                    name,
                    owner,
                    avatar_url: non_empty(avatar_url.clone()),
                    prompt: prompt.clone().unwrap_or_default(),
                    model: non_empty(model.clone()),
                    aliases,
                    version: 1,
                };
                next.by_key.insert(key, entry);
            }
            Op::Alias {
                actor,
                reference,
                alias,
            } => {
                let key = self.target(*actor, reference)?;
                let alias = alias_key(alias);
                match self.holder(&alias) {
                    Some(holder) if holder != key => return Err(format!("{alias:?} taken")),
                    _ => {}
                }
                let entry = next.by_key.get_mut(&key).unwrap();
                if entry.aliases.contains(&alias) || alias == key {
                    return Err(format!("{alias:?} already names {key:?}"));
                }
                if entry.aliases.len() >= MAX_ALIASES {
                    return Err("too many aliases".into());
                }
                entry.aliases.insert(alias);
                entry.version += 1;
            }
            Op::Unalias {
                actor,
                reference,
                alias,
            } => {
                let key = self.target(*actor, reference)?;
                let entry = next.by_key.get_mut(&key).unwrap();
                if !entry.aliases.remove(&alias_key(alias)) {
                    return Err(format!("{alias:?} is not an alias of {key:?}"));
                }
                entry.version += 1;
            }
            Op::Update {
                actor,
                reference,
                display_name,
                avatar_url,
                prompt,
                model,
            } => {
                let key = self.target(*actor, reference)?;
                let entry = next.by_key.get_mut(&key).unwrap();
                let before = entry.clone();
                if let Some(d) = display_name {
                    d.trim().clone_into(&mut entry.display_name);
                }
                if let Some(a) = avatar_url {
                    entry.avatar_url = non_empty(Some(a.trim().to_owned()));
                }
                if let Some(p) = prompt {
                    entry.prompt.clone_from(p);
                }
                if let Some(m) = model {
                    entry.model = non_empty(Some(m.trim().to_owned()));
                }
                if *entry == before {
                    return Err("nothing to update".into());
                }
                entry.version += 1;
            }
            Op::Remove { actor, reference } => {
                let key = self.target(*actor, reference)?;
                next.by_key.remove(&key);
            }
        }
        Ok(next)
    }
}

/// What differs between the model and the database, one line per personality.
fn differences(expected: &Model, actual: &Model) -> String {
    let keys: BTreeSet<&String> = expected.by_key.keys().chain(actual.by_key.keys()).collect();
    let mut lines = Vec::new();
    for key in keys {
        let (e, a) = (expected.by_key.get(key), actual.by_key.get(key));
        if e != a {
            lines.push(format!(
                "  {key:?}:\n    expected {e:?}\n    stored   {a:?}"
            ));
        }
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------------------

/// What the parent tells a child: where the database is and which ops to run.
#[derive(Debug, Serialize, Deserialize)]
struct ChildPlan {
    db: PathBuf,
    seed: u64,
    first_op: u64,
}

fn config_for(db: &Path) -> Config {
    Config {
        database_path: db.to_owned(),
        database_synchronous: Synchronous::Normal,
        admin_ids: [UserId::new(ADMIN).unwrap()].into_iter().collect(),
        log_format: LogFormat::Pretty,
        handler_timeout: Duration::from_millis(500),
        allowed_models: Vec::new(),
        max_tokens: 1024,
    }
}

fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    // The parent reads every line; a line still in a buffer when the kill comes is lost.
    writeln!(out, "{line}").expect("stdout");
    out.flush().expect("stdout");
}

/// Runs only as the child of `random_workload_survives_sigkill_at_random_moments`: runs
/// the seeded workload on the given database until it is killed.
#[tokio::test]
#[ignore = "run by random_workload_survives_sigkill_at_random_moments as its child process"]
async fn crash_workload_child() {
    let Ok(plan) = std::env::var(CHILD_ENV) else {
        return;
    };
    let plan: ChildPlan = serde_json::from_str(&plan).expect("plan");
    let app = App::start(&config_for(&plan.db)).await.expect("app starts");
    say(format_args!("STARTED {}", plan.first_op));
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let started = Instant::now();
    // Bounded so that an orphaned child can't run forever.
    for n in plan.first_op..plan.first_op + 100_000 {
        if started.elapsed() > Duration::from_secs(120) {
            break;
        }
        let mut known: Vec<(String, Vec<String>)> = app
            .cache
            .all()
            .iter()
            .map(|p| {
                let aliases = p.aliases.iter().map(ToString::to_string).collect();
                (p.name.to_string(), aliases)
            })
            .collect();
        known.sort();
        let op = random_op(&mut rng, &known);
        say(format_args!(
            "TRY {n} {}",
            serde_json::to_string(&op).expect("json")
        ));
        match execute(&app.service, &op).await {
            Ok(personality) => {
                say(format_args!("ACK {n}"));
                if matches!(op, Op::Create { .. }) {
                    // Something for the durable conversation cleanup to clean up later.
                    app.tracker
                        .record_message(n, 42, personality.id())
                        .await
                        .expect("conversation recorded");
                }
            }
            Err(e) => {
                let kind = if e.is_user_error() { "user" } else { "storage" };
                say(format_args!("NACK {n} {kind} {e}"));
            }
        }
    }
    say(format_args!("DONE"));
}

// ---------------------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------------------

/// A line the child printed.
#[derive(Debug)]
enum Report {
    Started,
    Try(u64, Op),
    Ack(u64),
    Nack(u64, String),
}

/// Parses one line of the child's output; libtest may print "test NAME ... " in front of
/// the first one.
fn parse_line(line: &str) -> Option<Report> {
    if line.contains("STARTED ") {
        return Some(Report::Started);
    }
    if let Some(at) = line.find("TRY ") {
        let (n, json) = line[at + 4..].split_once(' ')?;
        let op = serde_json::from_str(json).unwrap_or_else(|e| panic!("bad op {json}: {e}"));
        return Some(Report::Try(n.parse().ok()?, op));
    }
    if let Some(at) = line.find("NACK ") {
        let (n, reason) = line[at + 5..].split_once(' ')?;
        return Some(Report::Nack(n.parse().ok()?, reason.to_owned()));
    }
    if let Some(at) = line.find("ACK ") {
        return Some(Report::Ack(line[at + 4..].trim().parse().ok()?));
    }
    None
}

/// When a round's child is killed.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after it was spawned (perhaps while it starts up and catches up).
    AfterSpawn(Duration),
    /// This long after it announced op number `n`.
    AfterTry(u64, Duration),
}

fn spawn_child(plan: &ChildPlan) -> (Child, Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, serde_json::to_string(plan).expect("json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Runs one child until `kill_at`, SIGKILLs it and returns everything it printed.
fn run_round(plan: &ChildPlan, kill_at: KillAt, seed: u64) -> Vec<String> {
    let spawned = Instant::now();
    let (mut child, rx) = spawn_child(plan);
    let mut lines = Vec::new();
    let deadline = match kill_at {
        KillAt::AfterSpawn(delay) => Some(spawned + delay),
        KillAt::AfterTry(..) => None,
    };
    loop {
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => SILENCE_LIMIT,
        };
        match rx.recv_timeout(wait) {
            Ok(line) => {
                let reached = match (kill_at, parse_line(&line)) {
                    (KillAt::AfterTry(target, _), Some(Report::Try(n, _))) => n >= target,
                    _ => false,
                };
                let done = line.contains("DONE");
                lines.push(line);
                if let (true, KillAt::AfterTry(_, delay)) = (reached, kill_at) {
                    // The child goes on meanwhile: the kill lands anywhere in the next ops.
                    std::thread::sleep(delay);
                    break;
                }
                assert!(
                    !done,
                    "seed {seed}: the child ran out of work before its kill"
                );
            }
            Err(RecvTimeoutError::Timeout) if deadline.is_some() => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("seed {seed}: the child printed nothing for {SILENCE_LIMIT:?}: {lines:?}");
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait();
                panic!("seed {seed}: the child ended before its kill ({status:?}): {lines:?}");
            }
        }
    }
    child.kill().expect("SIGKILL"); // no shutdown, no checkpoint flush, maybe mid-commit
    child.wait().expect("child reaped");
    // What the child wrote before it died is still in the pipe.
    loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => lines.push(line),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!("seed {seed}: the pipe never closed"),
        }
    }
    lines
}

/// Figures of one run, printed at the end.
#[derive(Debug, Default)]
struct Tally {
    ops: u64,
    acked: u64,
    refused: u64,
    in_flight_committed: u64,
    in_flight_lost: u64,
    kills: u64,
    kills_before_first_op: u64,
    /// Refusals by kind, to see that the workload exercises every rule.
    refusals: BTreeMap<&'static str, u64>,
}

/// A short name for why the service refused an op.
fn refusal_kind(reason: &str) -> &'static str {
    [
        ("No personality is called", "not found"),
        ("Only the owner", "not owner"),
        ("name: ", "name taken"),
        ("is already taken", "alias taken"),
        ("Nothing to update", "nothing to update"),
        ("is already an alias", "alias present"),
        ("is not an alias", "alias absent"),
        ("already the personality's name", "alias is the name"),
        ("at most", "too many aliases"),
    ]
    .iter()
    .find(|(needle, _)| reason.contains(needle))
    .map_or("other", |(_, kind)| kind)
}

struct Harness {
    seed: u64,
    db: PathBuf,
    model: Model,
    /// Events the database must hold: one per successful op.
    events: i64,
    tally: Tally,
}

impl Harness {
    /// Replays what the child printed on the model; returns the op that was in flight.
    fn absorb(&mut self, round: u64, lines: &[String]) -> Option<Op> {
        let seed = self.seed;
        let mut pending: Option<(u64, Op)> = None;
        for line in lines {
            match parse_line(line) {
                None | Some(Report::Started) => {}
                Some(Report::Try(n, op)) => {
                    assert!(
                        pending.is_none(),
                        "seed {seed} round {round}: two ops in flight: {pending:?}, {n}"
                    );
                    self.tally.ops += 1;
                    pending = Some((n, op));
                }
                Some(Report::Ack(n)) => {
                    let (m, op) = pending.take().expect("an ACK follows a TRY");
                    assert_eq!(m, n, "seed {seed}: ACK of another op");
                    match self.model.apply(&op) {
                        Ok(next) => self.model = next,
                        Err(why) => panic!(
                            "seed {seed} round {round}: op {n} {op:?} was acknowledged, but the \
                             model says it must be refused: {why}"
                        ),
                    }
                    self.events += 1;
                    self.tally.acked += 1;
                }
                Some(Report::Nack(n, reason)) => {
                    let (m, op) = pending.take().expect("a NACK follows a TRY");
                    assert_eq!(m, n, "seed {seed}: NACK of another op");
                    assert!(
                        reason.starts_with("user "),
                        "seed {seed} round {round}: op {n} {op:?} failed in storage: {reason}"
                    );
                    if let Ok(next) = self.model.apply(&op) {
                        panic!(
                            "seed {seed} round {round}: op {n} {op:?} was refused ({reason}), but \
                             the model accepts it: {}",
                            differences(&self.model, &next)
                        );
                    }
                    self.tally.refused += 1;
                    *self
                        .tally
                        .refusals
                        .entry(refusal_kind(&reason))
                        .or_default() += 1;
                }
            }
        }
        pending.map(|(_, op)| op)
    }

    /// Opens the database the child left behind and checks everything; the op in flight
    /// may or may not have committed, and the model learns which.
    async fn check_after_kill(&mut self, round: u64, in_flight: Option<Op>) {
        let seed = self.seed;
        let context = format!("seed {seed} round {round}");
        let path = self.db.clone();
        let db = tokio::task::spawn_blocking(move || Database::open(&path, Synchronous::Normal))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{context}: the database does not open: {e}"));
        let integrity = db.integrity_check().await.unwrap();
        assert_eq!(integrity, "ok", "{context}: integrity_check");
        let app = App::start_with_database(&config_for(&self.db), db)
            .await
            .unwrap_or_else(|e| panic!("{context}: the app does not restart: {e:#}"));
        let report = app.service.verify().await.unwrap();
        assert!(report.is_ok(), "{context}: verify: {:?}", report.mismatches);
        let caught_up = app
            .subscribers
            .wait_caught_up(Duration::from_secs(20))
            .await
            .unwrap();
        assert!(caught_up, "{context}: durable subscribers did not catch up");
        let last: i64 = count(&app.db, "SELECT COALESCE(MAX(sequence), 0) FROM events").await;
        let statuses = app.subscribers.statuses();
        assert!(statuses.len() >= 2, "{context}: {statuses:?}");
        for status in &statuses {
            assert_eq!(status.checkpoint, last, "{context}: {status:?}");
        }
        assert!(
            app.db.dead_letters(None).await.unwrap().is_empty(),
            "{context}: dead letters after the restart"
        );

        let listed = app
            .service
            .list(personae::application::Listing::default())
            .await
            .unwrap();
        let stored = Model::from_personalities(&listed);
        if stored != self.model {
            let committed = in_flight
                .as_ref()
                .and_then(|op| self.model.apply(op).ok())
                .filter(|next| *next == stored);
            match committed {
                Some(next) => {
                    self.model = next;
                    self.events += 1;
                    self.tally.in_flight_committed += 1;
                }
                None => panic!(
                    "{context}: the database differs from the acknowledged ops (in flight: \
                     {in_flight:?}):\n{}",
                    differences(&self.model, &stored)
                ),
            }
        } else if in_flight.is_some() {
            self.tally.in_flight_lost += 1;
        }
        let events = count(&app.db, "SELECT COUNT(*) FROM events").await;
        assert_eq!(
            events, self.events,
            "{context}: one event per successful op"
        );
        assert_eq!(last, events, "{context}: sequences without gaps");
        let orphans = count(
            &app.db,
            "SELECT COUNT(*) FROM conversation_messages \
             WHERE personality_id NOT IN (SELECT id FROM personalities)",
        )
        .await;
        assert_eq!(orphans, 0, "{context}: conversation cleanup caught up");
        let mut cached: Vec<ProfileInfo> = app.cache.all().iter().map(|i| (**i).clone()).collect();
        cached.sort_by_key(|i| i.id);
        let mut expected: Vec<ProfileInfo> = listed.iter().map(ProfileInfo::of).collect();
        expected.sort_by_key(|i| i.id);
        assert_eq!(cached, expected, "{context}: the cache after the restart");

        app.shutdown().await;
        let persisted = app
            .db
            .call(|c| {
                let mut stmt =
                    c.prepare("SELECT subscriber, sequence FROM subscriber_checkpoints")?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
            .unwrap();
        for status in &statuses {
            let saved = persisted.iter().find(|(name, _)| *name == status.name);
            // A subscriber that never handled an event has no row yet: its checkpoint is 0.
            assert_eq!(
                saved.map_or(0, |(_, s)| *s),
                last,
                "{context}: checkpoint of {} after shutdown",
                status.name
            );
        }
    }
}

async fn count(db: &Database, sql: &'static str) -> i64 {
    db.call(move |c| Ok(c.query_row(sql, [], |r| r.get(0))?))
        .await
        .unwrap()
}

fn env_number(var: &str) -> Option<u64> {
    std::env::var(var).ok().and_then(|v| v.trim().parse().ok())
}

/// `personae events verify` on the database, as an admin would run it.
fn cli_verify(db: &Path, seed: u64) {
    let out = Command::new(env!("CARGO_BIN_EXE_personae"))
        .args(["events", "verify"])
        .env("DATABASE_PATH", db)
        .current_dir(db.parent().unwrap())
        .output()
        .expect("personae runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok:"),
        "seed {seed}: personae events verify: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn random_workload_survives_sigkill_at_random_moments() {
    let long = std::env::var(LONG_ENV).is_ok_and(|v| v == "1");
    let target_ops = env_number("PERSONAE_CRASH_OPS").unwrap_or(if long { 50_000 } else { 5_000 });
    let target_kills = env_number("PERSONAE_CRASH_KILLS").unwrap_or(if long { 500 } else { 50 });
    let budget = if long {
        Duration::from_secs(15 * 60)
    } else {
        Duration::from_secs(10 * 60)
    };
    let seed = env_number("PERSONAE_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    println!("crash consistency: seed {seed} (PERSONAE_CRASH_SEED={seed} repeats this run)");
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Harness {
        seed,
        db: dir.path().join("personae.db"),
        model: Model::default(),
        events: 0,
        tally: Tally::default(),
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut round = 0;
    while harness.tally.kills < target_kills || harness.tally.ops < target_ops {
        assert!(
            started.elapsed() < budget,
            "seed {seed}: over the time budget after {:?}",
            harness.tally
        );
        round += 1;
        let kills_left = target_kills.saturating_sub(harness.tally.kills).max(1);
        let ops_left = target_ops.saturating_sub(harness.tally.ops).max(1);
        let mean = (ops_left / kills_left).max(1);
        let kill_at = if rng.gen_ratio(1, 10) {
            // Sometimes while the child opens the database and its subscribers catch up.
            KillAt::AfterSpawn(Duration::from_micros(rng.gen_range(0..60_000)))
        } else {
            let n = harness.tally.ops + rng.gen_range(1..=2 * mean);
            KillAt::AfterTry(n, Duration::from_micros(rng.gen_range(0..1_500)))
        };
        let plan = ChildPlan {
            db: harness.db.clone(),
            seed: rng.gen(),
            first_op: harness.tally.ops + 1,
        };
        let lines = run_round(&plan, kill_at, seed);
        harness.tally.kills += 1;
        let ops_before = harness.tally.ops;
        let in_flight = harness.absorb(round, &lines);
        if harness.tally.ops == ops_before {
            harness.tally.kills_before_first_op += 1;
        }
        harness.check_after_kill(round, in_flight).await;
        if round % 10 == 0 {
            cli_verify(&harness.db, seed);
        }
    }
    cli_verify(&harness.db, seed);
    println!(
        "crash consistency: seed {seed}: {:?} in {:.1?}; {} personalities at the end",
        harness.tally,
        started.elapsed(),
        harness.model.by_key.len()
    );
    assert!(
        harness.tally.acked > harness.tally.ops / 5,
        "seed {seed}: the workload should mostly do something: {:?}",
        harness.tally
    );
}
