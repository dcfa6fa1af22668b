//! Conversation tracking: memory follows the database, a removal forgets exactly the
//! removed personality, and nothing is tracked for a personality that is already gone.

use std::sync::Arc;
use std::time::Duration;

use personae::conversation::{Answered, ConversationTracker, Traces};
use personae::domain::PersonalityId;
use personae_testkit::{alice, bob, spawn_app, TestApp};

const CHANNEL: u64 = 6001;

/// An answer to `member`'s message 4999 in the home server, by revision 1 of the default model.
fn answered(member: u64) -> Answered {
    Answered {
        member,
        trigger_id: 4999,
        server: Some(personae_testkit::home().get()),
        revision: 1,
        model: "test-model".to_owned(),
        llm_ms: 5,
    }
}

/// Memory and database hold the same for `personality`: as counted in each (answer records
/// live in the database only), and as a tracker freshly loaded from the database sees it.
async fn assert_memory_matches_database(t: &TestApp, personality: PersonalityId) {
    let tracker = &t.app.tracker;
    let in_memory = tracker.traces_in_memory(personality);
    let in_database = tracker.traces_in_database(personality).await.unwrap();
    assert_eq!(
        in_memory,
        Traces {
            answers: 0,
            ..in_database
        }
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
        .record_answer(
            CHANNEL,
            aria.id(),
            vec![5002, 5003],
            answered(alice().get())
        )
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
            ..Traces::default()
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
        .record_answer(CHANNEL, aria.id(), vec![5001, 5002, 5003], answered(user))
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
            ..Traces::default()
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
        .record_answer(
            CHANNEL,
            aria.id(),
            vec![5001, 5002],
            answered(alice().get())
        )
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

#[tokio::test]
async fn an_answer_record_is_removed_with_its_personality() {
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &[]).await;
    let tracker = &t.app.tracker;
    assert!(tracker
        .record_answer(CHANNEL, aria.id(), vec![5001, 5002], answered(bob().get()))
        .await
        .unwrap());
    let record = tracker.answer_for_message(5002).await.unwrap().unwrap();
    assert_eq!(record.message_ids, vec![5001, 5002]);
    assert_eq!(record.answered, answered(bob().get()));
    assert_eq!(record.personality, aria.id());
    assert_eq!(
        tracker.traces_in_database(aria.id()).await.unwrap().answers,
        1
    );

    t.app
        .service
        .remove(&t.as_user(alice()), "Aria")
        .await
        .unwrap();
    assert_eq!(
        tracker.traces_in_database(aria.id()).await.unwrap(),
        Traces::default()
    );
    assert_eq!(tracker.answer_for_message(5001).await.unwrap(), None);
}

#[tokio::test]
async fn answer_records_are_pruned_with_their_messages_after_ninety_days() {
    use personae::conversation::{ConversationStore, SentMessages};

    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &[]).await;
    let ninety_days = Duration::from_secs(90 * 24 * 60 * 60);
    let now = chrono::Utc::now();
    for (message, age_days) in [(5001, 91), (5002, 89)] {
        let sent = SentMessages {
            personality: aria.id(),
            channel_id: CHANNEL,
            message_ids: vec![message],
            answering: Some(alice().get()),
            answer: Some(answered(alice().get())),
            at: now - chrono::Duration::days(age_days),
        };
        assert!(t.app.db.record_sent(sent).await.unwrap());
    }
    let tracker = &t.app.tracker;
    assert_eq!(
        tracker
            .prune_messages_older_than(ninety_days)
            .await
            .unwrap(),
        1
    );
    assert_eq!(tracker.answer_for_message(5001).await.unwrap(), None);
    assert!(tracker.answer_for_message(5002).await.unwrap().is_some());
    assert_eq!(
        tracker.traces_in_database(aria.id()).await.unwrap().answers,
        1
    );
}

#[tokio::test]
async fn a_regenerated_answer_keeps_its_record_with_new_facts_and_messages() {
    let t = spawn_app().await;
    let aria = t.create("Aria", alice(), &[]).await;
    let tracker = &t.app.tracker;
    assert!(tracker
        .record_answer(CHANNEL, aria.id(), vec![5001, 5002], answered(bob().get()))
        .await
        .unwrap());
    let mut record = tracker.answer_for_message(5001).await.unwrap().unwrap();
    record.message_ids = vec![5001];
    record.answered.revision = 2;
    record.answered.model = "other-model".to_owned();
    assert!(tracker.replace_answer(record.clone()).await.unwrap());
    assert_eq!(
        tracker.answer_for_message(5001).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(tracker.answer_for_message(5002).await.unwrap(), None);
    assert_eq!(tracker.personality_for_message(5002), None);
    assert_memory_matches_database(&t, aria.id()).await;

    tracker.forget_answer(record.id).await.unwrap();
    assert_eq!(tracker.answer_for_message(5001).await.unwrap(), None);
    assert_eq!(tracker.personality_for_message(5001), None);
    assert_eq!(
        tracker.traces_in_database(aria.id()).await.unwrap(),
        Traces {
            conversations: 1,
            ..Traces::default()
        },
        "the conversation with the member goes on"
    );
}
