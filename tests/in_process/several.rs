//! Routing a message that mentions several personalities.

use chrono::Utc;
use personae::routing::{further_mentions, route, Incoming, Trigger};
use personae_testkit::{alice, home, spawn_app};

fn incoming(content: &str) -> Incoming<'_> {
    Incoming {
        author_id: alice().get(),
        from_bot_or_webhook: false,
        channel_id: 6001,
        server: Some(home()),
        content,
        replied_to: None,
    }
}

#[tokio::test]
async fn further_mentions_follow_the_first_in_order_each_once_up_to_the_limit() {
    let t = spawn_app().await;
    let home_ctx = personae_testkit::as_member_of(&t.app, alice(), home().get());
    let mut ids = Vec::new();
    for name in ["Aria", "Bard", "Cleo", "Dora"] {
        let registration = personae::application::Registration {
            name: name.to_owned(),
            ..Default::default()
        };
        ids.push(
            t.app
                .service
                .register(&home_ctx, registration)
                .await
                .unwrap()
                .id(),
        );
    }
    let (cache, tracker) = (&t.app.cache, &t.app.tracker);

    let message = incoming("@bard @aria, @bard and @cleo and @dora: thoughts? me@aria.example");
    let first = route(&message, cache, tracker, Utc::now()).unwrap();
    assert_eq!(first.personality, ids[1]);
    let further = further_mentions(&message, &first, cache, 3);
    let further_ids: Vec<_> = further.iter().map(|r| r.personality).collect();
    assert_eq!(
        further_ids,
        [ids[0], ids[2]],
        "Aria then Cleo; Bard once; three in all"
    );
    assert!(further.iter().all(|r| r.trigger == Trigger::Mention));
    let range = further[0].mention.clone().unwrap();
    assert_eq!(&message.content[range], "@aria");

    // One mention, or a limit of one: nobody else.
    let single = incoming("@aria hello");
    let first = route(&single, cache, tracker, Utc::now()).unwrap();
    assert!(further_mentions(&single, &first, cache, 3).is_empty());
    let first = route(&message, cache, tracker, Utc::now()).unwrap();
    assert!(further_mentions(&message, &first, cache, 1).is_empty());
    // An '@' glued to an alias starts no mention, as in the whole text.
    let glued = incoming("@aria@bard hi");
    let first = route(&glued, cache, tracker, Utc::now()).unwrap();
    assert!(further_mentions(&glued, &first, cache, 3).is_empty());
}
