//! `load startup`: how long loading the caches takes and how much memory the process needs,
//! measured in fresh processes: this example re-run as `startup-child` (the application
//! alone, through `App::start`; it prints its report as one JSON line), and the real
//! `personae run` connected to the fake Discord.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use personae::app::App;
use personae::config::{Config, LogFormat};
use personae::store::Synchronous;
use personae_fakes::discord::FakeDiscord;
use personae_fakes::llm::FakeLlm;
use serde::{Deserialize, Serialize};

use crate::measure::{cpu_time, mb, Memory};
use personae_testkit::seed;

use crate::STOP;

/// Seeds a database per size, then measures both kinds of process on it, `runs` times
/// each: a start-up on a shared machine varies by a third from one run to the next, so the
/// median is the figure.
pub async fn run(sizes: &[usize], idle: Duration, runs: usize) -> anyhow::Result<()> {
    anyhow::ensure!(runs > 0, "--runs must be at least 1");
    for &size in sizes {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("personae.db");
        let db = seed::open(&path)?;
        let seeding = Instant::now();
        seed::personalities(&db, size, 3, 500).await?;
        drop(db);
        let file_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;
        println!(
            "\n{size} personalities (3 aliases, 500-character prompts) seeded in {:.1} s; database {file_mb:.0} MB",
            seeding.elapsed().as_secs_f64()
        );

        let mut children = Vec::with_capacity(runs);
        for _ in 0..runs {
            children.push(child_process(&path).await?);
        }
        let last = children.last().copied().unwrap_or_default();
        println!(
            "  App::start: {} personalities, {} names and aliases cached; median of {runs}: {} \
             (CPU {}); listing them again through the repository: {}; RSS {} before, {} after, \
             peak (VmHWM) {}",
            last.personalities,
            last.keys,
            median_s(&children, |r| r.load_s),
            median_s(&children, |r| r.cpu_s),
            median_s(&children, |r| r.list_s),
            mb(last.rss_before_kb),
            mb(last.rss_after_kb),
            mb(children.iter().map(|r| r.hwm_kb).max().unwrap_or(0)),
        );

        let mut bots = Vec::with_capacity(runs);
        for _ in 0..runs {
            // A fresh fake Discord each time: its "ready" is the first identify it sees.
            let discord = FakeDiscord::start().await;
            let llm = FakeLlm::start().await;
            let (mut bot, ready_after) = crate::start_bot(&discord, &llm, &path, &[]).await?;
            let ready = Memory::of(bot.pid())?;
            tokio::time::sleep(idle).await;
            let idle_memory = Memory::of(bot.pid())?;
            let complaints = bot.complaints();
            bot.terminate(STOP).await?;
            anyhow::ensure!(complaints.is_empty(), "the bot complained: {complaints:#?}");
            bots.push(BotRun {
                ready_s: ready_after.as_secs_f64(),
                at_ready: ready,
                idle: idle_memory,
            });
        }
        let most = |kb: fn(&BotRun) -> u64| bots.iter().map(kb).max().unwrap_or(0);
        println!(
            "  personae run: ready after {} (median of {runs}); the largest RSS at ready {}, after {} s \
             idle {}, peak (VmHWM) {}",
            median_s(&bots, |b| b.ready_s),
            mb(most(|b| b.at_ready.rss_kb)),
            idle.as_secs(),
            mb(most(|b| b.idle.rss_kb)),
            mb(most(|b| b.idle.hwm_kb)),
        );
    }
    Ok(())
}

/// One `personae run`: when it was ready, and its memory then and after the idle wait.
struct BotRun {
    ready_s: f64,
    at_ready: Memory,
    idle: Memory,
}

/// One `startup-child` run's report.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct ChildReport {
    personalities: usize,
    keys: usize,
    load_s: f64,
    cpu_s: f64,
    list_s: f64,
    rss_before_kb: u64,
    rss_after_kb: u64,
    hwm_kb: u64,
}

/// Runs `startup-child` on `path` in a fresh process and reads its report.
async fn child_process(path: &Path) -> anyhow::Result<ChildReport> {
    let output = tokio::process::Command::new(std::env::current_exe()?)
        .arg("startup-child")
        .arg(path)
        .env("RUST_LOG", "warn")
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "startup-child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).context("reading startup-child's report")
}

/// The median of `runs`' `seconds`, with the fastest and slowest: "0.78 s (0.69–0.90 s)".
fn median_s<T>(runs: &[T], seconds: impl Fn(&T) -> f64) -> String {
    let mut all: Vec<f64> = runs.iter().map(seconds).collect();
    all.sort_by(f64::total_cmp);
    let (Some(first), Some(last)) = (all.first(), all.last()) else {
        return "-".into();
    };
    format!("{:.3} s ({first:.3}–{last:.3} s)", all[all.len() / 2])
}

/// `startup-child DATABASE`: starts the application on the database and reports.
pub async fn child(database: &Path) -> anyhow::Result<()> {
    let config = Config {
        database_path: database.to_owned(),
        database_synchronous: Synchronous::Normal,
        admin_ids: std::collections::HashSet::default(),
        log_format: LogFormat::Pretty,
        handler_timeout: personae::events::DEFAULT_HANDLER_TIMEOUT,
        allowed_models: Vec::new(),
        max_tokens: 1024,
    };
    let before = Memory::of("self")?;
    let cpu = cpu_time()?;
    let started = Instant::now();
    let app = App::start(&config).await.context("App::start")?;
    let loaded = started.elapsed();
    let cpu = cpu_time()?.checked_sub(cpu).unwrap();
    let after = Memory::of("self")?;
    let cached = app.cache.len();
    let keys = app.cache.key_count();
    // What the same rows cost to read and decode once more, now that the file is cached.
    let listed = Instant::now();
    let again = app
        .service
        .list(personae::application::Listing::default())
        .await?
        .len();
    let list_time = listed.elapsed();
    anyhow::ensure!(again == cached, "cached {cached}, listed {again}");
    app.shutdown().await;
    let report = ChildReport {
        personalities: cached,
        keys,
        load_s: loaded.as_secs_f64(),
        cpu_s: cpu.as_secs_f64(),
        list_s: list_time.as_secs_f64(),
        rss_before_kb: before.rss_kb,
        rss_after_kb: after.rss_kb,
        hwm_kb: after.hwm_kb,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
