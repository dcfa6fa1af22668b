//! The message path every message in every channel takes: does it address a personality,
//! and which one (`@alias`, a reply, auto-response, a channel activation)?
//!
//! Target: median ≤ 1 µs for a 200-character message, flat from 10 to 100,000 aliases
//! (ratio ≤ 1.5×), no database access and no allocation proportional to the number of
//! aliases. Each size gets its own cache; the mentioned alias changes with every message
//! (4,096 messages, aliases drawn at random), so a large index is not measured from a warm
//! cache line. Before measuring, every case is run while the bench holds the database
//! connection (any database access would deadlock) and under a counting allocator.

#[path = "../examples/load/seed.rs"]
mod seed;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use personae::cache::{ProfileCache, ProfileInfo};
use personae::conversation::ConversationTracker;
use personae::domain::PersonalityId;
use personae::routing::{route, Incoming, Route};

/// Counts allocations, to check that routing allocates nothing per message.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is the
// only addition and never touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SIZES: [usize; 3] = [10, 1_000, 100_000];
const MESSAGES: usize = 4096;
const MESSAGE_CHARS: usize = 200;
const AUTHOR: u64 = 4242;
const TALKER: u64 = 4343;
const CHANNEL: u64 = 6001;
const ACTIVATED_CHANNEL: u64 = 6002;
const CONVERSATION_CHANNEL: u64 = 6003;
const TRACKED_MESSAGES: u64 = 1_000;

/// The `k`-th alias: mostly one word, every tenth two words, and one of three words so
/// that the parser tries up to three words after every '@' at every size.
fn alias(k: usize) -> String {
    match k {
        1 => "old man river".to_owned(),
        k if k % 10 == 0 => format!("the bard{k}"),
        k => format!("aria{k}"),
    }
}

/// A small deterministic generator (xorshift), so every run routes the same messages.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Chat-like filler around `middle`, cut to exactly `MESSAGE_CHARS` characters.
fn message(middle: &str) -> String {
    const BEFORE: &str = "so I was thinking about the weather this morning and ";
    const AFTER: &str = " what do you make of the clouds rolling in from the west, they \
        look like rain to me but my neighbour swears it will be sunny all week long, and honestly \
        I have no idea who to believe anymore";
    let text: String = format!("{BEFORE}{middle}{AFTER}")
        .chars()
        .take(MESSAGE_CHARS)
        .collect();
    assert_eq!(text.chars().count(), MESSAGE_CHARS);
    text
}

struct Fixture {
    cache: ProfileCache,
    tracker: Arc<ConversationTracker>,
    db: personae::store::Database,
    /// Messages mentioning a random alias.
    mentions: Vec<String>,
    /// Messages with an '@' word that is no alias.
    unknown: Vec<String>,
    plain: String,
    ids: Vec<PersonalityId>,
    _dir: tempfile::TempDir,
}

fn fixture(rt: &tokio::runtime::Runtime, size: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = seed::open(&dir.path().join("routing.db")).expect("a database");
    let cache = ProfileCache::new();
    let mut ids = Vec::with_capacity(size);
    let prompt = seed::prompt(500);
    for k in 0..size {
        let p = seed::registered(&format!("p{k}"), &[alias(k)], &prompt).expect("valid input");
        ids.push(p.id);
        cache.put(ProfileInfo::of(&p));
    }
    let tracker = Arc::new(
        rt.block_on(ConversationTracker::load(db.clone()))
            .expect("load"),
    );
    rt.block_on(async {
        for m in 0..TRACKED_MESSAGES {
            let p = ids[m as usize % size];
            tracker.record_message(1_000_000 + m, CHANNEL, p).await?;
        }
        tracker.activate(ACTIVATED_CHANNEL, ids[0], 1).await?;
        tracker.set_auto_response(TALKER, true).await?;
        tracker
            .touch_conversation(TALKER, CONVERSATION_CHANNEL, ids[size / 2])
            .await
    })
    .expect("tracker set-up");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mentions = (0..MESSAGES)
        .map(|_| message(&format!("@{}", alias(rng.below(size)))))
        .collect();
    let unknown = (0..MESSAGES)
        .map(|i| message(&format!("@nobody{i}")))
        .collect();
    Fixture {
        cache,
        tracker,
        db,
        mentions,
        unknown,
        plain: message("you"),
        ids,
        _dir: dir,
    }
}

