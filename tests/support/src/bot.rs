//! Runs the real `personae` binary against the in-repo fake Discord and fake LLM: [`Bot`]
//! for the end-to-end tests, [`Process`] and [`run_ready`] for the load commands.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use personae_fakes::discord::{FakeDiscord, FakeDiscordConfig};
use personae_fakes::llm::FakeLlm;
use tempfile::TempDir;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// How long any single wait in an end-to-end test may take.
pub const WAIT: Duration = Duration::from_secs(15);
/// The token the bot is started with; tests check it never reaches the logs.
pub const TOKEN: &str = "MTAxMDEwMTAxMDEw.fake-token.never-log-me";
/// The LLM API key the bot is started with; tests check it never reaches the logs.
pub const LLM_KEY: &str = "sk-test-never-log-me";
/// The bot admin's user id.
pub const ADMIN: &str = "1";

/// Extra settings for one bot run.
#[derive(Default, Clone)]
pub struct BotOptions {
    pub discord: FakeDiscordConfig,
    pub env: Vec<(String, String)>,
    /// Admin command lines (`personae …` arguments) run on the database before the bot starts.
    pub setup: Vec<Vec<String>>,
}

/// `personae personality create NAME --owner 7001 --server 8001 --prompt … --alias …` as a
/// setup step: a personality of the fake Discord's guild.
pub fn create_step(name: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "personality",
        "create",
        name,
        "--owner",
        "7001",
        "--server",
        "8001",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_string()));
    args
}

/// A running bot process with its fake servers and its own database.
pub struct Bot {
    pub discord: FakeDiscord,
    pub llm: FakeLlm,
    pub dir: TempDir,
    process: Option<Process>,
    env: Vec<(String, String)>,
}

impl Bot {
    /// Starts fake Discord, fake LLM and the bot, and waits until the bot registered its
    /// commands.
    pub async fn start() -> Bot {
        Self::start_with(BotOptions::default()).await
    }

    /// Like [`Bot::start`] with options.
    pub async fn start_with(options: BotOptions) -> Bot {
        let bot = Self::start_unready(options).await;
        if let Err(e) = bot.discord.wait_ready(WAIT).await {
            panic!(
                "the bot did not get ready: {e}\n--- bot logs ---\n{}",
                bot.logs()
            );
        }
        bot
    }

    /// Starts the fakes and the bot process without waiting for it to be ready.
    pub async fn start_unready(options: BotOptions) -> Bot {
        let discord = FakeDiscord::start_with(options.discord).await;
        let llm = FakeLlm::start().await;
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut env = bot_env(&discord, &llm, &dir.path().join("personae.db"));
        env.extend(options.env);
        let mut bot = Bot {
            discord,
            llm,
            dir,
            process: None,
            env,
        };
        for step in &options.setup {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            let out = bot.cli(&args).await;
            assert!(
                out.status.success(),
                "setup {step:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        bot.process = Some(
            Process::start(&["run"], &bot.env, bot.dir.path()).expect("the personae binary starts"),
        );
        bot
    }

    /// Everything the bot printed so far.
    pub fn logs(&self) -> String {
        self.process
            .as_ref()
            .map(|p| {
                p.logs().iter().fold(String::new(), |mut text, line| {
                    text.push_str(line);
                    text.push('\n');
                    text
                })
            })
            .unwrap_or_default()
    }

    /// The variables the bot runs with.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The bot's database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("personae.db")
    }

