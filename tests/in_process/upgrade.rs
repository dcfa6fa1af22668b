//! Upgrading a database written by personae 0.1.0 (`tests/fixtures/personae-0.1.0.db`, from
//! before personalities had a home server): nothing is lost, and every personality becomes
//! global, which is what it was.

use chrono::Utc;
use personae::app::App;
use personae::application::{EventFilter, Listing, Registration, ServiceError};
use personae::domain::{Scope, ServerId};
use personae::routing::{route, Incoming, Trigger};
use personae_testkit::{alice, as_member_of, test_config};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/personae-0.1.0.db"
);

fn server(id: u64) -> Option<ServerId> {
    ServerId::new(id).ok()
}

#[tokio::test]
async fn a_database_of_0_1_0_upgrades_with_every_personality_global_and_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir);
    std::fs::copy(FIXTURE, &config.database_path).unwrap();
    // The fixture's auto-response conversation was active when it was written; on loading,
    // conversations idle for longer than any time-to-live stay out of memory. Make the
    // copy's conversation a minute old, as if the upgrade ran right after the old release.
    let minute_ago = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    rusqlite::Connection::open(&config.database_path)
        .unwrap()
        .execute(
            "UPDATE active_conversations SET last_active_at = ?1",
            [&minute_ago],
        )
        .unwrap();
    let app = App::start(&config).await.expect("the old database opens");

    // The personalities, their names, aliases and profiles.
    let all = app.service.list(Listing::default()).await.unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.name().as_str()).collect();
    assert_eq!(names, ["Aria", "Sage"]);
    assert!(all.iter().all(|p| p.scope() == Scope::Global));
    let aria = &all[0];
    let aliases: Vec<&str> = aria.aliases().iter().map(|a| a.as_str()).collect();
    assert_eq!(aliases, ["ari", "bard", "the singer"]);
    assert_eq!(
        aria.profile().model.as_ref().unwrap().as_str(),
        "gpt-4o-mini"
    );
    assert_eq!(aria.version(), 3);
    let sage = &all[1];
    for at in [None, server(8001), server(1234)] {
        let found = app.service.get(at, "wise one").await.unwrap();
        assert_eq!(found.id(), sage.id(), "Sage's alias from {at:?}");
    }

    // The events, unchanged, and still the history of the state.
    let events = app.service.events(EventFilter::default()).await.unwrap();
    assert_eq!(events.len(), 6);
    let report = app.service.verify().await.unwrap();
    assert!(report.is_ok(), "{report:?}");

    // Conversations, activations and auto-response, as routing sees them.
    let message = |server_id: u64, channel: u64, author: u64, content, replied_to| Incoming {
        author_id: author,
        from_bot_or_webhook: false,
        channel_id: channel,
        server: server(server_id),
        content,
        replied_to,
    };
    let routed = |incoming: &Incoming<'_>| route(incoming, &app.cache, &app.tracker, Utc::now());
    let reply = routed(&message(8001, 5001, 7, "go on", Some(900_001))).unwrap();
    assert_eq!(
        (reply.personality, reply.trigger),
        (aria.id(), Trigger::Reply)
    );
    let activated = routed(&message(8001, 5002, 7, "hello", None)).unwrap();
    assert_eq!(
        (activated.personality, activated.trigger),
        (sage.id(), Trigger::Activation)
    );
    let talking = routed(&message(8001, 5003, 444, "and then?", None)).unwrap();
    assert_eq!(
        (talking.personality, talking.trigger),
        (aria.id(), Trigger::AutoResponse)
    );
    let mention = routed(&message(9999, 7777, 7, "@the singer hi", None)).unwrap();
    assert_eq!(
        mention.personality,
        aria.id(),
        "global: reachable from any server"
    );

    // The removed personality's name is free; the global names are reserved everywhere.
    let member = as_member_of(&app, alice(), 8001);
    let gone = Registration {
        name: "Gone".into(),
        aliases: vec!["ghost".into()],
        ..Default::default()
    };
    app.service.register(&member, gone).await.unwrap();
    let taken = Registration {
        name: "Bard".into(),
        ..Default::default()
    };
    let refused = app.service.register(&member, taken).await;
    assert!(
        matches!(&refused, Err(ServiceError::NameTaken { holder, .. }) if holder.contains("global")),
        "{refused:?}"
    );
    // Nothing was delivered twice: the durable subscribers kept their checkpoints.
    let status = app.subscribers.statuses();
    assert!(status.iter().all(|s| s.checkpoint >= 6), "{status:?}");
    app.shutdown().await;
}
