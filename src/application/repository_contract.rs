//! What every [`PersonalityRepository`] must do, checked the same way on each (the SQLite
//! store in `src/store`, the in-memory one the service's tests use).

use chrono::Utc;

use super::service::unit_of_work;
use super::{
    Actor, Change, ChangedSettings, Creator, Decide, DecideRestore, DecideSettings, EventFilter,
    Listing, PersonalityRepository, RequestContext, ServiceError, StoreError, VisibleIn,
};
use crate::domain::{
    AggregateId, Alias, DisplayName, EventType, MemberLimit, NewPersonality, Personality,
    PersonalityId, PersonalityName, Profile, ProfileChanges, Prompt, Scope, ServerId,
    ServerSettings, SettingChange, UserId,
};

fn owner(id: u64) -> UserId {
    UserId::new(id).unwrap()
}

fn server(id: u64) -> ServerId {
    ServerId::new(id).unwrap()
}

/// The server most checks happen in.
const HOME: u64 = 8001;

fn register(name: &str, owner_id: u64, aliases: &[&str]) -> Personality {
    register_in(Scope::Server(server(HOME)), name, owner_id, aliases)
}

fn register_in(scope: Scope, name: &str, owner_id: u64, aliases: &[&str]) -> Personality {
    let new = NewPersonality {
        card_extensions: None,
        name: PersonalityName::parse(name).unwrap(),
        owner_id: owner(owner_id),
        scope,
        profile: Profile {
            display_name: DisplayName::parse(name).unwrap(),
            avatar_url: None,
            prompt: Prompt::parse("Be kind.").unwrap(),
            model: None,
            nsfw: false,
            temperature: None,
            max_tokens: None,
        },
        aliases: aliases.iter().map(|a| Alias::parse(a).unwrap()).collect(),
    };
    Personality::register(PersonalityId::new(), new, Utc::now()).unwrap()
}

/// The personality's uncommitted events as one change, correlated by `correlation`.
fn change(personality: &mut Personality, correlation: &str) -> Change {
    let ctx = RequestContext {
        actor: Actor::User {
            id: owner(7),
            admin: false,
            server_manager: false,
        },
        server: Some(server(HOME)),
        correlation_id: correlation.into(),
        causation_id: Some(correlation.into()),
    };
    unit_of_work(&ctx, personality, None)
}

/// The personalities of `listing`, by name.
async fn names<R: PersonalityRepository>(r: &R, listing: Listing) -> Vec<String> {
    let listed = r.list(listing).await.unwrap();
    listed.into_iter().map(|p| p.name().to_string()).collect()
}

async fn saved<R: PersonalityRepository>(repository: &R, p: &mut Personality, correlation: &str) {
    repository.save(change(p, correlation)).await.unwrap();
}

/// Runs every check, each on a fresh repository from `make`.
pub(crate) async fn check<R: PersonalityRepository>(mut make: impl FnMut() -> R) {
    a_saved_personality_is_found_by_id_name_and_alias(&make()).await;
    events_get_consecutive_sequences_and_answer_filters(&make()).await;
    a_change_decided_on_a_stale_version_is_refused_and_stores_nothing(&make()).await;
    a_taken_key_is_refused_with_its_holder_and_stores_nothing(&make()).await;
    removing_an_alias_or_a_personality_frees_its_keys(&make()).await;
    a_change_is_decided_on_the_stored_state_and_a_refusal_stores_nothing(&make()).await;
    names_are_unique_per_server_and_global_names_everywhere(&make()).await;
    making_a_personality_global_moves_its_names_unless_another_server_uses_one(&make()).await;
    a_members_creations_are_held_to_the_servers_settings(&make()).await;
    a_servers_settings_are_stored_with_their_event_and_a_refusal_stores_nothing(&make()).await;
    a_removed_personality_is_found_with_its_taken_keys_and_restored_with_the_free_aliases(&make())
        .await;
    the_latest_removal_in_the_scope_is_found_and_its_name_holder_named(&make()).await;
    a_restore_is_stored_once_and_held_to_the_servers_settings(&make()).await;
}

fn alias(text: &str) -> Alias {
    Alias::parse(text).unwrap()
}

