//! End to end: what a host runs the bot with — the health and metrics endpoints, `personae
//! backup` beside the running bot, upgrades, and the deployment files in `deploy/`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use personae_fakes::discord::{FakeDiscord, FakeDiscordConfig, MessageSpec, RequestMatcher};
use personae_fakes::llm::FakeLlm;
use personae_testkit::bot::{bot_env, create_step, Bot, BotOptions, Process, WAIT};
use personae_testkit::users::{personality, run, text_option};
use serde_json::Value;

/// The address the bot logged for its metrics endpoint (it was given port 0).
async fn metrics_address(logs: impl Fn() -> String) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let logs = logs();
        let found = logs
            .lines()
            .find(|l| l.contains("serving /healthz and /metrics"))
            .and_then(|l| l.split("addr=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        if let Some(addr) = found {
            return addr;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot never said where it serves metrics:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(addr: &str, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

/// Every sample of a Prometheus text exposition, by its name and labels as written
/// (`personae_commands_total{command="personality create",outcome="ok"}`).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(addr: &str) -> HashMap<String, f64> {
    let (status, content_type, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(content_type.contains("text"), "{content_type}");
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    samples(&body)
}

/// A sample that counts something, as a whole number (0 when absent).
fn value(samples: &HashMap<String, f64>, series: &str) -> i64 {
    samples.get(series).map_or(0, |v| v.round() as i64)
}

#[tokio::test]
async fn health_and_metrics_follow_what_the_bot_did() {
    let bot = Bot::start_with(BotOptions {
        discord: FakeDiscordConfig {
            // A heartbeat (and its latency) within the test.
            heartbeat_interval_ms: 300,
            ..Default::default()
        },
        env: vec![("METRICS_ADDR".into(), "127.0.0.1:0".into())],
        setup: vec![create_step("Aria", &["--alias", "bard"])],
    })
    .await;
    let addr = metrics_address(|| bot.logs()).await;

    let (status, content_type, body) = get(&addr, "/healthz").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({"status": "ok"})
    );
    assert_eq!(get(&addr, "/nothing").await.0, 404);

    let before = scrape(&addr).await;
    assert_eq!(value(&before, "personae_cached_personalities"), 1);
    assert_eq!(value(&before, "personae_dead_letters"), 0);

    // One command that works, one refused (the name is taken).
    let (_, created) = run(
        &bot,
        personality("7001", "create", vec![text_option("name", "Bo")]),
    )
    .await;
    assert!(created.to_string().contains("Created"), "{created}");
    let (_, refused) = run(
        &bot,
        personality("7001", "create", vec![text_option("name", "Aria")]),
    )
    .await;
    assert!(refused.to_string().contains("taken"), "{refused}");

    // Two mentions answered; the LLM fails the second one.
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard hello"))
        .await;
    bot.wait_webhook_executions(1).await;
    bot.llm.fail_with(500, 1);
    bot.discord
        .send_message(MessageSpec::new("6001", "7001", "alice", "@bard again"))
        .await;
    bot.wait_webhook_executions(2).await;

    // The heartbeat latency shows once a heartbeat was acknowledged.
    let deadline = tokio::time::Instant::now() + WAIT;
    let after = loop {
        let after = scrape(&addr).await;
        let answered = value(
            &after,
            "personae_messages_answered_total{trigger=\"mention\"}",
        );
        if answered >= 2
            && after.contains_key("personae_gateway_heartbeat_latency_seconds{shard=\"0\"}")
        {
            break after;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the metrics never caught up: {after:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        moved("personae_commands_total{command=\"personality create\",outcome=\"ok\"}"),
        1
    );
    assert_eq!(
        moved("personae_commands_total{command=\"personality create\",outcome=\"refused\"}"),
        1
    );
    assert_eq!(
        moved("personae_messages_answered_total{trigger=\"mention\"}"),
        2
    );
    assert_eq!(moved("personae_llm_request_duration_seconds_count"), 2);
    assert_eq!(moved("personae_llm_errors_total{kind=\"http_5xx\"}"), 1);
    assert_eq!(moved("personae_events_published_total"), 1, "Bo's creation");
    assert_eq!(
        moved("personae_event_handler_failures_total{kind=\"error\"}"),
        0
    );
    assert_eq!(value(&after, "personae_cached_personalities"), 2);
    assert_eq!(
        value(&after, "personae_gateway_shard_connected{shard=\"0\"}"),
        1
    );
    for subscriber in ["audit", "conversation-cleanup"] {
        let series = format!("personae_subscriber_lag_events{{subscriber=\"{subscriber}\"}}");
        assert!(after.contains_key(&series), "{series} in {after:#?}");
        assert_eq!(value(&after, &series), 0, "{series}");
    }
    assert_eq!(value(&after, "personae_dead_letters"), 0);

    // A backup beside the running bot holds both personalities and passes verify.
    let backup = bot.dir.path().join("backup.db");
    let out = bot.cli(&["backup", backup.to_str().unwrap()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("integrity ok") && stdout.contains("personalities 2"),
        "{stdout}"
    );
    bot.assert_valid_requests();
}

#[tokio::test]
async fn health_is_503_with_a_reason_while_the_gateway_is_not_connected() {
    // Gateway discovery fails, so the bot never reaches the (fake) gateway.
    let discord = FakeDiscord::start().await;
    discord.fail_next(
        RequestMatcher::route("GET", "/gateway"),
        500,
        serde_json::json!({"message": "down", "code": 0}),
        1000,
    );
    let llm = FakeLlm::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = bot_env(&discord, &llm, &dir.path().join("personae.db"));
    env.push(("METRICS_ADDR".into(), "127.0.0.1:0".into()));
    let mut process = Process::start(&["run"], &env, dir.path()).unwrap();
    let addr = metrics_address(|| process.logs().join("\n")).await;
    let (status, _, body) = get(&addr, "/healthz").await;
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "unavailable");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.contains("gateway"),
        "the reason names the gateway: {reason}"
    );
    // /metrics still answers: a scrape must work while the bot is unhealthy.
    assert!(scrape(&addr)
        .await
        .contains_key("personae_events_published_total"));
    assert!(process.terminate(WAIT).await.is_ok());
}

#[test]
fn a_metrics_address_in_use_stops_start_up_with_a_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_personae"))
        .arg("run")
        .env_clear()
        .env("DATABASE_PATH", dir.path().join("personae.db"))
        .env("DISCORD_TOKEN", "x")
        .env("METRICS_ADDR", &addr)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("METRICS_ADDR: cannot listen on {addr}")),
        "{stderr}"
    );
}

