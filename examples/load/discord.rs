//! `load discord`: the real bot (`personae run`, a child process) against the in-repo fake
//! Discord and an instant fake LLM on loopback.
//!
//! 1. Slash commands at a steady rate (open loop: one every 1/rate s whatever the answers
//!    do): alias → update → unalias → info, spread over the seeded personalities. Latency:
//!    from just before the fake dispatches INTERACTION_CREATE to the arrival of the bot's
//!    interaction callback at the fake (the fake stamps each request as it arrives).
//! 2. `@alias` messages at a steady rate in 100 channels: from just before MESSAGE_CREATE is
//!    dispatched to the arrival of the webhook execution carrying the answer. One message
//!    per channel first, not counted: it creates the channel's webhook.
//!
//! Baseline, in the same run: one REST round trip through the fake (`GET /gateway` from
//! this process), the floor under any answer the bot sends. The bot's resident memory is
//! sampled every second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use personae_fakes::discord::{CommandSpec, FakeDiscord, MessageSpec, RecordedRequest};
use personae_fakes::llm::FakeLlm;
use serde_json::{json, Value};

use crate::measure::{mb, ms, Memory, Summary};
use personae_testkit::seed;

use crate::STOP;

/// How the run is shaped.
pub struct Plan {
    pub personalities: usize,
    pub command_rate: u32,
    pub command_secs: u64,
    pub message_rate: u32,
    pub message_secs: u64,
}

/// Discord lets a webhook execute 5 requests in 2 s and the fake holds the bot to it: at
/// 50 messages a second, 100 channels keep each webhook at half a message a second.
const CHANNELS: u64 = 100;
const FIRST_CHANNEL: u64 = 7000;

pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("personae.db");
    let db = seed::open(&path)?;
    seed::personalities(&db, plan.personalities, 3, 500).await?;
    drop(db);

    let discord = FakeDiscord::start().await;
    let llm = FakeLlm::start().await;
    for c in 0..CHANNELS {
        discord.add_text_channel(&(FIRST_CHANNEL + c).to_string(), &format!("load-{c}"));
    }
    // The LLM limits per user (10 a minute by default) and per server (30) would refuse
    // most of the messages.
    let (mut bot, ready_after) = crate::start_bot(
        &discord,
        &llm,
        &path,
        &[
            ("LLM_CALLS_PER_MINUTE", "1000000"),
            ("LLM_CALLS_PER_MINUTE_PER_SERVER", "1000000"),
        ],
    )
    .await?;
    println!(
        "bot ready after {:.2} s with {} personalities; RSS {}",
        ready_after.as_secs_f64(),
        plan.personalities,
        mb(Memory::of(bot.pid())?.rss_kb)
    );

    let rest = rest_round_trips(&discord, 500).await?;
    println!("baseline, one REST round trip through the fake (GET /gateway): {rest}");

    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let samples = Arc::clone(&samples);
        let bot_memory = BotMemory(bot.pid().to_owned());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if let Ok(m) = bot_memory.read() {
                    samples
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((started.elapsed().as_secs(), m));
                }
            }
        })
    };

    let probe = RestProbe::start(&discord);
    let commands = slash_commands(&discord, &plan).await?;
    let probed = probe.finish().await?;
    println!(
        "\nslash command → interaction callback, {} commands at {}/s for {} s:\n  {}",
        commands.summary.count, plan.command_rate, plan.command_secs, commands.summary
    );
    for (kind, summary) in &commands.by_kind {
        println!("  {kind:<8} {summary}");
    }
    println!(
        "  p50 {} ms, p99 {} ms; failed or missing answers: {}",
        ms(commands.summary.p50),
        ms(commands.summary.p99),
        commands.failures.len()
    );
    println!(
        "  meanwhile, one REST round trip through the fake every {} ms: {probed}",
        PROBE_EVERY.as_millis()
    );
    for failure in commands.failures.iter().take(5) {
        println!("    {failure}");
    }

    let messages = messages(&discord, &plan).await?;
    println!(
        "\n@alias message → webhook execution (instant fake LLM), {} messages at {}/s for {} s:\n  {}",
        messages.summary.count, plan.message_rate, plan.message_secs, messages.summary
    );
    println!(
        "  p50 {} ms, p99 {} ms; missing answers: {}",
        ms(messages.summary.p50),
        ms(messages.summary.p99),
        messages.missing
    );

    sampler.abort();
    let samples = samples
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    report_memory(&samples, plan.command_secs);

    let validation = discord.validation_errors();
    let unhandled = discord.unhandled_requests();
    let complaints = bot.complaints();
    println!(
        "\nrequests Discord would refuse: {}; routes the fake lacks: {}; WARN/ERROR log lines: {}",
        validation.len(),
        unhandled.len(),
        complaints.len()
    );
    for line in validation.iter().chain(&complaints).take(10) {
        println!("  {line}");
    }
    bot.terminate(STOP).await?;
    anyhow::ensure!(
        commands.failures.is_empty()
            && messages.missing == 0
            && validation.is_empty()
            && unhandled.is_empty()
            && complaints.is_empty(),
        "the run had errors or unanswered requests (above), so its figures do not count"
    );
    Ok(())
}

