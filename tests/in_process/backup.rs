//! `personae backup` under load: a copy taken while commands commit restores to a database
//! that passes every check and holds every change acknowledged before the copy started.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use personae::app::App;
use personae_testkit::{alice, bob, spawn_app, test_config};

/// Writers committing side by side with the backup.
const WRITERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_during_writes_restores_every_change_acknowledged_before_it_started() {
    let t = Arc::new(spawn_app().await);
    // Enough pages that the copy takes a while.
    for i in 0..300 {
        t.create_as_host(&format!("seed {i}"), alice(), &[]).await;
    }
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (t, acknowledged, stop) =
                (Arc::clone(&t), Arc::clone(&acknowledged), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("writer {w} n{i}");
                    let alias = format!("w{w}a{i}");
                    t.create_as_host(&name, if w % 2 == 0 { alice() } else { bob() }, &[&alias])
                        .await;
                    // Acknowledged: the command returned after its commit.
                    acknowledged.lock().unwrap().push(name);
                    i += 1;
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let target = t.dir.path().join("backup.db");
    let (source, copy_to) = (t.db_path(), target.clone());
    let contents = tokio::task::spawn_blocking(move || personae::store::backup(&source, &copy_to))
        .await
        .unwrap()
        .expect("the backup succeeds while commands commit");
    let during = acknowledged.lock().unwrap().len() - before.len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let after = acknowledged.lock().unwrap().len();
    assert!(
        after > before.len() + during,
        "writes went on after the backup"
    );
    assert!(!before.is_empty());
    assert!(contents.personalities >= 300 + before.len() as i64);

    // Restore: a stopped bot's database replaced by the copy, then started again.
    let restored_dir = tempfile::tempdir().unwrap();
    let config = test_config(&restored_dir);
    std::fs::copy(&target, &config.database_path).unwrap();
    let app = App::start(&config)
        .await
        .expect("the restored database opens");
    assert_eq!(app.db.integrity_check().await.unwrap(), "ok");
    let report = app.service.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.mismatches);
    for name in before
        .iter()
        .chain(["seed 0".to_owned(), "seed 299".to_owned()].iter())
    {
        assert!(
            app.cache
                .find(Some(personae_testkit::home()), name)
                .is_some(),
            "{name} was acknowledged before the backup started but is not in the copy"
        );
    }
    let stored = app.cache.len() as i64;
    assert_eq!(
        stored, contents.personalities,
        "the copy holds what it said"
    );
    assert!(
        app.subscribers
            .wait_caught_up(Duration::from_secs(10))
            .await
            .unwrap(),
        "the restored bot's subscribers catch up"
    );
    assert!(app.subscribers.dead_letters(None).await.unwrap().is_empty());
    app.shutdown().await;
    eprintln!(
        "backup: {} acknowledged before, {} while copying, {} after; copy holds {} personalities",
        before.len(),
        during,
        after - before.len() - during,
        contents.personalities
    );
}
