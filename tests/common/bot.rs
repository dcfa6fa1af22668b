//! Runs the real `personae run` binary against the in-repo fake Discord and fake LLM.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// `personae personality create NAME --owner 7001 --prompt … --alias …` as a setup step.
pub fn create_step(name: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["personality", "create", name, "--owner", "7001"]
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
    child: Option<Child>,
    logs: Arc<Mutex<String>>,
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
        let mut env = vec![
            ("DISCORD_TOKEN".to_owned(), TOKEN.to_owned()),
            ("DISCORD_API_URL".to_owned(), discord.base_url()),
            ("LLM_BASE_URL".to_owned(), llm.base_url()),
            ("LLM_API_KEY".to_owned(), LLM_KEY.to_owned()),
            ("LLM_MODEL".to_owned(), "test-default-model".to_owned()),
            ("LLM_TIMEOUT_SECS".to_owned(), "5".to_owned()),
            (
                "DATABASE_PATH".to_owned(),
                dir.path().join("personae.db").display().to_string(),
            ),
            ("BOT_ADMIN_IDS".to_owned(), ADMIN.to_owned()),
            ("RUST_LOG".to_owned(), "info,personae=debug".to_owned()),
        ];
        env.extend(options.env);
        let setup = options.setup;
        let mut bot = Bot {
            discord,
            llm,
            dir,
            child: None,
            logs: Arc::new(Mutex::new(String::new())),
            env,
        };
        for step in &setup {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            let out = bot.cli(&args).await;
            assert!(
                out.status.success(),
                "setup {step:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        bot.spawn();
        bot
    }

    fn spawn(&mut self) {
        let mut command = Command::new(binary());
        command
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().cloned())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the personae binary starts");
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
            let logs = Arc::clone(&self.logs);
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut logs = logs.lock().unwrap();
                    logs.push_str(&line);
                    logs.push('\n');
                }
            });
        }
        self.child = Some(child);
    }

    /// Everything the bot printed so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
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
        let child = self.child.as_mut().expect("running");
        let pid = child.id().expect("pid").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .expect("the bot exits after SIGTERM")
            .expect("wait works");
        self.child = None;
        status
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let status = tokio::time::timeout(timeout, child.wait()).await.ok()?.ok();
        self.child = None;
        status
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

/// The binary cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_personae")
}