/// Reads a process's memory by pid.
struct BotMemory(String);

impl BotMemory {
    fn read(&self) -> std::io::Result<Memory> {
        Memory::of(&self.0)
    }
}

async fn rest_round_trips(discord: &FakeDiscord, n: usize) -> anyhow::Result<Summary> {
    let client = reqwest::Client::new();
    let url = format!("{}/api/v10/gateway", discord.base_url());
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = client.get(&url).send().await?;
        anyhow::ensure!(response.status().is_success(), "GET /gateway failed");
        response.bytes().await?;
        samples.push(started.elapsed());
    }
    Ok(Summary::of(&mut samples))
}

/// How often the probe beside the slash commands makes its REST round trip.
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// REST round trips through the fake made while the commands run, so that a command's tail
/// can be told apart from the machine's own pauses in the same seconds: a pause of this
/// VM (or of the load process) shows in both, a stall of the bot only in the commands.
struct RestProbe {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<Duration>>>,
}

impl RestProbe {
    fn start(discord: &FakeDiscord) -> Self {
        let url = format!("{}/api/v10/gateway", discord.base_url());
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut samples = Vec::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => return Ok(samples),
                    _ = tick.tick() => {}
                }
                let started = Instant::now();
                let response = client.get(&url).send().await?;
                anyhow::ensure!(response.status().is_success(), "GET /gateway failed");
                response.bytes().await?;
                samples.push(started.elapsed());
            }
        });
        Self { stop, task }
    }

    async fn finish(self) -> anyhow::Result<Summary> {
        // The task may already have ended with an error, which `await` reports.
        let _ = self.stop.send(());
        let mut samples = self.task.await??;
        anyhow::ensure!(!samples.is_empty(), "the REST probe made no round trip");
        Ok(Summary::of(&mut samples))
    }
}

struct CommandRun {
    summary: Summary,
    /// The same latencies by subcommand, in the order of the mix.
    by_kind: Vec<(&'static str, Summary)>,
    failures: Vec<String>,
}

/// The subcommands of the mix, in turn.
const KINDS: [&str; 4] = ["alias", "update", "unalias", "info"];

fn option(name: &str, value: &str) -> Value {
    json!({"name": name, "type": 3, "value": value})
}

/// Which of [`KINDS`] the `n`-th command of the mix is.
fn kind_of(n: u64, personalities: u64) -> usize {
    ((n / personalities) % 4) as usize
}

/// The `n`-th command of the mix, and a piece of text its answer must contain.
fn command(n: u64, personalities: u64) -> (CommandSpec, &'static str) {
    let k = n % personalities;
    let personality = seed::name(k as usize);
    let alias = format!("lx{k}");
    let kind = kind_of(n, personalities);
    let sub = KINDS[kind];
    let (options, expect) = match kind {
        0 => (
            vec![option("personality", &personality), option("alias", &alias)],
            "now also answers to",
        ),
        1 => (
            vec![
                option("personality", &personality),
                option("prompt", &format!("You are load test number {n}.")),
            ],
            "Updated",
        ),
        2 => (
            vec![option("personality", &personality), option("alias", &alias)],
            "no longer answers to",
        ),
        _ => (vec![option("personality", &personality)], ""),
    };
    let spec = CommandSpec::new(
        "personality",
        vec![json!({"name": sub, "type": 1, "options": options})],
    );
    (spec, expect)
}

async fn slash_commands(discord: &FakeDiscord, plan: &Plan) -> anyhow::Result<CommandRun> {
    let total = u64::from(plan.command_rate) * plan.command_secs;
    let period = Duration::from_secs(1) / plan.command_rate;
    let mut tick = tokio::time::interval(period);
    let mut sent: Vec<(String, Instant, &'static str, usize)> = Vec::with_capacity(total as usize);
    for n in 0..total {
        tick.tick().await;
        let (spec, expect) = command(n, plan.personalities as u64);
        let at = Instant::now();
        let id = discord.slash_command(spec).await;
        sent.push((id, at, expect, kind_of(n, plan.personalities as u64)));
    }
    // Every answer, or 15 s more.
    let last = sent.last().map(|s| s.0.clone()).unwrap_or_default();
    let _ = discord
        .wait_interaction_response(&last, Duration::from_secs(15))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let callbacks: HashMap<String, RecordedRequest> = discord
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.api_path().ends_with("/callback"))
        .filter_map(|r| {
            let id = r.api_path().split('/').nth(2)?.to_owned();
            Some((id, r))
        })
        .collect();
    let mut latencies = Vec::with_capacity(sent.len());
    let mut by_kind: [Vec<Duration>; 4] = Default::default();
    let mut failures = Vec::new();
    for (id, at, expect, kind) in &sent {
        let Some(callback) = callbacks.get(id) else {
            failures.push(format!("interaction {id}: no callback"));
            continue;
        };
        let latency = callback.at.saturating_duration_since(*at);
        latencies.push(latency);
        by_kind[*kind].push(latency);
        let body = callback.body.clone().unwrap_or(Value::Null);
        let content = body["data"]["content"].as_str().unwrap_or_default();
        let ok = callback.status < 300
            && body["type"] == 4
            && if expect.is_empty() {
                body["data"]["embeds"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty())
            } else {
                content.contains(expect)
            };
        if !ok {
            failures.push(format!("interaction {id}: {} {body}", callback.status));
        }
    }
    anyhow::ensure!(!latencies.is_empty(), "no command was answered");
    Ok(CommandRun {
        summary: Summary::of(&mut latencies),
        by_kind: KINDS
            .into_iter()
            .zip(by_kind.iter_mut())
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(kind, samples)| (kind, Summary::of(samples)))
            .collect(),
        failures,
    })
}

