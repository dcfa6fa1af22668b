//! Conversation tracking: memory follows the database, a removal forgets exactly the
//! removed personality, and nothing is tracked for a personality that is already gone.

use std::sync::Arc;
use std::time::Duration;

use personae::conversation::{ConversationTracker, Traces};
use personae::domain::PersonalityId;
use personae_testkit::{alice, bob, spawn_app, TestApp};

const CHANNEL: u64 = 6001;

/// Memory and database hold the same for `personality`: as counted in each, and as a
/// tracker freshly loaded from the database sees it.
async fn assert_memory_matches_database(t: &TestApp, personality: PersonalityId) {
    let tracker = &t.app.tracker;
    let in_memory = tracker.traces_in_memory(personality);
    assert_eq!(
        in_memory,
        tracker.traces_in_database(personality).await.unwrap()
    );
    let reloaded = ConversationTracker::load(Arc::new(t.app.db.clone()))
        .await
        .unwrap();
    assert_eq!(reloaded.traces_in_memory(personality), in_memory);
}

#[tokio::test]
async fn nothing_is_tracked_for_a_personality_removed_while_it_answered() {
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &[]).await;
    t.app
        .service
        .remove(&t.as_user(alice()), "Aria")
        .await
        .unwrap();
    // Its answer arrives after the removal and its clean-up.
    let tracker = &t.app.tracker;
    assert!(!tracker
        .record_message(5001, CHANNEL, aria.id())
        .await
        .unwrap());
    assert!(!tracker
        .touch_conversation(alice().get(), CHANNEL, aria.id())
        .await
        .unwrap());
    assert!(!tracker
        .activate(6002, aria.id(), alice().get())
        .await
        .unwrap());
    assert!(!tracker
        .record_answer(alice().get(), CHANNEL, aria.id(), vec![5002, 5003])
        .await
        .unwrap());

    for message in [5001, 5002, 5003] {
        assert_eq!(tracker.personality_for_message(message), None);
    }
    assert_eq!(tracker.activation(6002), None);
    assert_eq!(tracker.traces_in_memory(aria.id()), Traces::default());
    assert_memory_matches_database(&t, aria.id()).await;
}

#[tokio::test]
async fn memory_follows_the_database_through_every_kind_of_change() {
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &[]).await;
    let bard = t.create("Bard", bob(), &[]).await;
    let tracker = &t.app.tracker;
    let user = alice().get();

    assert!(tracker
        .record_message(5001, CHANNEL, aria.id())
        .await
        .unwrap());
    assert!(tracker
        .record_message(5002, CHANNEL, bard.id())
        .await
        .unwrap());
    assert!(tracker
        .touch_conversation(user, CHANNEL, aria.id())
        .await
        .unwrap());
    assert!(tracker.activate(6002, aria.id(), user).await.unwrap());
    // The conversation and the activation move to Bard: Aria no longer holds them.
    assert!(tracker
        .touch_conversation(user, CHANNEL, bard.id())
        .await
        .unwrap());
    assert!(tracker.activate(6002, bard.id(), user).await.unwrap());
    for personality in [aria.id(), bard.id()] {
        assert_memory_matches_database(&t, personality).await;
    }
    assert_eq!(
        tracker.traces_in_memory(aria.id()),
        Traces {
            messages: 1,
            conversations: 0,
            activations: 0
        }
    );

    // Removing Aria forgets her message and leaves all of Bard's.
    let forgotten = tracker.forget_personality(aria.id()).await.unwrap();
    assert_eq!(forgotten.messages, 1);
    assert_eq!(tracker.personality_for_message(5001), None);
    assert_eq!(tracker.personality_for_message(5002), Some(bard.id()));
    assert_eq!(tracker.activation(6002), Some(bard.id()));
    assert_eq!(
        tracker.active_conversation(user, CHANNEL, chrono::Utc::now(), Duration::from_secs(60)),
        Some(bard.id())
    );

    assert!(tracker.end_conversation(user, CHANNEL).await.unwrap());
    assert_eq!(tracker.deactivate(6002).await.unwrap(), Some(bard.id()));
    assert_eq!(
        tracker
            .prune_messages_older_than(Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert_eq!(tracker.personality_for_message(5002), None);
    for personality in [aria.id(), bard.id()] {
        assert_eq!(tracker.traces_in_memory(personality), Traces::default());
        assert_memory_matches_database(&t, personality).await;
    }
    // Nothing names Bard any more: forgetting it deletes nothing.
    let forgotten = tracker.forget_personality(bard.id()).await.unwrap();
    assert_eq!(forgotten, Traces::default());
}

#[tokio::test]
async fn an_answer_in_several_messages_is_recorded_with_its_conversation() {
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &[]).await;
    let tracker = &t.app.tracker;
    let user = alice().get();
    assert!(tracker
        .record_answer(user, CHANNEL, aria.id(), vec![5001, 5002, 5003])
        .await
        .unwrap());
    for message in [5001, 5002, 5003] {
        assert_eq!(tracker.personality_for_message(message), Some(aria.id()));
        assert_eq!(tracker.channel_of_message(message), Some(CHANNEL));
    }
    assert_eq!(
        tracker.active_conversation(user, CHANNEL, chrono::Utc::now(), Duration::from_secs(60)),
        Some(aria.id())
    );
    assert_eq!(
        tracker.traces_in_memory(aria.id()),
        Traces {
            messages: 3,
            conversations: 1,
            activations: 0
        }
    );
    assert_memory_matches_database(&t, aria.id()).await;
}

