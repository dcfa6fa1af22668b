//! The routing fixture shared by `benches/routing.rs` and `load routing`: a profile cache
//! with N aliases, a conversation tracker with replies, an auto-response conversation and
//! an activated channel, and 4,096 messages of 200 characters per kind.

use std::sync::Arc;

use chrono::Utc;
use personae::cache::{ProfileCache, ProfileInfo};
use personae::conversation::ConversationTracker;
use personae::domain::PersonalityId;
use personae::routing::{route, Incoming, Route};

use crate::seed;

pub const SIZES: [usize; 3] = [10, 1_000, 100_000];
pub const MESSAGES: usize = 4096;
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

pub struct Fixture {
    pub cache: ProfileCache,
    pub tracker: Arc<ConversationTracker>,
    pub db: personae::store::Database,
    /// Messages mentioning a random alias.
    pub mentions: Vec<String>,
    /// Messages with an '@' word that is no alias.
    pub unknown: Vec<String>,
    pub plain: String,
    pub ids: Vec<PersonalityId>,
    /// The database's folder, deleted when the fixture is dropped.
    pub dir: tempfile::TempDir,
}

pub fn fixture(rt: &tokio::runtime::Runtime, size: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let db = seed::open(&dir.path().join("routing.db")).expect("a database");
    let cache = ProfileCache::new();
    let prompt = seed::prompt(500);
    let personalities: Vec<_> = (0..size)
        .map(|k| seed::registered(&format!("p{k}"), &[alias(k)], &prompt).expect("valid input"))
        .collect();
    let ids: Vec<PersonalityId> = personalities
        .iter()
        .map(personae::domain::Personality::id)
        .collect();
    for p in &personalities {
        cache.put(ProfileInfo::of(p));
    }
    // Stored too: the tracker only records rows for personalities that exist.
    rt.block_on(db.call(move |conn| {
        let tx = conn.transaction()?;
        for p in &personalities {
            seed::insert_personality(&tx, p)?;
        }
        tx.commit()?;
        Ok(())
    }))
    .expect("personalities stored");
    let tracker = Arc::new(
        rt.block_on(ConversationTracker::load(std::sync::Arc::new(db.clone())))
            .expect("load"),
    );
    rt.block_on(async {
        let mut recorded = true;
        for m in 0..TRACKED_MESSAGES {
            let p = ids[m as usize % size];
            recorded &= tracker.record_message(1_000_000 + m, CHANNEL, p).await?;
        }
        recorded &= tracker.activate(ACTIVATED_CHANNEL, ids[0], 1).await?;
        tracker.set_auto_response(TALKER, true).await?;
        recorded &= tracker
            .touch_conversation(TALKER, CONVERSATION_CHANNEL, ids[size / 2])
            .await?;
        anyhow::ensure!(recorded, "the tracker refused part of the set-up");
        Ok(())
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
        dir,
    }
}

/// One kind of message, as routing sees it.
#[derive(Clone, Copy)]
pub enum Case {
    Mention,
    UnknownMention,
    Plain,
    Reply,
    AutoResponse,
    Activation,
}

impl Case {
    pub const ALL: [Case; 6] = [
        Case::Mention,
        Case::UnknownMention,
        Case::Plain,
        Case::Reply,
        Case::AutoResponse,
        Case::Activation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Case::Mention => "mention",
            Case::UnknownMention => "unknown @word, no route",
            Case::Plain => "plain text, no route",
            Case::Reply => "reply",
            Case::AutoResponse => "auto-response",
            Case::Activation => "activation",
        }
    }

    /// Whether a message of this case addresses a personality.
    pub fn routes(self) -> bool {
        match self {
            Case::Mention | Case::Reply | Case::AutoResponse | Case::Activation => true,
            Case::UnknownMention | Case::Plain => false,
        }
    }

    /// Routes every message of this case once; an error names the first that routed
    /// otherwise than [`Case::routes`] says. A fixture that lost a reply or an activation
    /// would otherwise measure the path of a message that routes nowhere.
    pub fn check(self, f: &Fixture, now: chrono::DateTime<Utc>) -> anyhow::Result<()> {
        for i in 0..MESSAGES {
            let routed = self.run(f, i, now).is_some();
            anyhow::ensure!(
                routed == self.routes(),
                "{} message {i} at {} aliases: routed {routed}, expected {}",
                self.name(),
                f.ids.len(),
                self.routes()
            );
        }
        Ok(())
    }

    /// The `i`-th message of this case.
    pub fn incoming(self, f: &Fixture, i: usize) -> Incoming<'_> {
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
            server: personae::domain::ServerId::new(8001).ok(),
            content,
            replied_to,
        }
    }

    pub fn run(self, f: &Fixture, i: usize, now: chrono::DateTime<Utc>) -> Option<Route> {
        route(&self.incoming(f, i), &f.cache, &f.tracker, now)
    }
}
