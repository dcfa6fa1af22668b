//! The application service: events, transactions, ordering, caches, authorization.

use std::sync::{Arc, Mutex};

use personae::application::EventFilter;
use personae::application::{ProfileUpdate, Registration, ServiceError};
use personae::domain::EventType;
use personae::events::{handler_fn, EventEnvelope, Topic};
use personae_testkit::{admin, alice, bob, spawn_app};

fn recorder(app: &personae::app::App, topic: Topic) -> Arc<Mutex<Vec<EventEnvelope>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    app.bus.subscribe(
        topic,
        handler_fn("recorder", move |e: &EventEnvelope| {
            sink.lock().unwrap().push(e.clone());
            async { Ok(()) }
        }),
    );
    seen
}

#[tokio::test]
async fn all_five_events_are_stored_and_published_in_order_once_each() {
    let t = spawn_app().await;
    let all = recorder(&t.app, Topic::All);
    let created = recorder(&t.app, Topic::Type(EventType::PersonalityCreated));
    let ctx = t.as_user(alice());
    let service = &t.app.service;

    t.create("Aria", alice(), &["bard"]).await;
    service
        .update_profile(
            &ctx,
            "bard",
            ProfileUpdate {
                display_name: Some("Aria the Bard".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    service.add_alias(&ctx, "aria", "singer").await.unwrap();
    service.remove_alias(&ctx, "aria", "bard").await.unwrap();
    service.remove(&ctx, "singer").await.unwrap();

    let published: Vec<_> = all
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.sequence, e.event_type()))
        .collect();
    assert_eq!(
        published,
        vec![
            (1, EventType::PersonalityCreated),
            (2, EventType::PersonalityProfileUpdated),
            (3, EventType::PersonalityAliasAdded),
            (4, EventType::PersonalityAliasRemoved),
            (5, EventType::PersonalityRemoved),
        ]
    );
    assert_eq!(
        created.lock().unwrap().len(),
        1,
        "a typed subscriber gets only its type, once"
    );

    let stored = service.events(EventFilter::default()).await.unwrap();
    let stored_view: Vec<_> = stored
        .iter()
        .map(|e| (e.sequence, e.event_type()))
        .collect();
    assert_eq!(
        stored_view, published,
        "what was published is what was stored"
    );
    for (i, e) in stored.iter().enumerate() {
        assert_eq!(e.aggregate_version, i as i64 + 1);
        assert_eq!(e.actor, format!("user:{}", alice()));
        assert_eq!(e.schema_version, 1);
        assert_eq!(e.event_id.get_version_num(), 7, "event ids are UUID v7");
    }
}

#[tokio::test]
async fn events_are_published_only_after_the_commit() {
    let t = spawn_app().await;
    let path = t.db_path();
    let seen_in_db = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen_in_db);
    t.app.bus.subscribe(
        Topic::All,
        handler_fn("commit-checker", move |e: &EventEnvelope| {
            let sink = Arc::clone(&sink);
            let path = path.clone();
            let e = e.clone();
            async move {
                // Another connection sees only committed data.
                let conn = rusqlite::Connection::open(&path)?;
                let rows: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM events WHERE sequence = ?1",
                    [e.sequence],
                    |r| r.get(0),
                )?;
                let state: i64 =
                    conn.query_row("SELECT COUNT(*) FROM personalities", [], |r| r.get(0))?;
                sink.lock().unwrap().push((rows, state));
                Ok(())
            }
        }),
    );
    t.create("Aria", alice(), &[]).await;
    assert_eq!(*seen_in_db.lock().unwrap(), vec![(1, 1)]);
}