#[tokio::test]
async fn elsewhere_a_removal_deletes_rows_the_bot_wrote_after_this_process_loaded() {
    // This process (as the command line) loaded the tracking at its start; the bot, another
    // process, recorded a message since.
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &[]).await;
    let bot = ConversationTracker::load(Arc::new(personae_testkit::open_db(&t.db_path())))
        .await
        .unwrap();
    assert!(bot.record_message(5001, CHANNEL, aria.id()).await.unwrap());
    assert_eq!(t.app.tracker.traces_in_memory(aria.id()), Traces::default());

    t.app
        .service
        .remove(&t.as_user(alice()), "Aria")
        .await
        .unwrap();
    assert_eq!(
        t.app.tracker.traces_in_database(aria.id()).await.unwrap(),
        Traces::default(),
        "the clean-up deleted the row it had not seen"
    );
}

#[tokio::test]
async fn concurrent_changes_to_one_conversation_leave_memory_as_they_left_the_table() {
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &[]).await;
    let bard = t.create("Bard", bob(), &[]).await;
    let tracker = std::sync::Arc::clone(&t.app.tracker);
    let user = alice().get();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let tracker = std::sync::Arc::clone(&tracker);
        let personality = if i % 2 == 0 { aria.id() } else { bard.id() };
        tasks.push(tokio::spawn(async move {
            tracker
                .touch_conversation(user, CHANNEL, personality)
                .await
                .unwrap();
            tracker
                .activate(6002 + i % 3, personality, user)
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for personality in [aria.id(), bard.id()] {
        assert_memory_matches_database(&t, personality).await;
    }
    let reloaded = ConversationTracker::load(Arc::new(t.app.db.clone()))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let ttl = Duration::from_secs(60);
    assert_eq!(
        tracker.active_conversation(user, CHANNEL, now, ttl),
        reloaded.active_conversation(user, CHANNEL, now, ttl)
    );
    for channel in 6002..6005 {
        assert_eq!(tracker.activation(channel), reloaded.activation(channel));
    }
}

#[tokio::test]
async fn the_command_line_loads_no_caches_and_its_removal_still_deletes_every_row() {
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &["bard"]).await;
    let tracker = &t.app.tracker;
    assert!(tracker
        .record_answer(alice().get(), CHANNEL, aria.id(), vec![5001, 5002])
        .await
        .unwrap());
    assert!(tracker
        .activate(6002, aria.id(), alice().get())
        .await
        .unwrap());

    let cli = personae::app::App::start_command_line(&t.config)
        .await
        .unwrap();
    assert_eq!(cli.cache.key_count(), 0, "no personality read into memory");
    assert_eq!(cli.tracker.traces_in_memory(aria.id()), Traces::default());
    cli.service
        .remove(&personae_testkit::cli_ctx(), "bard")
        .await
        .unwrap();
    cli.shutdown().await;
    assert_eq!(
        tracker.traces_in_database(aria.id()).await.unwrap(),
        Traces::default(),
        "the rows the command line never loaded were deleted"
    );
}