    /// A read connection to the bot's database.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).expect("open the bot's database")
    }

    /// Runs `personae ARGS…` (the admin command line) on the bot's database.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(binary())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().cloned())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .await
            .expect("the personae binary runs")
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        self.process
            .as_mut()
            .expect("running")
            .terminate(WAIT)
            .await
            .expect("the bot exits after SIGTERM")
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.process.as_mut()?.wait_exit(timeout).await
    }

    /// Waits until the fake Discord received at least `n` webhook executions; returns them.
    pub async fn wait_webhook_executions(
        &self,
        n: usize,
    ) -> Vec<personae_fakes::discord::RecordedRequest> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let executions = self.discord.webhook_executions();
            if executions.len() >= n {
                return executions;
            }
            assert!(
                tokio::time::Instant::now() <= deadline,
                "expected {n} webhook executions, got {}:\n{executions:#?}\n--- logs ---\n{}",
                executions.len(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the bot has recorded that one of its personalities sent `message_id`
    /// (it does so right after Discord answers the webhook execution).
    pub async fn wait_tracked(&self, message_id: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found: i64 = self
                .db()
                .query_row(
                    "SELECT COUNT(*) FROM conversation_messages WHERE message_id = ?1",
                    [message_id],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            if found > 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {message_id} was never tracked"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Gives the bot time to (wrongly) act, then returns the webhook executions so far.
    pub async fn settle(&self) -> Vec<personae_fakes::discord::RecordedRequest> {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.discord.webhook_executions()
    }

    /// Asserts that every request the bot sent was valid for Discord's OpenAPI description.
    pub fn assert_valid_requests(&self) {
        let errors = self.discord.validation_errors();
        assert!(
            errors.is_empty(),
            "requests Discord would refuse:\n{}",
            errors.join("\n")
        );
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- bot logs ---\n{}", self.logs());
        }
    }
}

/// The environment of a bot run against `discord` and `llm` on `database`, with the test
/// credentials ([`TOKEN`], [`LLM_KEY`]) and [`ADMIN`] as its admin.
pub fn bot_env(discord: &FakeDiscord, llm: &FakeLlm, database: &Path) -> Vec<(String, String)> {
    [
        ("DISCORD_TOKEN", TOKEN.to_owned()),
        ("DISCORD_API_URL", discord.base_url()),
        ("DISCORD_ATTACHMENT_URLS", discord.base_url()),
        ("LLM_BASE_URL", llm.base_url()),
        ("LLM_API_KEY", LLM_KEY.to_owned()),
        ("LLM_MODEL", "test-default-model".to_owned()),
        ("LLM_TIMEOUT_SECS", "5".to_owned()),
        ("DATABASE_PATH", database.display().to_string()),
        ("BOT_ADMIN_IDS", ADMIN.to_owned()),
        ("RUST_LOG", "info,personae=debug".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The `personae` binary cargo built beside the running test or example: both live one
/// folder below the profile's (`target/debug/deps/…`, `target/release/examples/…`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable");
    exe.parent()
        .and_then(Path::parent)
        .expect("the profile folder")
        .join("personae")
}

/// A `personae` child process with nothing but PATH and the given variables in its
/// environment, and every line it prints collected. Killed when dropped.
pub struct Process {
    child: Child,
    pid: String,
    started: Instant,
    logs: Arc<Mutex<Vec<String>>>,
    /// The tasks reading its stdout and stderr into `logs`.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Process {
    /// Starts `personae ARGS…` in `dir`.
    pub fn start(args: &[&str], env: &[(String, String)], dir: &Path) -> anyhow::Result<Self> {
        let binary = binary();
        anyhow::ensure!(
            binary.exists(),
            "{} is missing: build it first (`cargo build`, `cargo build --release`)",
            binary.display()
        );
        let mut child = Command::new(binary)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().cloned())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting personae")?;
        let started = Instant::now();
        let pid = child.id().context("the bot's pid")?.to_string();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
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
            readers.push(tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            }));
        }
        Ok(Self {
            child,
            pid,
            started,
            logs,
            readers,
        })
    }

    /// The process id.
    pub fn pid(&self) -> &str {
        &self.pid
    }

    /// When the process was spawned.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Every line it printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Log lines at WARN or ERROR.
    pub fn complaints(&self) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect()
    }

    /// Sends SIGTERM and waits at most `timeout` for the exit.
    pub async fn terminate(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.pid);
        Ok(tokio::time::timeout(timeout, self.child.wait()).await??)
    }

    /// Waits at most `timeout` for the process to exit on its own.
    /// Its output is read to the end before this returns, so [`Process::logs`] then holds
    /// every line it printed.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?
            .ok()?;
        for reader in self.readers.drain(..) {
            // The pipes close with the process; a reader that doesn't finish loses lines only.
            let _ = tokio::time::timeout(timeout, reader).await;
        }
        Some(status)
    }
}

/// Starts `personae run` on `database` against `discord` and `llm` (with [`bot_env`], `env`
/// adding or overriding variables) and waits at most `timeout` until it is connected and
/// registered its commands. Returns the process and how long that took from the spawn.
pub async fn run_ready(
    discord: &FakeDiscord,
    llm: &FakeLlm,
    database: &Path,
    env: &[(&str, &str)],
    timeout: Duration,
) -> anyhow::Result<(Process, Duration)> {
    let mut all = bot_env(discord, llm, database);
    all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let dir = database.parent().unwrap_or(Path::new("."));
    let process = Process::start(&["run"], &all, dir)?;
    if let Err(e) = discord.wait_ready(timeout).await {
        anyhow::bail!(
            "the bot did not get ready: {e}\n{}",
            process.logs().join("\n")
        );
    }
    let ready_after = process.started().elapsed();
    Ok((process, ready_after))
}