/// Registers, saves and removes a personality of `scope`; returns it as removed.
async fn removed_in<R: PersonalityRepository>(
    r: &R,
    scope: Scope,
    name: &str,
    owner_id: u64,
    aliases: &[&str],
) -> Personality {
    let mut p = register_in(scope, name, owner_id, aliases);
    saved(r, &mut p, "created").await;
    p.remove(Utc::now());
    saved(r, &mut p, "removed").await;
    p
}

/// Decides to look and refuse: `check` sees what the store found.
fn look(check: impl FnOnce(Option<super::Removed>) + Send + 'static) -> DecideRestore {
    Box::new(move |found| {
        check(found);
        Err(ServiceError::NothingToRestore("looked".into()))
    })
}

/// Decides to restore what the store found, without its taken aliases.
fn restore_found(correlation: &'static str) -> DecideRestore {
    Box::new(move |found| {
        let removed = found.expect("a removal to restore");
        let mut p = removed.personality;
        p.restore(&removed.taken_aliases, Utc::now())?;
        Ok(change(&mut p, correlation))
    })
}

async fn a_removed_personality_is_found_with_its_taken_keys_and_restored_with_the_free_aliases<
    R: PersonalityRepository,
>(
    r: &R,
) {
    let home = Scope::Server(server(HOME));
    let aria = removed_in(r, home, "Aria", 7, &["bard", "singer"]).await;
    let mut bard = register("Bard", 8, &[]);
    saved(r, &mut bard, "c3").await;
    let elsewhere = r
        .restore(
            Some(server(2)),
            "aria",
            look(|found| assert!(found.is_none())),
        )
        .await
        .unwrap();
    assert!(elsewhere.is_err());
    let id = aria.id();
    let looked = r
        .restore(
            Some(server(HOME)),
            "aria",
            look(move |found| {
                let removed = found.expect("Aria's removal");
                assert_eq!(removed.personality.id(), id);
                assert!(removed.personality.is_removed());
                assert_eq!(removed.personality.version(), 2);
                assert_eq!(removed.taken_aliases, [alias("bard")]);
                assert_eq!(removed.name_holder, None);
            }),
        )
        .await
        .unwrap();
    assert!(looked.is_err());
    assert_eq!(
        r.last_sequence().await.unwrap(),
        3,
        "a refusal stores nothing"
    );

    let (restored, events) = r
        .restore(Some(server(HOME)), "aria", restore_found("c4"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored.version(), 3);
    assert_eq!(restored.aliases(), [alias("singer")]);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].sequence, events[0].aggregate_version), (4, 3));
    assert_eq!(r.get(id).await.unwrap().as_ref(), Some(&restored));
    let holder_of = |key: &'static str| async move {
        r.find_by_key(Some(server(HOME)), key)
            .await
            .unwrap()
            .map(|p| p.id())
    };
    assert_eq!(holder_of("aria").await, Some(id));
    assert_eq!(holder_of("singer").await, Some(id));
    assert_eq!(holder_of("bard").await, Some(bard.id()));
    let again = r
        .restore(
            Some(server(HOME)),
            "aria",
            look(|found| assert!(found.is_none())),
        )
        .await
        .unwrap();
    assert!(again.is_err(), "restored since: nothing to restore");
    let snapshot = r.snapshot().await.unwrap();
    assert!(super::verify::verify(&snapshot).is_ok());
}

async fn the_latest_removal_in_the_scope_is_found_and_its_name_holder_named<
    R: PersonalityRepository,
