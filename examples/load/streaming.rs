//! `load streaming`: streamed answers through the webhook, the real bot (`personae run`)
//! against the in-repo fake Discord (enforcing Discord's per-webhook bucket, 5 requests
//! per 2 s) and a fake LLM that writes at a steady pace, on loopback.
//!
//! For 1 and for N conversations at once, each in its own channel (so its own webhook):
//! - from the LLM's first token to the first visible webhook message (the goal: p99 within
//!   1.5 s at 50);
//! - edits per message per second and the shortest gap between two edits of one message
//!   (the bot's cadence is one a second);
//! - requests the fake refused with 429.
//!
//! Baseline, in the same run and the same bot: the endpoint answers whole after the same
//! writing time (as an endpoint without streaming does), and the first visible text waits
//! for all of it. Both are timed from the MESSAGE_CREATE dispatch too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use personae_fakes::discord::{FakeDiscord, MessageSpec, RecordedRequest};
use personae_fakes::llm::{FakeLlm, Pacing};
use personae_testkit::seed;

use crate::measure::{ms, Summary};
use crate::STOP;

const FIRST_CHANNEL: u64 = 9000;

/// How the run is shaped.
pub struct Plan {
    pub conversations: Vec<usize>,
    pub answer_chars: usize,
    pub chars_per_event: usize,
    pub event_interval: Duration,
}

pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let most = plan.conversations.iter().copied().max().unwrap_or(1);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("personae.db");
    let db = seed::open(&path)?;
    seed::personalities(&db, most, 1, 200).await?;
    drop(db);

    let discord = FakeDiscord::start().await;
    let llm = FakeLlm::start().await;
    for c in 0..most as u64 {
        discord.add_text_channel(&(FIRST_CHANNEL + c).to_string(), &format!("stream-{c}"));
    }
    let concurrency = (most + 4).to_string();
    let (mut bot, _) = crate::start_bot(
        &discord,
        &llm,
        &path,
        &[
            ("LLM_CALLS_PER_MINUTE", "1000000"),
            ("LLM_CALLS_PER_MINUTE_PER_SERVER", "1000000"),
            ("LLM_MAX_CONCURRENT", concurrency.as_str()),
            ("LLM_CONTEXT_MESSAGES", "0"),
            ("LLM_TIMEOUT_SECS", "60"),
        ],
    )
    .await?;

    // Warm-up, not measured: each channel's webhook is created by its first answer.
    llm.reply_with("Hello.");
    let round = Round::send(&discord, 0..most, "warm").await;
    round.wait_answered(&discord, &llm, "Hello.").await?;

    let answer = sentences(plan.answer_chars);
    let writing = plan.event_interval * (plan.answer_chars.div_ceil(plan.chars_per_event)) as u32;
    println!(
        "answers of {} characters, {} a piece every {} ms: {:.2} s of writing each",
        plan.answer_chars,
        plan.chars_per_event,
        plan.event_interval.as_millis(),
        writing.as_secs_f64()
    );
    llm.reply_with(answer.clone());
    for &n in &plan.conversations {
        // Streamed.
        llm.ignore_stream_requests(false);
        llm.delay(Duration::ZERO);
        llm.stream_pacing(Pacing {
            chars_per_event: plan.chars_per_event,
            interval: plan.event_interval,
            first_token_after: Duration::ZERO,
        });
        let refused_before = discord.rate_limited().len();
        let round = Round::send(&discord, 0..n, &format!("s{n}")).await;
        round.wait_answered(&discord, &llm, &answer).await?;
        let streamed = round.measure(&discord, &llm);
        let refused = discord.rate_limited().len() - refused_before;

        // Baseline: whole answers after the same writing time.
        llm.ignore_stream_requests(true);
        llm.delay(writing);
        let round = Round::send(&discord, 0..n, &format!("w{n}")).await;
        round.wait_answered(&discord, &llm, &answer).await?;
        let whole = round.measure(&discord, &llm);

        println!("\n{n} conversation(s) at once:");
        if let Some(first_token) = &streamed.first_token_to_visible {
            println!(
                "  streamed, first token → first visible message: p50 {} ms, p99 {} ms  ({first_token})",
                ms(first_token.p50),
                ms(first_token.p99)
            );
        }
        println!(
            "  streamed, message → first visible: p50 {} ms, p99 {} ms",
            ms(streamed.message_to_visible.p50),
            ms(streamed.message_to_visible.p99)
        );
        println!(
            "  baseline (whole answer), message → first visible: p50 {} ms, p99 {} ms",
            ms(whole.message_to_visible.p50),
            ms(whole.message_to_visible.p99)
        );
        println!(
            "  edits per message per second: mean {:.2}, highest {:.2}; shortest gap between edits of one message {} ms; edits {}",
            streamed.edits_per_second_mean,
            streamed.edits_per_second_max,
            streamed.shortest_gap.map_or_else(|| "-".to_owned(), ms),
            streamed.edits
        );
        println!("  429 from the fake Discord: {refused}");
    }
    bot.terminate(STOP).await?;
    Ok(())
}

/// `chars` characters of short sentences, so a first sentence comes early as in prose.
fn sentences(chars: usize) -> String {
    let sentence = "The river runs past the old mill and on to the sea. ";
    sentence.repeat(chars / sentence.len() + 1)[..chars]
        .trim_end()
        .to_owned()
}

/// One message in each of a set of channels, sent at the same moment.
struct Round {
    /// Channel → (tag, when the message was dispatched).
    sent: HashMap<String, (String, Instant)>,
    executions_before: usize,
    edits_before: usize,
}

