//! Running personae as a host does: one bot per database, private files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use personae_fakes::discord::FakeDiscordConfig;
use personae_testkit::bot::{Bot, BotOptions, Process, WAIT};

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
        .cli(&["personality", "create", "Nova", "--owner", "7001"])
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
            "umask 022; exec \"$0\" personality create Aria --owner 1",
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