>(
    r: &R,
) {
    let home = Scope::Server(server(HOME));
    removed_in(r, home, "Aria", 7, &["muse"]).await;
    let mut second = register("ARIA", 8, &[]);
    saved(r, &mut second, "c3").await;
    let looked = r
        .restore(
            Some(server(HOME)),
            "aria",
            look(|found| {
                let holder = found.expect("the first removal").name_holder;
                let holder = holder.expect("the second Aria holds the name");
                assert_eq!(
                    holder.describe(Some(server(HOME))),
                    "the personality \"ARIA\""
                );
            }),
        )
        .await
        .unwrap();
    assert!(looked.is_err());
    second.remove(Utc::now());
    saved(r, &mut second, "c4").await;
    let id = second.id();
    let looked = r
        .restore(
            Some(server(HOME)),
            "aria",
            look(move |found| {
                let removed = found.expect("the second removal");
                assert_eq!(removed.personality.id(), id, "the latest removal");
                assert_eq!(removed.name_holder, None);
            }),
        )
        .await
        .unwrap();
    assert!(looked.is_err());
    // A global personality's removal is found from any server and from none; a server's
    // only from that server.
    let sage = removed_in(r, Scope::Global, "Sage", 9, &[]).await;
    for at in [Some(server(3)), None] {
        let id = sage.id();
        let looked = r
            .restore(
                at,
                "sage",
                look(move |found| assert_eq!(found.map(|f| f.personality.id()), Some(id))),
            )
            .await
            .unwrap();
        assert!(looked.is_err());
    }
    let looked = r
        .restore(None, "aria", look(|found| assert!(found.is_none())))
        .await
        .unwrap();
    assert!(looked.is_err());
}

async fn a_restore_is_stored_once_and_held_to_the_servers_settings<R: PersonalityRepository>(
    r: &R,
) {
    let aria = removed_in(r, Scope::Server(server(HOME)), "Aria", 7, &[]).await;
    let filter = EventFilter {
        aggregate_id: Some(aria.id().into()),
        ..Default::default()
    };
    let history = r.events(filter).await.unwrap();
    let mut stale =
        Personality::replay(aria.id(), history.iter().map(|e| (&e.event, e.occurred_at))).unwrap();
    stale.restore(&[], Utc::now()).unwrap();

    let closed = SettingChange::MembersMayCreate(false);
    r.change_settings(server(HOME), set(vec![closed]))
        .await
        .unwrap()
        .unwrap();
    let by_member: DecideRestore = Box::new(|found| {
        let mut p = found.expect("Aria's removal").personality;
        p.restore(&[], Utc::now())?;
        Ok(Change {
            creator: Some(Creator::Member),
            ..change(&mut p, "c4")
        })
    });
    let refused = r.restore(Some(server(HOME)), "aria", by_member).await;
    assert!(
        matches!(refused, Err(StoreError::CreationClosed)),
        "{refused:?}"
    );
    assert_eq!(r.get(aria.id()).await.unwrap(), None);
    r.restore(Some(server(HOME)), "aria", restore_found("c5"))
        .await
        .unwrap()
        .unwrap();
    // The same removal restored a second time: the first restore came first.
    let refused = r.save(change(&mut stale, "c6")).await;
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    assert_eq!(r.last_sequence().await.unwrap(), 4);
    assert_eq!(r.get(aria.id()).await.unwrap().unwrap().version(), 3);
}

/// Decides to turn global personalities off (or on again) in the server.
fn toggle_globals() -> DecideSettings {
    Box::new(|current: ServerSettings| {
        let globals = SettingChange::Globals(!current.settings.globals);
        settings_change(&current, &[globals])
    })
}

/// Decides these changes to the server's settings.
fn set(changes: Vec<SettingChange>) -> DecideSettings {
    Box::new(move |current: ServerSettings| settings_change(&current, &changes))
}

fn settings_change(
    current: &ServerSettings,
    changes: &[SettingChange],
) -> Result<ChangedSettings, ServiceError> {
    let (next, event) = current.change(changes, Utc::now())?;
    let host = RequestContext::new(Actor::CommandLine);
    Ok(super::settings::unit_of_work(&host, next, event))
}

async fn a_servers_settings_are_stored_with_their_event_and_a_refusal_stores_nothing<
    R: PersonalityRepository,
>(
    r: &R,
) {
    let home = server(HOME);
    assert_eq!(
        r.settings(home).await.unwrap(),
        ServerSettings::defaults(home)
    );
    assert!(r.all_settings().await.unwrap().is_empty());
    let refused = r
        .change_settings(home, Box::new(|_| Err(ServiceError::NotServerManager)))
        .await
        .unwrap();
    assert!(matches!(refused, Err(ServiceError::NotServerManager)));
    assert_eq!(r.last_sequence().await.unwrap(), 0);

    for expected_version in 1..=2 {
        let (saved, events) = r
            .change_settings(home, toggle_globals())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(saved.version, expected_version);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].aggregate_id, AggregateId::ServerSettings(home));
        assert_eq!(r.settings(home).await.unwrap(), saved);
    }
    assert!(r.settings(home).await.unwrap().settings.globals);
    assert_eq!(r.settings(server(9)).await.unwrap().version, 0);
    let snapshot = r.snapshot().await.unwrap();
    assert_eq!(snapshot.settings.len(), 1);
    assert_eq!(snapshot.events.len(), 2);
    assert_eq!(r.all_settings().await.unwrap(), snapshot.settings);
}

