//! The real `personae run` binary as a child process, against the fake Discord and fake
//! LLM running in this process, so its memory is its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use personae_fakes::discord::FakeDiscord;
use personae_fakes::llm::FakeLlm;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use crate::measure::Memory;

/// A running bot and what it printed.
pub struct Bot {
    child: Child,
    pid: String,
    logs: Arc<Mutex<Vec<String>>>,
    /// From spawning the process to the fake Discord seeing the commands registered.
    pub ready_after: Duration,
}

/// The release `personae` binary beside this example (`target/release/personae`).
pub fn binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the example's folder")?;
    let binary = dir.join("personae");
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: run `cargo build --release` first",
        binary.display()
    );
    Ok(binary)
}

impl Bot {
    /// Starts `personae run` on `database` and waits until it is connected and registered
    /// its commands. `env` adds or overrides variables.
    pub async fn start(
        discord: &FakeDiscord,
        llm: &FakeLlm,
        database: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(binary()?);
        command
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DISCORD_TOKEN", "MTAxMDEwMTAxMDEw.load-test.token")
            .env("DISCORD_API_URL", discord.base_url())
            .env("DEV_GUILD_ID", &discord.config().guild_id)
            .env("LLM_BASE_URL", llm.base_url())
            .env("LLM_MODEL", "load-test")
            .env("DATABASE_PATH", database)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .current_dir(database.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = command.spawn().context("starting personae")?;
        let pid = child.id().context("the bot's pid")?.to_string();
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = Arc::clone(&logs);
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(line);
                }
            });
        }
        let mut bot = Self {
            child,
            pid,
            logs,
            ready_after: Duration::ZERO,
        };
        if let Err(e) = discord.wait_ready(Duration::from_secs(120)).await {
            anyhow::bail!("the bot did not get ready: {e}\n{}", bot.logs().join("\n"));
        }
        bot.ready_after = started.elapsed();
        Ok(bot)
    }

    /// The bot's process id.
    pub fn pid(&self) -> &str {
        &self.pid
    }

    /// The bot's memory now.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        Ok(Memory::of(&self.pid)?)
    }

    /// Every line it printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Log lines at WARN or ERROR.
    pub fn complaints(&self) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect()
    }

    /// SIGTERM, then waits for the exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.pid);
        tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await??;
        Ok(())
    }
}
