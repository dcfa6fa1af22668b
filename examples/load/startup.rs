//! `load startup`: how long loading the caches takes and how much memory the process needs,
//! measured in fresh processes: this example re-run as `startup-child` (the application
//! alone, through `App::start`), and the real `personae run` connected to the fake Discord.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use personae::app::App;
use personae::config::{Config, LogFormat};
use personae::store::Synchronous;
use personae_fakes::discord::FakeDiscord;
use personae_fakes::llm::FakeLlm;

use crate::measure::{cpu_time, mb, Memory};
use personae_testkit::seed;

use crate::STOP;

/// Seeds a database per size, then measures both kinds of process on it.
pub async fn run(sizes: &[usize], idle: Duration) -> anyhow::Result<()> {
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

        let output = tokio::process::Command::new(std::env::current_exe()?)
            .arg("startup-child")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .output()
            .await?;
        anyhow::ensure!(
            output.status.success(),
            "startup-child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        print!("{}", String::from_utf8_lossy(&output.stdout));

        let discord = FakeDiscord::start().await;
        let llm = FakeLlm::start().await;
        let (mut bot, ready_after) = crate::start_bot(&discord, &llm, &path, &[]).await?;
        let ready = Memory::of(bot.pid())?;
        tokio::time::sleep(idle).await;
        let idle_memory = Memory::of(bot.pid())?;
        println!(
            "  personae run: ready after {:.2} s; RSS {} at ready, {} after {} s idle; peak (VmHWM) {}",
            ready_after.as_secs_f64(),
            mb(ready.rss_kb),
            mb(idle_memory.rss_kb),
            idle.as_secs(),
            mb(idle_memory.hwm_kb)
        );
        let complaints = bot.complaints();
        bot.terminate(STOP).await?;
        anyhow::ensure!(complaints.is_empty(), "the bot complained: {complaints:#?}");
    }
    Ok(())
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
    println!(
        "  App::start: {cached} personalities, {keys} names and aliases cached in {:.3} s \
         (CPU {:.2} s); RSS {} before, {} after, peak (VmHWM) {}; listing them again from SQLite \
         alone: {:.3} s",
        loaded.as_secs_f64(),
        cpu.as_secs_f64(),
        mb(before.rss_kb),
        mb(after.rss_kb),
        mb(after.hwm_kb),
        list_time.as_secs_f64(),
    );
    Ok(())
}