struct MessageRun {
    summary: Summary,
    missing: usize,
}

fn message(n: u64, personalities: u64) -> MessageSpec {
    let channel = FIRST_CHANNEL + n % CHANNELS;
    let alias = seed::alias((n % personalities) as usize, 0);
    MessageSpec::new(
        &channel.to_string(),
        &(20_000 + n % 50).to_string(),
        "loadtester",
        &format!("@{alias} how are you today? tok{n}end"),
    )
}

/// The `n` of `tok{n}end` in an answer.
fn token(content: &str) -> Option<u64> {
    let start = content.find("tok")? + 3;
    let end = content[start..].find("end")? + start;
    content[start..end].parse().ok()
}

async fn messages(discord: &FakeDiscord, plan: &Plan) -> anyhow::Result<MessageRun> {
    let personalities = plan.personalities as u64;
    // Warm-up: each channel's webhook is created by its first answer.
    let before = discord.webhook_executions().len();
    for n in 0..CHANNELS {
        discord.send_message(message(n, personalities)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while discord.webhook_executions().len() < before + CHANNELS as usize {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the warm-up messages got no answer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let first = CHANNELS;
    let total = u64::from(plan.message_rate) * plan.message_secs;
    let period = Duration::from_secs(1) / plan.message_rate;
    let mut tick = tokio::time::interval(period);
    let mut sent: HashMap<u64, Instant> = HashMap::with_capacity(total as usize);
    for n in first..first + total {
        tick.tick().await;
        let spec = message(n, personalities);
        sent.insert(n, Instant::now());
        discord.send_message(spec).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answers: HashMap<u64, Instant>;
    loop {
        answers = discord
            .webhook_executions()
            .into_iter()
            .filter_map(|r| {
                let content = r.body.as_ref()?["content"].as_str()?.to_owned();
                Some((token(&content)?, r.at))
            })
            .collect();
        let answered = sent.keys().filter(|n| answers.contains_key(n)).count();
        if answered == sent.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(n, at)| Some(answers.get(n)?.saturating_duration_since(*at)))
        .collect();
    let missing = sent.len() - latencies.len();
    anyhow::ensure!(!latencies.is_empty(), "no message was answered");
    Ok(MessageRun {
        summary: Summary::of(&mut latencies),
        missing,
    })
}

fn report_memory(samples: &[(u64, Memory)], command_secs: u64) {
    let Some(last) = samples.last() else { return };
    let series: Vec<String> = samples
        .iter()
        .filter(|(t, _)| t % 5 == 0)
        .map(|(t, m)| format!("{t}s {:.1}", m.rss_kb as f64 / 1024.0))
        .collect();
    println!("\nbot RSS every 5 s (MB): {}", series.join(", "));
    let at = |s: u64| {
        samples
            .iter()
            .find(|(t, _)| *t >= s)
            .map_or(last.1.rss_kb, |(_, m)| m.rss_kb)
    };
    let min = samples.iter().map(|(_, m)| m.rss_kb).min().unwrap_or(0);
    let max = samples.iter().map(|(_, m)| m.rss_kb).max().unwrap_or(0);
    let warm = at(5);
    let end_of_commands = at(command_secs);
    println!(
        "\nbot memory (RSS, sampled every second): {} at 5 s, {} at the end of the commands ({} s), {} at the end; min {}, max {}; peak (VmHWM) {}",
        mb(warm),
        mb(end_of_commands),
        command_secs,
        mb(last.1.rss_kb),
        mb(min),
        mb(max),
        mb(last.1.hwm_kb)
    );
}
