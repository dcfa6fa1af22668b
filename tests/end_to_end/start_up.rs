//! Running personae as a host does: one bot per database, private files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use personae_fakes::discord::{FakeDiscord, FakeDiscordConfig, MessageSpec};
use personae_fakes::llm::FakeLlm;
use personae_testkit::bot::{bot_env, create_step, Bot, BotOptions, Process, WAIT};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_second_bot_on_the_same_database_refuses_to_start_and_the_command_line_still_works() {
    let bot = Bot::start().await;
    let env: Vec<(String, String)> = bot.env().to_vec();
    let mut second = Process::start(&["run"], &env, bot.dir.path()).expect("starts");
    let status = second
        .wait_exit(WAIT)
        .await
        .expect("the second bot stops on its own");
    assert_eq!(status.code(), Some(1), "{:?}", second.logs());
    let lines = second.logs();
    assert_eq!(lines.len(), 1, "one line: {lines:?}");
    assert!(
        lines[0].contains("personae.db.lock") && lines[0].contains("already running"),
        "{lines:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        bot.discord.identify_count(),
        1,
        "only the first bot connected"
    );

    let out = bot
        .cli(&[
            "personality",
            "create",
            "Nova",
            "--owner",
            "7001",
            "--server",
            "8001",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_database_its_wal_and_shm_and_the_lock_are_private() {
    let bot = Bot::start().await;
    let db = bot.db_path();
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        assert_eq!(mode(Path::new(&name)), 0o600, "personae.db{suffix}");
    }
}

#[test]
fn a_folder_the_command_line_creates_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "umask 022; exec \"$0\" personality create Aria --owner 1 --global",
            env!("CARGO_BIN_EXE_personae"),
        ])
        .env_clear()
        .env("DATABASE_PATH", dir.path().join("data/deeper/personae.db"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    assert_eq!(mode(&dir.path().join("data/deeper")), 0o700);
    assert_eq!(mode(&dir.path().join("data/deeper/personae.db")), 0o600);
}

#[tokio::test]
async fn close_4014_names_the_message_content_switch_and_exits_1() {
    let mut bot = Bot::start_unready(BotOptions {
        discord: FakeDiscordConfig {
            disallow_privileged_intents: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let status = bot.wait_exit(WAIT).await.expect("the bot stops on its own");
    assert_eq!(status.code(), Some(1), "{}", bot.logs());
    let logs = bot.logs();
    let errors: Vec<&str> = logs.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{logs}");
    assert!(
        errors[0].contains("4014") && errors[0].contains("Message Content Intent"),
        "{logs}"
    );
}

#[tokio::test]
async fn while_discord_cannot_be_reached_each_retry_is_a_warning_with_its_back_off() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env: Vec<(String, String)> = [
        ("DISCORD_TOKEN", personae_testkit::bot::TOKEN.to_owned()),
        ("DISCORD_API_URL", format!("http://127.0.0.1:{port}")),
        (
            "DATABASE_PATH",
            dir.path().join("personae.db").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut bot = Process::start(&["run"], &env, dir.path()).expect("starts");
    let warnings = || {
        bot.logs()
            .into_iter()
            .filter(|l| l.contains("WARN") && l.contains("cannot reach Discord"))
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while warnings().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", bot.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = warnings();
    assert!(seen[0].contains("retry_in_secs=1"), "{seen:?}");
    assert!(seen[1].contains("retry_in_secs=2"), "{seen:?}");
    let status = bot.terminate(WAIT).await.expect("SIGTERM stops it");
    assert!(status.success(), "{status:?}");
}

async fn wait_for_log(bot: &Bot, what: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(line) = bot.logs().lines().find(|l| l.contains(what)) {
            return line.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line with {what:?}:\n{}",
            bot.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn start_up_and_every_answer_say_what_happened_in_one_info_line() {
    let bot = Bot::start_with(BotOptions {
        setup: vec![create_step("Aria", &["--alias", "bard"])],
        ..Default::default()
    })
    .await;
    let start = wait_for_log(&bot, "starting personae").await;
    for field in [
        "INFO",
        concat!("version=", env!("CARGO_PKG_VERSION")),
        "personae.db",
        "personalities=1",
        &format!("llm_base_url={}", bot.llm.base_url()),
        "llm_model=test-default-model",
    ] {
        assert!(start.contains(field), "{field} missing from: {start}");
    }
    wait_for_log(&bot, "the LLM endpoint answers").await;
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard hi"))
        .await;
    let answered = wait_for_log(&bot, "answered a message").await;
    for field in [
        "INFO",
        "personality=Aria",
        "server=8001",
        "channel=6001",
        "trigger=",
        "llm_ms=",
        "total_ms=",
    ] {
        assert!(answered.contains(field), "{field} missing from: {answered}");
    }
}

#[tokio::test]
async fn a_wrong_llm_url_or_model_is_a_warning_with_a_hint_and_the_bot_still_runs() {
    for case in ["url without /v1", "unknown model"] {
        let discord = FakeDiscord::start().await;
        let llm = FakeLlm::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut env = bot_env(&discord, &llm, &dir.path().join("personae.db"));
        let (var, value, hint) = match case {
            "url without /v1" => (
                "LLM_BASE_URL",
                llm.base_url().trim_end_matches("/v1").to_owned(),
                "ends in /v1",
            ),
            _ => ("LLM_MODEL", "no-such-model".to_owned(), "\"no-such-model\""),
        };
        env.push((var.to_owned(), value));
        let bot = Process::start(&["run"], &env, dir.path()).expect("starts");
        discord
            .wait_ready(WAIT)
            .await
            .expect("a probe is never fatal");
        let deadline = tokio::time::Instant::now() + WAIT;
        let warning = loop {
            if let Some(line) = bot.logs().into_iter().find(|l| l.contains(hint)) {
                break line;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{case}: {:?}",
                bot.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(warning.contains("WARN"), "{case}: {warning}");
    }
}

#[tokio::test]
async fn a_bot_in_no_server_logs_its_invite_link() {
    let bot = Bot::start_with(BotOptions {
        discord: FakeDiscordConfig {
            in_no_server: true,
            send_guild_create: false,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let line = wait_for_log(&bot, "invite it with").await;
    assert!(
        line.contains("https://discord.com/oauth2/authorize?client_id=9001&scope=bot+applications.commands&permissions=2684423168"),
        "{line}"
    );
}