#[tokio::test]
async fn after_an_update_the_cache_answers_the_new_display_name_before_the_call_returns() {
    let t = spawn_app().await;
    t.create("Aria", alice(), &["bard"]).await;
    assert_eq!(
        t.app
            .cache
            .find(Some(personae_testkit::home()), "bard")
            .unwrap()
            .display_name
            .as_str(),
        "Aria"
    );
    t.app
        .service
        .update_profile(
            &t.as_user(alice()),
            "Aria",
            ProfileUpdate {
                display_name: Some("Lady Aria".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // No waiting: the handler ran before update_profile returned.
    assert_eq!(
        t.app
            .cache
            .find(Some(personae_testkit::home()), "@BARD")
            .unwrap()
            .display_name
            .as_str(),
        "Lady Aria"
    );
}

#[tokio::test]
async fn after_a_removal_nothing_of_the_personality_is_left_in_caches_or_conversation_tracking() {
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &["bard", "the singer"]).await;
    let other = t.create("Other", bob(), &["oth"]).await;
    let tracker = &t.app.tracker;
    tracker.record_message(5001, 6001, aria.id()).await.unwrap();
    tracker.record_message(5002, 6001, aria.id()).await.unwrap();
    tracker
        .record_message(5003, 6001, other.id())
        .await
        .unwrap();
    tracker
        .touch_conversation(alice().get(), 6001, aria.id())
        .await
        .unwrap();
    tracker
        .activate(6002, aria.id(), alice().get())
        .await
        .unwrap();
    tracker
        .activate(6003, other.id(), bob().get())
        .await
        .unwrap();

    t.app
        .service
        .remove(&t.as_user(alice()), "the singer")
        .await
        .unwrap();

    for reference in ["Aria", "bard", "the singer"] {
        assert!(
            t.app
                .cache
                .find(Some(personae_testkit::home()), reference)
                .is_none(),
            "{reference} still cached"
        );
    }
    assert!(t.app.cache.get(aria.id()).is_none());
    assert_eq!(
        t.app.cache.key_count(),
        2,
        "only Other's name and alias remain"
    );
    assert_eq!(tracker.personality_for_message(5001), None);
    assert_eq!(tracker.activation(6002), None);
    let zero = personae::conversation::Traces::default();
    assert_eq!(tracker.traces_in_memory(aria.id()), zero);
    assert_eq!(tracker.traces_in_database(aria.id()).await.unwrap(), zero);
    // The other personality is untouched.
    assert_eq!(tracker.personality_for_message(5003), Some(other.id()));
    assert_eq!(tracker.activation(6003), Some(other.id()));
    // The name and aliases are free at once.
    t.create("aria", bob(), &["BARD", "The Singer"]).await;
}

#[tokio::test]
async fn nobody_changes_a_personality_that_is_not_theirs_but_an_admin_can() {
    let t = spawn_app().await;
    t.create("Aria", alice(), &[]).await;
    let before = t.snapshot();
    let bob_ctx = t.as_user(bob());
    let service = &t.app.service;
    let update = || ProfileUpdate {
        prompt: Some("Obey Bob.".into()),
        ..Default::default()
    };
    let refusals = [
        service
            .update_profile(&bob_ctx, "Aria", update())
            .await
            .unwrap_err(),
        service
            .add_alias(&bob_ctx, "Aria", "bobs")
            .await
            .unwrap_err(),
        service
            .remove_alias(&bob_ctx, "Aria", "x")
            .await
            .unwrap_err(),
        service.remove(&bob_ctx, "Aria").await.unwrap_err(),
    ];
    for err in refusals {
        assert!(
            matches!(err, ServiceError::NotOwner(ref n) if n == "Aria"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "Only the owner of \"Aria\", the managers of its server or a bot admin can change it."
        );
    }
    assert_eq!(t.snapshot(), before, "refused commands change nothing");

    let admin_ctx = t.as_user(admin());
    service
        .update_profile(&admin_ctx, "Aria", update())
        .await
        .unwrap();
    service.remove(&admin_ctx, "Aria").await.unwrap();
}

#[tokio::test]
async fn names_and_aliases_are_unique_across_personalities_in_any_case() {
    let t = spawn_app().await;
    t.create("Aria", alice(), &["bard"]).await;
    let service = &t.app.service;
    let ctx = t.as_user(bob());
    let register = |name: &str, aliases: &[&str]| Registration {
        name: name.into(),
        aliases: aliases.iter().map(|a| (*a).to_string()).collect(),
        ..Default::default()
    };
    let before = t.snapshot();
    let err = service
        .register(&ctx, register("ARIA", &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::NameTaken { .. }), "{err}");
    let err = service
        .register(&ctx, register("Bard", &[]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::NameTaken { .. }),
        "a name may not equal another's alias: {err}"
    );
    let err = service
        .register(&ctx, register("Nova", &["Aria"]))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::AliasTaken { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "alias: \"aria\" is already taken by the personality \"Aria\"."
    );
    t.create("Nova", bob(), &[]).await;
    let err = service.add_alias(&ctx, "Nova", " BARD ").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "alias: \"bard\" is already taken by an alias of \"Aria\"."
    );
    let after: Vec<_> = t
        .snapshot()
        .into_iter()
        .filter(|l| !l.contains("Nova") && !l.contains("nova"))
        .collect();
    assert_eq!(after, before);
}

#[tokio::test]
async fn the_database_enforces_uniqueness_even_if_the_service_check_is_bypassed() {
    let t = spawn_app().await;
    t.create("Aria", alice(), &["bard"]).await;
    let conn = t.raw();
    let err = conn
        .execute(
            "INSERT INTO personality_keys (key, scope, personality_id, kind) \
             VALUES ('bard', '8001', 'x', 'alias')",
            [],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("UNIQUE") || err.to_string().contains("FOREIGN KEY"),
        "{err}"
    );
    let err = conn
        .execute("UPDATE events SET actor = 'forged'", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn lookups_by_name_alias_and_owner() {
    let t = spawn_app().await;
    t.create("Aria", alice(), &["bard"]).await;
    t.create("Nova", bob(), &[]).await;
    let service = &t.app.service;
    assert_eq!(
        service
            .get(Some(personae_testkit::home()), "@Bard")
            .await
            .unwrap()
            .name()
            .as_str(),
        "Aria"
    );
    assert!(matches!(
        service
            .get(Some(personae_testkit::home()), "nobody")
            .await
            .unwrap_err(),
        ServiceError::NotFound(_)
    ));
    assert_eq!(
        service
            .list(personae::application::Listing::default())
            .await
            .unwrap()
            .len(),
        2
    );
    let mine = service
        .list(personae::application::Listing {
            owner: Some(alice()),
            visible_in: None,
        })
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].aliases().len(), 1);
}

#[tokio::test]
async fn the_command_line_actor_must_name_an_owner() {
    let t = spawn_app().await;
    let err = t
        .app
        .service
        .register(
            &personae_testkit::cli_ctx(),
            Registration {
                name: "Aria".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::OwnerRequired));
}

#[tokio::test]
async fn state_and_events_commit_together_or_not_at_all() {
    let t = spawn_app().await;
    t.create("Aria", alice(), &[]).await;
    let before = t.snapshot();
    // Appending the event fails after the state was written in the same transaction.
    t.raw()
        .execute_batch("CREATE TRIGGER no_more_events BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END;")
        .unwrap();
    let ctx = t.as_user(alice());
    let err = t
        .app
        .service
        .update_profile(
            &ctx,
            "Aria",
            ProfileUpdate {
                prompt: Some("new".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        !err.is_user_error(),
        "a storage failure, not the user's: {err}"
    );
    let err = t
        .app
        .service
        .add_alias(&ctx, "Aria", "bard")
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Storage(_)), "{err}");
    assert_eq!(t.snapshot(), before, "no state without its event");
    assert!(
        t.app
            .cache
            .find(Some(personae_testkit::home()), "bard")
            .is_none(),
        "nothing was published"
    );
    assert_eq!(
        t.app
            .cache
            .find(Some(personae_testkit::home()), "Aria")
            .unwrap()
            .version,
        1
    );
}

#[tokio::test]
async fn events_another_process_commits_reach_the_bus_in_sequence_order_even_between_the_bots_own()
{
    let t = spawn_app().await;
    let all = recorder(&t.app, Topic::All);
    // The command line: a second application on the same file, as `personae personality …`.
    let cli = personae::app::App::start(&t.config).await.unwrap();
    let cli_create = |name: &'static str| {
        let service = Arc::clone(&cli.service);
        async move {
            let ctx = personae::application::RequestContext::new(service.actor_for(bob(), false))
                .in_server(Some(personae_testkit::home()));
            service
                .register(
                    &ctx,
                    Registration {
                        name: name.into(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap()
        }
    };

    t.create("Aria", alice(), &[]).await;
    cli_create("Bran").await;
    // The bot commits before it polls for other processes' events: Bran's event comes first.
    t.create("Cora", alice(), &[]).await;
    let sequences = |seen: &Arc<Mutex<Vec<EventEnvelope>>>| {
        seen.lock()
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect::<Vec<_>>()
    };
    assert_eq!(sequences(&all), vec![1, 2, 3]);
    assert!(
        t.app
            .cache
            .find(Some(personae_testkit::home()), "bran")
            .is_some(),
        "the bot's cache knows the personality the command line made"
    );
    assert_eq!(
        t.app.service.publish_external_events().await.unwrap(),
        0,
        "nothing is published twice"
    );

    cli_create("Dara").await;
    assert_eq!(t.app.service.publish_external_events().await.unwrap(), 1);
    assert_eq!(sequences(&all), vec![1, 2, 3, 4]);
    assert!(t
        .app
        .cache
        .find(Some(personae_testkit::home()), "dara")
        .is_some());
    assert_eq!(t.app.service.last_published(), 4);
    cli.shutdown().await;
}

#[tokio::test]
async fn a_command_abandoned_after_its_commit_is_still_published_and_holds_up_no_later_one() {
    let t = spawn_app().await;
    let all = recorder(&t.app, Topic::All);
    // Keep the database thread busy so that the next command's work waits in its queue.
    let db = t.app.db.clone();
    let busy = tokio::spawn(async move {
        db.call(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            Ok(())
        })
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    let ctx = t.as_user(alice());
    let registration = Registration {
        name: "Aria".into(),
        ..Default::default()
    };
    // The caller stops waiting before the commit (a cancelled interaction, a time-out).
    let abandoned = tokio::time::timeout(
        std::time::Duration::ZERO,
        t.app.service.register(&ctx, registration),
    )
    .await;
    assert!(abandoned.is_err(), "the command was still waiting");
    busy.await.unwrap().unwrap();

    let next = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        t.create("Bran", alice(), &[]),
    )
    .await;
    assert!(next.is_ok(), "the next command was held up");
    let published: Vec<_> = all.lock().unwrap().iter().map(|e| e.sequence).collect();
    assert_eq!(
        published,
        vec![1, 2],
        "the abandoned command committed and was published first"
    );
    assert!(t
        .app
        .cache
        .find(Some(personae_testkit::home()), "aria")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_abandoned_while_waiting_for_its_turn_to_publish_is_still_published() {
    let t = spawn_app().await;
    let all = recorder(&t.app, Topic::All);
    // A handler that holds up the first event's publication until the gate opens.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = Arc::clone(&gate);
    t.app.bus.subscribe(
        Topic::All,
        handler_fn("gate", move |e: &EventEnvelope| {
            let held = Arc::clone(&held);
            let first = e.sequence == 1;
            async move {
                if first {
                    let _ = held.acquire().await;
                }
                Ok(())
            }
        }),
    );
    let ctx = t.as_user(alice());
    let service = Arc::clone(&t.app.service);
    let first = tokio::spawn({
        let ctx = ctx.clone();
        async move {
            let aria = Registration {
                name: "Aria".into(),
                ..Default::default()
            };
            service.register(&ctx, aria).await
        }
    });
    // Bran commits (sequence 2), then waits for Aria's publication; its caller gives up.
    let bran = Registration {
        name: "Bran".into(),
        ..Default::default()
    };
    let abandoned = tokio::time::timeout(
        std::time::Duration::from_millis(300),
        t.app.service.register(&ctx, bran),
    )
    .await;
    assert!(abandoned.is_err(), "Bran's command was still waiting");
    assert_eq!(
        t.app.service.last_published(),
        0,
        "nothing published while the gate is shut"
    );
    gate.add_permits(1);
    first.await.unwrap().unwrap();

    let next = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        t.create("Cora", alice(), &[]),
    )
    .await;
    assert!(next.is_ok(), "the next command was held up");
    let published: Vec<_> = all.lock().unwrap().iter().map(|e| e.sequence).collect();
    assert_eq!(
        published,
        vec![1, 2, 3],
        "Bran's event was published in its turn"
    );
    assert!(t
        .app
        .cache
        .find(Some(personae_testkit::home()), "bran")
        .is_some());
}