async fn names_are_unique_per_server_and_global_names_everywhere<R: PersonalityRepository>(r: &R) {
    let (a, b) = (Scope::Server(server(1)), Scope::Server(server(2)));
    let mut aria_a = register_in(a, "Aria", 7, &["bard"]);
    let mut aria_b = register_in(b, "Aria", 8, &["bard"]);
    saved(r, &mut aria_a, "c1").await;
    saved(r, &mut aria_b, "c2").await;
    let found = |at: u64, key: &'static str| async move {
        r.find_by_key(Some(server(at)), key)
            .await
            .unwrap()
            .map(|p| p.id())
    };
    assert_eq!(found(1, "bard").await, Some(aria_a.id()));
    assert_eq!(found(2, "aria").await, Some(aria_b.id()));
    assert_eq!(found(3, "aria").await, None, "another server sees neither");
    assert_eq!(r.find_by_key(None, "aria").await.unwrap(), None);
    // A global name is reserved in every server, and a server's name keeps a global one out.
    let mut sage = register_in(Scope::Global, "Sage", 9, &["wise"]);
    saved(r, &mut sage, "c3").await;
    assert_eq!(found(3, "wise").await, Some(sage.id()));
    assert_eq!(
        r.find_by_key(None, "sage").await.unwrap().map(|p| p.id()),
        Some(sage.id())
    );
    let mut copy = register_in(a, "Wise", 7, &[]);
    let refused = r.save(change(&mut copy, "c4")).await;
    assert!(
        matches!(&refused, Err(StoreError::KeyTaken { key, holder }) if key == "wise" && holder.server.is_none()),
        "{refused:?}"
    );
    let mut global_bard = register_in(Scope::Global, "Bard", 9, &[]);
    let refused = r.save(change(&mut global_bard, "c5")).await;
    assert!(
        matches!(&refused, Err(StoreError::KeyTaken { key, holder }) if key == "bard" && holder.server.is_some()),
        "{refused:?}"
    );
    let visible = |at: u64| Listing {
        owner: None,
        visible_in: Some(VisibleIn {
            server: server(at),
            with_globals: true,
        }),
    };
    assert_eq!(names(r, visible(1)).await, ["Aria", "Sage"]);
    assert_eq!(names(r, visible(3)).await, ["Sage"]);
    let own_only = Listing {
        visible_in: Some(VisibleIn {
            server: server(1),
            with_globals: false,
        }),
        ..visible(1)
    };
    assert_eq!(names(r, own_only).await, ["Aria"]);
    assert_eq!(r.last_sequence().await.unwrap(), 3);
}

async fn making_a_personality_global_moves_its_names_unless_another_server_uses_one<
    R: PersonalityRepository,
>(
    r: &R,
) {
    let (a, b) = (Scope::Server(server(1)), Scope::Server(server(2)));
    let mut aria = register_in(a, "Aria", 7, &["singer"]);
    let mut cora = register_in(b, "Cora", 8, &["singer"]);
    let mut dell = register_in(a, "Dell", 7, &[]);
    for (p, c) in [(&mut aria, "c1"), (&mut cora, "c2"), (&mut dell, "c3")] {
        saved(r, p, c).await;
    }
    let make_global: Decide = Box::new(|found| {
        let mut p = found.expect("Aria");
        p.make_global(Utc::now())?;
        Ok(change(&mut p, "c4"))
    });
    let refused = r.change(Some(server(1)), "aria", make_global).await;
    assert!(
        matches!(&refused, Err(StoreError::KeyTaken { key, holder }) if key == "singer" && holder.server == Some(server(2))),
        "{refused:?}"
    );
    assert_eq!(r.find_by_key(Some(server(3)), "aria").await.unwrap(), None);
    let make_global: Decide = Box::new(|found| {
        let mut p = found.expect("Dell");
        p.make_global(Utc::now())?;
        Ok(change(&mut p, "c5"))
    });
    r.change(Some(server(1)), "dell", make_global)
        .await
        .unwrap()
        .unwrap();
    let seen_elsewhere = r
        .find_by_key(Some(server(3)), "dell")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen_elsewhere.scope(), Scope::Global);
    assert_eq!(
        r.get(dell.id()).await.unwrap().unwrap().scope(),
        Scope::Global
    );
}