struct Measured {
    first_token_to_visible: Option<Summary>,
    message_to_visible: Summary,
    edits: usize,
    edits_per_second_mean: f64,
    edits_per_second_max: f64,
    shortest_gap: Option<Duration>,
}

impl Round {
    async fn send(discord: &FakeDiscord, conversations: std::ops::Range<usize>, tag: &str) -> Self {
        let executions_before = discord.webhook_executions().len();
        let edits_before = discord.webhook_edits().len();
        let mut sent = HashMap::new();
        let specs: Vec<(String, MessageSpec, String)> = conversations
            .map(|i| {
                let channel = (FIRST_CHANNEL + i as u64).to_string();
                let tag = format!("{tag}c{i}x");
                let text = format!("@{} go {tag}", seed::alias(i, 0));
                let spec =
                    MessageSpec::new(&channel, &(30_000 + i).to_string(), "loadtester", &text);
                (channel, spec, tag)
            })
            .collect();
        for (channel, spec, tag) in specs {
            sent.insert(channel, (tag, Instant::now()));
            discord.send_message(spec).await;
        }
        Self {
            sent,
            executions_before,
            edits_before,
        }
    }

    /// Waits until the last webhook message of every channel of the round shows `answer`.
    async fn wait_answered(
        &self,
        discord: &FakeDiscord,
        llm: &FakeLlm,
        answer: &str,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let done = self.sent.keys().all(|channel| {
                discord
                    .channel_messages(channel)
                    .iter()
                    .rev()
                    .find(|m| !m["webhook_id"].is_null())
                    .is_some_and(|m| m["content"] == answer)
            }) && self.executions(discord).len() >= self.sent.len();
            if done {
                // The last edits may still be on their way: let them land.
                tokio::time::sleep(Duration::from_millis(1200)).await;
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "not every conversation was answered; LLM requests so far: {}; last messages: {:?}",
                llm.requests().len(),
                self.sent
                    .keys()
                    .take(3)
                    .map(|c| discord
                        .channel_messages(c)
                        .last()
                        .map(|m| m["content"].clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn executions(&self, discord: &FakeDiscord) -> Vec<RecordedRequest> {
        discord
            .webhook_executions()
            .into_iter()
            .skip(self.executions_before)
            .collect()
    }

    fn measure(&self, discord: &FakeDiscord, llm: &FakeLlm) -> Measured {
        let webhook_channel: HashMap<String, String> = discord
            .webhooks()
            .into_iter()
            .filter_map(|w| {
                Some((
                    w["id"].as_str()?.to_owned(),
                    w["channel_id"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let channel_of = |r: &RecordedRequest| {
            let id = r
                .api_path()
                .trim_start_matches("/webhooks/")
                .split('/')
                .next()?
                .to_owned();
            webhook_channel.get(&id).cloned()
        };
        // The first post in each channel: its first visible message.
        let mut first_visible: HashMap<String, Instant> = HashMap::new();
        for post in self.executions(discord) {
            if let Some(channel) = channel_of(&post) {
                first_visible.entry(channel).or_insert(post.at);
            }
        }
        let tag_channel: HashMap<&str, &str> = self
            .sent
            .iter()
            .map(|(channel, (tag, _))| (tag.as_str(), channel.as_str()))
            .collect();
        let requests = llm.requests();
        let mut first_token = Vec::new();
        for (index, at) in llm.first_tokens() {
            let Some(body) = requests.get(index) else {
                continue;
            };
            let last = body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .and_then(|m| m["content"].as_str())
                .unwrap_or_default();
            let Some(channel) = tag_channel
                .iter()
                .find(|(tag, _)| last.ends_with(**tag))
                .map(|(_, c)| *c)
            else {
                continue;
            };
            if let Some(visible) = first_visible.get(channel) {
                first_token.push(visible.saturating_duration_since(at));
            }
        }
        let mut message_to_visible: Vec<Duration> = self
            .sent
            .iter()
            .filter_map(|(channel, (_, at))| {
                Some(first_visible.get(channel)?.saturating_duration_since(*at))
            })
            .collect();

        // Edits per message: how many, over how long, and the shortest gap.
        let mut by_message: HashMap<String, Vec<Instant>> = HashMap::new();
        let edits: Vec<RecordedRequest> = discord
            .webhook_edits()
            .into_iter()
            .skip(self.edits_before)
            .collect();
        for edit in &edits {
            let message = edit
                .api_path()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            by_message.entry(message).or_default().push(edit.at);
        }
        let mut rates = Vec::new();
        let mut shortest: Option<Duration> = None;
        for times in by_message.values() {
            for pair in times.windows(2) {
                let gap = pair[1].saturating_duration_since(pair[0]);
                shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
            }
            if let (Some(first), Some(last)) = (times.first(), times.last()) {
                let span = last.saturating_duration_since(*first).as_secs_f64();
                if times.len() > 1 && span > 0.0 {
                    rates.push((times.len() - 1) as f64 / span);
                }
            }
        }
        Measured {
            first_token_to_visible: (!first_token.is_empty())
                .then(|| Summary::of(&mut first_token)),
            message_to_visible: Summary::of(&mut message_to_visible),
            edits: edits.len(),
            edits_per_second_mean: if rates.is_empty() {
                0.0
            } else {
                rates.iter().sum::<f64>() / rates.len() as f64
            },
            edits_per_second_max: rates.iter().copied().fold(0.0, f64::max),
            shortest_gap: shortest,
        }
    }
}