#[test]
fn an_older_personae_refuses_a_database_from_a_newer_one_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("personae.db");
    let personae = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_personae"))
            .args(args)
            .env_clear()
            .env("DATABASE_PATH", &db)
            .env("DISCORD_TOKEN", "x")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // A database of this personae (the first writing command creates it).
    let created = personae(&["personality", "create", "Aria", "--owner", "1", "--global"]);
    assert!(created.status.success(), "{created:?}");
    // What a newer personae leaves behind: a schema version this one doesn't know.
    let newer = 1000;
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    for args in [&["personality", "list"][..], &["run"]] {
        let out = personae(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} must refuse as the host's mistake (exit 1, no restart loop): {stderr}"
        );
        assert!(
            stderr.contains("schema version 1000, newer than this personae")
                && stderr.contains("upgrade personae"),
            "{args:?}: {stderr}"
        );
    }
    let version: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, newer, "the newer database is left as it was");
}

fn repository_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = repository_file("deploy/personae.service");
    for line in [
        "User=personae",
        "Wants=network-online.target",
        "After=network-online.target",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/personae",
        "PrivateTmp=yes",
        "RestartPreventExitStatus=1",
        "ExecStart=/usr/local/bin/personae run",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == line),
            "deploy/personae.service lacks {line}"
        );
    }
    let available = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    // verify also checks that ExecStart exists: point it at the binary just built.
    let dir = tempfile::tempdir().unwrap();
    let checked = dir.path().join("personae.service");
    std::fs::write(
        &checked,
        unit.replace(
            "ExecStart=/usr/local/bin/personae",
            &format!("ExecStart={}", env!("CARGO_BIN_EXE_personae")),
        ),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&checked)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A misspelt key or a bad value is only a warning (exit 0): any output fails too.
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
}

#[test]
fn the_container_builds_and_stores_as_the_systemd_unit_does() {
    let dockerfile = repository_file("Dockerfile");
    let compose = repository_file("compose.yaml");
    let readme = repository_file("README.md");
    let install = "cargo install --locked --path . --root /usr/local";
    assert!(
        dockerfile.contains(install),
        "Dockerfile builds with {install}"
    );
    assert!(readme.contains("cargo install --locked --path ."));
    for needed in [
        "USER personae",
        "WORKDIR /var/lib/personae",
        "VOLUME /var/lib/personae/data",
        "DATABASE_PATH=/var/lib/personae/data/personae.db",
        "HEALTHCHECK",
        "/usr/local/bin/personae",
    ] {
        assert!(dockerfile.contains(needed), "Dockerfile lacks {needed}");
    }
    assert!(compose.contains("/var/lib/personae/data"), "{compose}");
    let unit = repository_file("deploy/personae.service");
    assert!(unit.contains("DATABASE_PATH=/var/lib/personae/data/personae.db"));
}