/// One kind of message, as routing sees it.
#[derive(Clone, Copy)]
enum Case {
    Mention,
    UnknownMention,
    Plain,
    Reply,
    AutoResponse,
    Activation,
}

impl Case {
    const ALL: [Case; 6] = [
        Case::Mention,
        Case::UnknownMention,
        Case::Plain,
        Case::Reply,
        Case::AutoResponse,
        Case::Activation,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::Mention => "mention",
            Case::UnknownMention => "unknown @word, no route",
            Case::Plain => "plain text, no route",
            Case::Reply => "reply",
            Case::AutoResponse => "auto-response",
            Case::Activation => "activation",
        }
    }

    /// The `i`-th message of this case.
    fn incoming<'a>(self, f: &'a Fixture, i: usize) -> Incoming<'a> {
        let i = i % MESSAGES;
        let (author_id, channel_id, content, replied_to) = match self {
            Case::Mention => (AUTHOR, CHANNEL, f.mentions[i].as_str(), None),
            Case::UnknownMention => (AUTHOR, CHANNEL, f.unknown[i].as_str(), None),
            Case::Plain => (AUTHOR, CHANNEL, f.plain.as_str(), None),
            Case::Reply => (
                AUTHOR,
                CHANNEL,
                f.plain.as_str(),
                Some(1_000_000 + i as u64 % TRACKED_MESSAGES),
            ),
            Case::AutoResponse => (TALKER, CONVERSATION_CHANNEL, f.plain.as_str(), None),
            Case::Activation => (AUTHOR, ACTIVATED_CHANNEL, f.plain.as_str(), None),
        };
        Incoming {
            author_id,
            from_bot_or_webhook: false,
            channel_id,
            in_guild: true,
            content,
            replied_to,
        }
    }

    fn run(self, f: &Fixture, i: usize, now: chrono::DateTime<Utc>) -> Option<Route> {
        route(&self.incoming(f, i), &f.cache, &f.tracker, now)
    }
}

/// Routes every case once per message while holding the database connection (a database
/// access would deadlock), checks the answers, and returns the allocations per message.
fn check(rt: &tokio::runtime::Runtime, f: &Arc<Fixture>, size: usize) -> Vec<(Case, f64)> {
    let now = Utc::now();
    let f = Arc::clone(f);
    rt.block_on(f.db.clone().call(move |_connection_held_by_the_bench| {
        let f = &*f;
        let mut allocations = Vec::new();
        for case in Case::ALL {
            for i in 0..MESSAGES {
                // Warm-up: thread-local scratch buffers reach their size.
                black_box(case.run(f, i, now));
            }
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            for i in 0..MESSAGES {
                let routed = case.run(f, i, now);
                let expected = match case {
                    Case::Mention | Case::Reply | Case::AutoResponse | Case::Activation => true,
                    Case::UnknownMention | Case::Plain => false,
                };
                assert_eq!(routed.is_some(), expected, "{} at {size}", case.name());
                black_box(routed);
            }
            let per_message =
                (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / MESSAGES as f64;
            allocations.push((case, per_message));
        }
        Ok(allocations)
    }))
    .expect("routing needs no database")
}

fn bench_routing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("route 200-char message");
    group
        .sample_size(40)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    let mut smallest: Option<Vec<(Case, f64)>> = None;
    for size in SIZES {
        let f = Arc::new(fixture(&rt, size));
        assert_eq!(f.ids.len(), size);
        let allocations = check(&rt, &f, size);
        for (case, per_message) in &allocations {
            println!(
                "allocations per message, {} aliases, {}: {per_message}",
                size,
                case.name()
            );
        }
        match &smallest {
            None => smallest = Some(allocations),
            Some(base) => {
                for ((case, small), (_, large)) in base.iter().zip(&allocations) {
                    assert!(
                        large <= small,
                        "{}: {large} allocations per message at {size} aliases, {small} at {}",
                        case.name(),
                        SIZES[0]
                    );
                }
            }
        }
        let now = Utc::now();
        for case in Case::ALL {
            group.bench_with_input(BenchmarkId::new(case.name(), size), &*f, |b, f| {
                let mut i = 0usize;
                b.iter(|| {
                    i = i.wrapping_add(1);
                    black_box(case.run(f, i, now))
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_routing);
criterion_main!(benches);
