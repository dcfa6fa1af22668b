//! Durable delivery with the real application: crashes between commit and handling,
//! failing, panicking and hanging handlers, dead letters and their retry by an admin.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use personae::app::App;
use personae::application::ProfileUpdate;
use personae::events::{handler_fn, DurableConfig, EventEnvelope, EventLog, RetryPolicy, Topic};
use personae_testkit::{alice, spawn_app, test_config};

const CHILD_ENV: &str = "PERSONAE_TEST_CRASH_CHILD_DIR";
const EVENTS_BEFORE_KILL: usize = 5;

fn fast_retries() -> DurableConfig {
    DurableConfig {
        retry: RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        ..DurableConfig::default()
    }
}

/// Runs only as the child of the crash test: commits events while the "probe" subscriber
/// never finishes handling them, reports, and waits to be killed.
#[tokio::test]
#[ignore = "run by crash_between_commit_and_handling_loses_nothing as its child process"]
async fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = tempfile::TempDir::new_in(&dir).unwrap().keep();
    let mut config = test_config(&tempfile::tempdir().unwrap());
    config.database_path = std::path::PathBuf::from(&dir).join("personae.db");
    config.handler_timeout = Duration::from_secs(3600);
    let app = App::start(&config).await.unwrap();
    // The probe starts handling each event and never finishes: the process is "between
    // commit and handling" whenever it is killed.
    let hang = handler_fn("probe", |_e: &EventEnvelope| {
        std::future::pending::<anyhow::Result<()>>()
    });
    let app = Arc::new(app);
    app.subscribers
        .register_with(&[Topic::All], hang, fast_retries())
        .await
        .unwrap();
    let service = Arc::clone(&app.service);
    let ctx = personae::application::RequestContext::new(service.actor_for(alice(), false))
        .in_server(Some(personae_testkit::home()));
    tokio::spawn(async move {
        let _ = service
            .register(
                &ctx,
                personae::application::Registration {
                    name: "Aria".into(),
                    ..Default::default()
                },
            )
            .await;
    });
    // The first publish hangs in the probe, holding the publish order; commit the rest
    // directly in the database through a second app instance without the probe.
    let second = App::start(&config).await.unwrap();
    loop {
        let count: i64 = second
            .db
            .call(|c| Ok(c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?))
            .await
            .unwrap();
        if count >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ctx2 = personae::application::RequestContext::new(second.service.actor_for(alice(), false))
        .in_server(Some(personae_testkit::home()));
    for i in 0..EVENTS_BEFORE_KILL - 1 {
        second
            .service
            .update_profile(
                &ctx2,
                "Aria",
                ProfileUpdate {
                    prompt: Some(format!("v{i}")),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    println!("CHILD_DB {}", config.database_path.display());
    println!("COMMITTED {EVENTS_BEFORE_KILL}");
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn crash_between_commit_and_handling_loses_nothing() {
    let scratch = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability::crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, scratch.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut db = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print "test durability::crash_child ... " in front of the child's
            // first line.
            if let Some(at) = line.find("CHILD_DB ") {
                db = Some(line[at + "CHILD_DB ".len()..].to_owned());
            }
            if line.contains("COMMITTED") {
                let _ = tx.send(db.take());
            }
        }
    });
    let db_path = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the child commits and reports")
        .expect("db path");
    child.kill().unwrap(); // SIGKILL: no shutdown, no checkpoint flush
    child.wait().unwrap();

    let mut config = test_config(&scratch);
    config.database_path = db_path.into();
    let app = App::start(&config).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let probe = handler_fn("probe", move |e: &EventEnvelope| {
        sink.lock().unwrap().push(e.sequence);
        async { Ok(()) }
    });
    // Registering catches up from the probe's checkpoint before it returns.
    let subscriber = app
        .subscribers
        .register_with(&[Topic::All], probe, fast_retries())
        .await
        .unwrap();
    let expected: Vec<i64> = (1..=EVENTS_BEFORE_KILL as i64).collect();
    assert_eq!(
        *seen.lock().unwrap(),
        expected,
        "every committed event, once, in order"
    );
    assert_eq!(subscriber.checkpoint(), EVENTS_BEFORE_KILL as i64);
    assert!(
        app.subscribers
            .wait_caught_up(Duration::from_secs(10))
            .await
            .unwrap(),
        "the real subscribers catch up too"
    );
    assert!(app.db.dead_letters(None).await.unwrap().is_empty());
    app.shutdown().await;
}

/// A log sink for one test (the runtime is single-threaded, so every task logs here).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn failing_panicking_and_hanging_handlers_end_as_dead_letters_and_the_command_still_succeeds()
{
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let t = spawn_app().await;
    let app = &t.app;
    let errors = handler_fn("always-errors", |_e: &EventEnvelope| async {
        Err(anyhow::anyhow!("boom"))
    });
    let panics = handler_fn("always-panics", |_e: &EventEnvelope| async {
        panic!("handler panicked on purpose");
        #[allow(unreachable_code)]
        Ok(())
    });
    let hangs = handler_fn("always-hangs", |_e: &EventEnvelope| {
        std::future::pending::<anyhow::Result<()>>()
    });
    let healthy_ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&healthy_ran);
    let healthy = handler_fn("healthy", move |_e: &EventEnvelope| {
        flag.store(true, Ordering::SeqCst);
        async { Ok(()) }
    });
    let failing: [std::sync::Arc<dyn personae::events::EventHandler>; 3] = [errors, panics, hangs];
    for h in failing {
        app.subscribers
            .register_with(&[Topic::All], h, fast_retries())
            .await
            .unwrap();
    }
    app.subscribers
        .register_with(&[Topic::All], healthy, fast_retries())
        .await
        .unwrap();

    let created = t.create("Aria", alice(), &["bard"]).await;
    assert!(
        healthy_ran.load(Ordering::SeqCst),
        "the other handlers still ran"
    );
    assert!(
        app.cache
            .find(Some(personae_testkit::home()), "bard")
            .is_some(),
        "the cache handler still ran"
    );
    assert_eq!(created.version(), 1);
    let stats = app.bus.stats();
    assert!(
        stats.handler_failures() >= 3,
        "failures are counted: {stats:?}"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let letters = app.db.dead_letters(None).await.unwrap();
        let mut names: Vec<_> = letters.iter().map(|d| d.subscriber.clone()).collect();
        names.sort();
        if names == ["always-errors", "always-hangs", "always-panics"] {
            for d in &letters {
                assert_eq!(d.sequence, 1);
                assert_eq!(d.attempts, 3, "retried up to the policy's attempts: {d:?}");
            }
            let panic = letters
                .iter()
                .find(|d| d.subscriber == "always-panics")
                .unwrap();
            assert!(
                panic.last_error.contains("panicked on purpose"),
                "{panic:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead letters after the retries: {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let event = &t
        .app
        .service
        .events(personae::application::EventFilter::default())
        .await
        .unwrap()[0];
    for name in ["always-errors", "always-panics", "always-hangs"] {
        let line = logged
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no log line for {name}:\n{logged}"));
        assert!(line.contains(&event.event_id.to_string()), "{line}");
        assert!(line.contains(&event.correlation_id), "{line}");
    }
}

#[tokio::test]
async fn an_admin_retries_a_dead_letter_from_the_command_line_and_it_is_delivered() {
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &[]).await;
    t.app
        .tracker
        .record_message(5001, 6001, aria.id())
        .await
        .unwrap();
    // The conversation cleanup can't delete while this trigger exists: a real handler
    // failing on a real fault.
    t.raw()
        .execute_batch(
            "CREATE TRIGGER broken BEFORE DELETE ON conversation_messages \
             BEGIN SELECT RAISE(ABORT, 'disk trouble'); END;",
        )
        .unwrap();
    t.app
        .service
        .remove(&t.as_user(alice()), "Aria")
        .await
        .expect("the command succeeds anyway");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let letter = loop {
        let letters = t
            .app
            .db
            .dead_letters(Some("conversation-cleanup"))
            .await
            .unwrap();
        if let Some(letter) = letters.into_iter().next() {
            break letter;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failing cleanup was never parked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(letter.last_error.contains("disk trouble"), "{letter:?}");
    assert!(
        letter.attempts >= 2,
        "it was retried before being parked: {letter:?}"
    );
    t.app.shutdown().await;

    t.raw().execute_batch("DROP TRIGGER broken;").unwrap();
    let listed = Command::new(env!("CARGO_BIN_EXE_personae"))
        .args(["events", "dead-letters"])
        .env("DATABASE_PATH", t.db_path())
        .current_dir(t.dir.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success()
            && listing.contains("conversation-cleanup")
            && listing.contains("disk trouble"),
        "{listing}"
    );

    let retried = Command::new(env!("CARGO_BIN_EXE_personae"))
        .args(["events", "dead-letters", "--retry"])
        .env("DATABASE_PATH", t.db_path())
        .current_dir(t.dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&retried.stdout);
    assert!(
        retried.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    assert!(out.contains("1 delivered"), "{out}");
    let conn = t.raw();
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM conversation_messages", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(left, 0, "the retried cleanup ran");
    let letters: i64 = conn
        .query_row("SELECT COUNT(*) FROM dead_letters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(letters, 0, "a delivered dead letter is gone");
}