async fn a_members_creations_are_held_to_the_servers_settings<R: PersonalityRepository>(r: &R) {
    let limit = SettingChange::MemberLimit(MemberLimit::new(2).unwrap());
    r.change_settings(server(HOME), set(vec![limit]))
        .await
        .unwrap()
        .unwrap();
    let with_limit = |p: &mut Personality, c: &str| Change {
        creator: Some(Creator::Member),
        ..change(p, c)
    };
    for (i, name) in ["One", "Two"].into_iter().enumerate() {
        let mut p = register(name, 7, &[]);
        r.save(with_limit(&mut p, &format!("c{i}"))).await.unwrap();
    }
    let mut elsewhere = register_in(Scope::Server(server(2)), "Three", 7, &[]);
    r.save(with_limit(&mut elsewhere, "c3")).await.unwrap();
    let mut other_owner = register("Four", 8, &[]);
    r.save(with_limit(&mut other_owner, "c4")).await.unwrap();
    let mut third = register("Five", 7, &[]);
    let refused = r.save(with_limit(&mut third, "c5")).await;
    assert!(
        matches!(refused, Err(StoreError::OwnerLimit(2))),
        "{refused:?}"
    );
    assert_eq!(r.get(third.id()).await.unwrap(), None);
    assert_eq!(r.last_sequence().await.unwrap(), 5);

    let closed = SettingChange::MembersMayCreate(false);
    r.change_settings(server(HOME), set(vec![closed]))
        .await
        .unwrap()
        .unwrap();
    let mut by_member = register("Six", 9, &[]);
    let refused = r.save(with_limit(&mut by_member, "c6")).await;
    assert!(
        matches!(refused, Err(StoreError::CreationClosed)),
        "{refused:?}"
    );
    let mut by_manager = register("Six", 9, &[]);
    let as_manager = Change {
        creator: Some(Creator::ServerManager),
        ..change(&mut by_manager, "c7")
    };
    r.save(as_manager).await.unwrap();
    let mut by_admin = register("Seven", 7, &[]);
    r.save(change(&mut by_admin, "c8")).await.unwrap();
    assert_eq!(r.last_sequence().await.unwrap(), 8);
}

async fn a_change_is_decided_on_the_stored_state_and_a_refusal_stores_nothing<
    R: PersonalityRepository,
>(
    r: &R,
) {
    let mut aria = register("Aria", 7, &["bard"]);
    saved(r, &mut aria, "c1").await;
    let mut bran = register("Bran", 8, &[]);
    saved(r, &mut bran, "c2").await;
    // Found by an alias, changed, stored with its event.
    let decide: Decide = Box::new(|found| {
        let mut p = found.expect("found by its alias");
        p.add_alias(Alias::parse("singer").unwrap(), Utc::now())?;
        Ok(change(&mut p, "c3"))
    });
    let (changed, events) = r
        .change(Some(server(HOME)), "bard", decide)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.version(), 2);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].sequence, 3);
    assert_eq!(
        r.find_by_key(Some(server(HOME)), "singer")
            .await
            .unwrap()
            .unwrap()
            .id(),
        aria.id()
    );
    // Nobody has the key: `decide` is told so, and its refusal comes back as it is.
    let nobody: Decide = Box::new(|found| {
        assert!(found.is_none());
        Err(ServiceError::NotFound("nobody".into()))
    });
    let refused = r
        .change(Some(server(HOME)), "nobody", nobody)
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(ServiceError::NotFound(_))),
        "{refused:?}"
    );
    // A refusal after looking stores nothing.
    let refuse: Decide = Box::new(|_| Err(ServiceError::NotOwner("Aria".into())));
    assert!(r
        .change(Some(server(HOME)), "aria", refuse)
        .await
        .unwrap()
        .is_err());
    // A key another personality holds is refused, and nothing is stored.
    let take: Decide = Box::new(|found| {
        let mut p = found.expect("Bran");
        p.add_alias(Alias::parse("singer").unwrap(), Utc::now())?;
        Ok(change(&mut p, "c4"))
    });
    let taken = r.change(Some(server(HOME)), "bran", take).await;
    assert!(
        matches!(taken, Err(StoreError::KeyTaken { .. })),
        "{taken:?}"
    );
    assert_eq!(r.last_sequence().await.unwrap(), 3);
    assert_eq!(r.get(bran.id()).await.unwrap().unwrap().version(), 1);
}

async fn a_saved_personality_is_found_by_id_name_and_alias<R: PersonalityRepository>(r: &R) {
    let mut aria = register("Aria", 7, &["bard", "the singer"]);
    let mut bran = register("bran", 8, &[]);
    saved(r, &mut aria, "c1").await;
    saved(r, &mut bran, "c2").await;
    assert_eq!(r.get(aria.id()).await.unwrap().as_ref(), Some(&aria));
    for key in ["aria", "bard", "the singer"] {
        assert_eq!(
            r.find_by_key(Some(server(HOME)), key)
                .await
                .unwrap()
                .as_ref(),
            Some(&aria),
            "{key}"
        );
    }
    assert_eq!(
        r.find_by_key(Some(server(HOME)), "nobody").await.unwrap(),
        None
    );
    let of = |id: u64| Listing {
        owner: Some(owner(id)),
        visible_in: None,
    };
    assert_eq!(names(r, Listing::default()).await, ["Aria", "bran"]);
    assert_eq!(names(r, of(8)).await, ["bran"]);
    assert!(names(r, of(9)).await.is_empty());
}

async fn events_get_consecutive_sequences_and_answer_filters<R: PersonalityRepository>(r: &R) {
    assert_eq!(r.last_sequence().await.unwrap(), 0);
    let mut aria = register("Aria", 7, &[]);
    saved(r, &mut aria, "c1").await;
    aria.add_alias(Alias::parse("bard").unwrap(), Utc::now())
        .unwrap();
    let changes = ProfileChanges {
        prompt: Some(Prompt::parse("Sing.").unwrap()),
        ..Default::default()
    };
    aria.update_profile(changes, Utc::now()).unwrap();
    let stored = r.save(change(&mut aria, "c2")).await.unwrap();
    let sequences: Vec<i64> = stored.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, [2, 3]);
    assert_eq!(stored[0].aggregate_version, 2);
    assert_eq!(stored[1].correlation_id, "c2");
    assert_eq!(r.last_sequence().await.unwrap(), 3);

    let all = r.events(EventFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(&all[1..], &stored[..]);
    let query = |filter: EventFilter| async move {
        let found = r.events(filter).await.unwrap();
        found.iter().map(|e| e.sequence).collect::<Vec<_>>()
    };
    let after_one = EventFilter {
        after: 1,
        ..Default::default()
    };
    assert_eq!(query(after_one).await, [2, 3]);
    let before_three = EventFilter {
        before: Some(3),
        ..Default::default()
    };
    assert_eq!(query(before_three).await, [1, 2]);
    let of_type = EventFilter {
        event_type: Some(EventType::PersonalityAliasAdded),
        ..Default::default()
    };
    assert_eq!(query(of_type).await, [2]);
    let correlated = EventFilter {
        correlation_id: Some("c1".into()),
        ..Default::default()
    };
    assert_eq!(query(correlated).await, [1]);
    let other_aggregate = EventFilter {
        aggregate_id: Some(PersonalityId::new().into()),
        ..Default::default()
    };
    assert!(query(other_aggregate).await.is_empty());
    let limited = EventFilter {
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(query(limited).await, [1, 2]);
    let snapshot = r.snapshot().await.unwrap();
    assert_eq!(snapshot.events, all);
    assert_eq!(snapshot.personalities, vec![aria]);
}

async fn a_change_decided_on_a_stale_version_is_refused_and_stores_nothing<
    R: PersonalityRepository,
>(
    r: &R,
) {
    let mut aria = register("Aria", 7, &[]);
    saved(r, &mut aria, "c1").await;
    let mut first = aria.clone();
    let mut second = aria.clone();
    first
        .add_alias(Alias::parse("bard").unwrap(), Utc::now())
        .unwrap();
    second
        .add_alias(Alias::parse("singer").unwrap(), Utc::now())
        .unwrap();
    saved(r, &mut first, "c2").await;
    let refused = r.save(change(&mut second, "c3")).await;
    assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
    assert_eq!(
        r.find_by_key(Some(server(HOME)), "singer").await.unwrap(),
        None
    );
    assert_eq!(r.last_sequence().await.unwrap(), 2);
    assert_eq!(r.get(aria.id()).await.unwrap().unwrap().version(), 2);
}

async fn a_taken_key_is_refused_with_its_holder_and_stores_nothing<R: PersonalityRepository>(
    r: &R,
) {
    let mut aria = register("Aria", 7, &["bard"]);
    saved(r, &mut aria, "c1").await;
    // Another personality whose name is taken, and one whose alias is.
    let mut twin = register("ARIA", 8, &["free"]);
    match r.save(change(&mut twin, "c2")).await {
        Err(StoreError::KeyTaken { key, holder }) => {
            assert_eq!(key, "aria");
            assert_eq!(
                holder.describe(Some(server(HOME))),
                "the personality \"Aria\""
            );
        }
        other => panic!("expected the name to be taken, got {other:?}"),
    }
    let mut cora = register("Cora", 8, &["free", "bard"]);
    match r.save(change(&mut cora, "c3")).await {
        Err(StoreError::KeyTaken { key, holder }) => {
            assert_eq!(key, "bard");
            assert_eq!(holder.describe(Some(server(HOME))), "an alias of \"Aria\"");
        }
        other => panic!("expected the alias to be taken, got {other:?}"),
    }
    // Nothing of either refused change is left: no row, no key, no event.
    assert_eq!(
        r.find_by_key(Some(server(HOME)), "free").await.unwrap(),
        None
    );
    assert_eq!(
        r.find_by_key(Some(server(HOME)), "cora").await.unwrap(),
        None
    );
    assert_eq!(r.list(Listing::default()).await.unwrap().len(), 1);
    assert_eq!(r.last_sequence().await.unwrap(), 1);
    // Adding another's key as an alias is refused the same way.
    let mut bran = register("Bran", 8, &[]);
    saved(r, &mut bran, "c4").await;
    bran.add_alias(Alias::parse("aria").unwrap(), Utc::now())
        .unwrap();
    let refused = r.save(change(&mut bran, "c5")).await;
    assert!(
        matches!(refused, Err(StoreError::KeyTaken { .. })),
        "{refused:?}"
    );
    assert_eq!(r.get(bran.id()).await.unwrap().unwrap().version(), 1);
}

async fn removing_an_alias_or_a_personality_frees_its_keys<R: PersonalityRepository>(r: &R) {
    let mut aria = register("Aria", 7, &["bard", "singer"]);
    saved(r, &mut aria, "c1").await;
    aria.remove_alias(Alias::parse("bard").unwrap(), Utc::now())
        .unwrap();
    saved(r, &mut aria, "c2").await;
    assert_eq!(
        r.find_by_key(Some(server(HOME)), "bard").await.unwrap(),
        None
    );
    let stored = r
        .find_by_key(Some(server(HOME)), "singer")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.aliases(), vec![Alias::parse("singer").unwrap()]);
    aria.remove(Utc::now());
    saved(r, &mut aria, "c3").await;
    for key in ["aria", "singer"] {
        assert_eq!(
            r.find_by_key(Some(server(HOME)), key).await.unwrap(),
            None,
            "{key}"
        );
    }
    assert_eq!(r.get(aria.id()).await.unwrap(), None);
    assert!(r.snapshot().await.unwrap().personalities.is_empty());
    // The freed keys can be taken again.
    let mut bard = register("Bard", 8, &["aria", "singer"]);
    saved(r, &mut bard, "c4").await;
    assert_eq!(
        r.find_by_key(Some(server(HOME)), "aria")
            .await
            .unwrap()
            .unwrap()
            .id(),
        bard.id()
    );
    assert_eq!(r.last_sequence().await.unwrap(), 4);
}
