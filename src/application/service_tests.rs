//! The service's rules, on the in-memory repository: given these events, when this
//! command, then these events (or this error, and nothing new).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::memory_repository::MemoryRepository;
use super::{
    Actor, Change, Decide, DecideRestore, DecideSettings, EventFilter, Listing,
    PersonalityRepository, PersonalityService, ProfileUpdate, Registration, RequestContext, Saved,
    ServiceConfig, ServiceError, Snapshot, StoreError,
};
use crate::domain::{
    AggregateId, DomainError, DomainEvent, MemberLimit, Personality, PersonalityId, ProfileField,
    Scope, ServerId, ServerSettings, Setting, SettingChange, UserId,
};
use crate::events::{handler_fn, BusConfig, EventBus, EventEnvelope, Topic};

const ALICE: u64 = 10;
const BOB: u64 = 20;
const ADMIN: u64 = 1;
/// The server the scenarios' members are in.
const HOME: u64 = 8001;
const ELSEWHERE: u64 = 8002;
/// The host's LLM_MAX_TOKENS in these tests.
const MAX_TOKENS: u32 = 500;

fn user(id: u64) -> UserId {
    UserId::new(id).unwrap()
}

fn home() -> ServerId {
    ServerId::new(HOME).unwrap()
}

fn limit(n: u16) -> SettingChange {
    SettingChange::MemberLimit(MemberLimit::new(n).unwrap())
}

/// A service on an in-memory repository, with a record of what reached the bus.
struct Scenario {
    service: PersonalityService,
    repository: Arc<dyn PersonalityRepository>,
    published: Arc<Mutex<Vec<EventEnvelope>>>,
    /// Events stored by the `given` step.
    given: usize,
}

fn service_on(repository: Arc<dyn PersonalityRepository>) -> Scenario {
    let bus = EventBus::new(BusConfig::default());
    let published = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&published);
    bus.subscribe(
        Topic::All,
        handler_fn("recorder", move |e: &EventEnvelope| {
            seen.lock().unwrap().push(e.clone());
            async { Ok(()) }
        }),
    );
    let config = ServiceConfig {
        admin_ids: [user(ADMIN)].into(),
        allowed_models: vec!["small".into(), "large".into()],
        max_tokens: Some(MAX_TOKENS),
    };
    Scenario {
        service: PersonalityService::new(Arc::clone(&repository), bus, config),
        repository,
        published,
        given: 0,
    }
}

/// Given these personalities (name, owner, aliases), registered by their owners.
async fn given(personalities: &[(&str, u64, &[&str])]) -> Scenario {
    let mut scenario = service_on(Arc::new(MemoryRepository::default()));
    for (name, owner, aliases) in personalities {
        scenario
            .service
            .register(&scenario.as_user(*owner), registration(name, aliases))
            .await
            .unwrap();
    }
    scenario.given = scenario.stored().await.len();
    scenario
}

fn registration(name: &str, aliases: &[&str]) -> Registration {
    Registration {
        name: name.into(),
        prompt: Some("Be kind.".into()),
        aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        ..Default::default()
    }
}

fn prompt(text: &str) -> ProfileUpdate {
    ProfileUpdate {
        prompt: Some(text.into()),
        ..Default::default()
    }
}

impl Scenario {
    /// A member of the home server, acting there.
    fn as_user(&self, id: u64) -> RequestContext {
        self.in_server(id, HOME, false)
    }

    /// A member acting in `server`, with Manage Server there or not.
    fn in_server(&self, id: u64, server: u64, manager: bool) -> RequestContext {
        RequestContext::interaction(self.service.actor_for(user(id), manager), 4242)
            .in_server(ServerId::new(server).ok())
    }

    async fn stored(&self) -> Vec<EventEnvelope> {
        self.repository
            .events(EventFilter::default())
            .await
            .unwrap()
    }

    /// The events stored since the `given` step.
    async fn then_events(&self) -> Vec<DomainEvent> {
        self.stored()
            .await
            .into_iter()
            .skip(self.given)
            .map(|e| e.event)
            .collect()
    }

    async fn then_nothing_new(&self) {
        assert_eq!(self.then_events().await, vec![], "nothing may be stored");
    }

    fn published_sequences(&self) -> Vec<i64> {
        self.published
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect()
    }
}

#[tokio::test]
async fn given_nothing_when_a_member_registers_then_they_own_it_and_one_created_event_is_published()
{
    let t = given(&[]).await;
    let aria = t
        .service
        .register(&t.as_user(ALICE), registration("Aria", &["bard"]))
        .await
        .unwrap();
    assert_eq!(aria.owner_id(), user(ALICE));
    let stored = t.stored().await;
    let [created] = stored.as_slice() else {
        panic!("{stored:?}")
    };
    assert!(matches!(
        created.event,
        DomainEvent::PersonalityCreated { .. }
    ));
    assert_eq!(created.actor, "user:10");
    assert_eq!(created.correlation_id, "4242");
    assert_eq!(created.aggregate_version, 1);
    assert_eq!(t.published_sequences(), vec![1]);
    assert_eq!(t.service.last_published(), 1);
}

#[tokio::test]
async fn a_member_may_not_register_for_someone_else_but_an_admin_may() {
    let t = given(&[]).await;
    let for_bob = Registration {
        owner_id: Some(user(BOB)),
        ..registration("Aria", &[])
    };
    let refused = t.service.register(&t.as_user(ALICE), for_bob.clone()).await;
    assert!(
        matches!(refused, Err(ServiceError::NotOwner(_))),
        "{refused:?}"
    );
    t.then_nothing_new().await;
    let made = t.service.register(&t.as_user(ADMIN), for_bob).await;
    assert_eq!(made.unwrap().owner_id(), user(BOB));
}

#[tokio::test]
async fn the_command_line_must_name_an_owner() {
    let t = given(&[]).await;
    let ctx = RequestContext::new(Actor::CommandLine);
    let refused = t.service.register(&ctx, registration("Aria", &[])).await;
    assert!(
        matches!(refused, Err(ServiceError::OwnerRequired)),
        "{refused:?}"
    );
    t.then_nothing_new().await;
}

#[tokio::test]
async fn an_invalid_field_is_refused_naming_it_and_changes_nothing() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let bad_name = t
        .service
        .register(&t.as_user(ALICE), registration("a.b", &[]))
        .await;
    assert!(
        matches!(&bad_name, Err(ServiceError::Invalid { field: "name", .. })),
        "{bad_name:?}"
    );
    let bad_url = ProfileUpdate {
        avatar_url: Some("javascript:alert(1)".into()),
        ..Default::default()
    };
    let refused = t
        .service
        .update_profile(&t.as_user(ALICE), "Aria", bad_url)
        .await;
    assert!(
        matches!(
            &refused,
            Err(ServiceError::Invalid {
                field: "avatar_url",
                ..
            })
        ),
        "{refused:?}"
    );
    t.then_nothing_new().await;
}

#[tokio::test]
async fn given_aria_with_alias_bard_when_another_takes_either_key_then_the_holder_is_named() {
    let t = given(&[("Aria", ALICE, &["bard"])]).await;
    let name_taken = t
        .service
        .register(&t.as_user(BOB), registration("ARIA", &[]))
        .await;
    match name_taken {
        Err(ServiceError::NameTaken { name, holder }) => {
            assert_eq!(name, "ARIA");
            assert_eq!(holder, "the personality \"Aria\"");
        }
        other => panic!("{other:?}"),
    }
    let name_is_alias = t
        .service
        .register(&t.as_user(BOB), registration("Bard", &[]))
        .await;
    assert!(
        matches!(&name_is_alias, Err(ServiceError::NameTaken { holder, .. }) if holder == "an alias of \"Aria\""),
        "{name_is_alias:?}"
    );
    let alias_taken = t
        .service
        .register(&t.as_user(BOB), registration("Bran", &["aria"]))
        .await;
    assert!(
        matches!(&alias_taken, Err(ServiceError::AliasTaken { alias, .. }) if alias == "aria"),
        "{alias_taken:?}"
    );
    t.then_nothing_new().await;
}

#[tokio::test]
async fn an_alias_equal_to_the_personalitys_own_name_is_refused() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let refused = t.service.add_alias(&t.as_user(ALICE), "Aria", "ARIA").await;
    assert!(
        matches!(&refused, Err(ServiceError::Invalid { field: "alias", .. })),
        "{refused:?}"
    );
    t.then_nothing_new().await;
}

#[tokio::test]
async fn given_alices_aria_when_bob_changes_her_then_he_is_refused_but_an_admin_is_not() {
    let t = given(&[("Aria", ALICE, &["bard"])]).await;
    let bob = t.as_user(BOB);
    let attempts = [
        t.service
            .update_profile(&bob, "Aria", prompt("Mine now."))
            .await,
        t.service.add_alias(&bob, "Aria", "thief").await,
        t.service.remove_alias(&bob, "Aria", "bard").await,
        t.service.remove(&bob, "bard").await,
    ];
    for refused in attempts {
        assert!(
            matches!(&refused, Err(ServiceError::NotOwner(name)) if name == "Aria"),
            "{refused:?}"
        );
    }
    t.then_nothing_new().await;
    t.service
        .update_profile(&t.as_user(ADMIN), "Aria", prompt("Admin edit."))
        .await
        .unwrap();
    assert_eq!(t.then_events().await.len(), 1);
}

#[tokio::test]
async fn an_update_records_only_the_fields_that_changed_and_one_that_changes_nothing_is_refused() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let update = ProfileUpdate {
        display_name: Some("Aria".into()),
        prompt: Some("Sing.".into()),
        ..Default::default()
    };
    let updated = t
        .service
        .update_profile(&t.as_user(ALICE), "@aria", update)
        .await
        .unwrap();
    assert_eq!(updated.profile().prompt.as_str(), "Sing.");
    let events = t.then_events().await;
    let [DomainEvent::PersonalityProfileUpdated { changed, .. }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(changed, &[ProfileField::Prompt]);
    let same = t
        .service
        .update_profile(&t.as_user(ALICE), "Aria", prompt("Sing."))
        .await;
    assert!(
        matches!(
            same,
            Err(ServiceError::Rejected(DomainError::NothingToUpdate))
        ),
        "{same:?}"
    );
    assert_eq!(t.then_events().await.len(), 1);
}

#[tokio::test]
async fn sampling_is_set_within_the_hosts_cap_and_carried_in_the_event() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let update = ProfileUpdate {
        temperature: Some("0.7".into()),
        max_tokens: Some("500".into()),
        ..Default::default()
    };
    t.service
        .update_profile(&t.as_user(ALICE), "Aria", update)
        .await
        .unwrap();
    let events = t.then_events().await;
    let [DomainEvent::PersonalityProfileUpdated { changed, profile }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(
        changed,
        &[ProfileField::Temperature, ProfileField::MaxTokens]
    );
    assert_eq!(profile.temperature.map(f64::from), Some(0.7));
    assert_eq!(profile.max_tokens.map(u32::from), Some(500));

    let back = ProfileUpdate {
        temperature: Some("default".into()),
        ..Default::default()
    };
    let p = t
        .service
        .update_profile(&t.as_user(ALICE), "Aria", back)
        .await
        .unwrap();
    assert_eq!(p.profile().temperature, None);
    assert_eq!(t.then_events().await.len(), 2);
}

#[tokio::test]
async fn sampling_above_the_hosts_cap_or_out_of_range_is_refused_and_changes_nothing() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let too_long = ProfileUpdate {
        max_tokens: Some("501".into()),
        ..Default::default()
    };
    let refused = t
        .service
        .update_profile(&t.as_user(ALICE), "Aria", too_long)
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "max_tokens: 501 is more than this bot allows: at most 500 tokens an answer"
    );
    for (temperature, max_tokens) in [("2.5", "10"), ("warm", "10"), ("1", "0")] {
        let bad = ProfileUpdate {
            temperature: Some(temperature.into()),
            max_tokens: Some(max_tokens.into()),
            ..Default::default()
        };
        let refused = t
            .service
            .update_profile(&t.as_user(ALICE), "Aria", bad)
            .await;
        assert!(
            matches!(refused, Err(ServiceError::Invalid { .. })),
            "{temperature} {max_tokens}: {refused:?}"
        );
    }
    t.then_nothing_new().await;
}

#[tokio::test]
async fn aliases_are_added_and_removed_once_each() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let alice = t.as_user(ALICE);
    t.service.add_alias(&alice, "Aria", "Bard").await.unwrap();
    let again = t.service.add_alias(&alice, "Aria", "bard").await;
    assert!(
        matches!(
            again,
            Err(ServiceError::Rejected(DomainError::AliasAlreadyPresent(_)))
        ),
        "{again:?}"
    );
    t.service
        .remove_alias(&alice, "bard", "bard")
        .await
        .unwrap();
    let gone = t.service.remove_alias(&alice, "Aria", "bard").await;
    assert!(
        matches!(
            gone,
            Err(ServiceError::Rejected(DomainError::AliasNotPresent(_)))
        ),
        "{gone:?}"
    );
    let events = t.then_events().await;
    assert!(matches!(
        events.as_slice(),
        [
            DomainEvent::PersonalityAliasAdded { .. },
            DomainEvent::PersonalityAliasRemoved { .. }
        ]
    ));
}

#[tokio::test]
async fn a_personality_has_at_most_10_aliases() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let alice = t.as_user(ALICE);
    for i in 0..10 {
        t.service
            .add_alias(&alice, "Aria", &format!("a{i}"))
            .await
            .unwrap();
    }
    let refused = t.service.add_alias(&alice, "Aria", "one more").await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Rejected(DomainError::TooManyAliases(10)))
        ),
        "{refused:?}"
    );
    assert_eq!(t.then_events().await.len(), 10);
}

#[tokio::test]
async fn given_a_removal_then_its_name_and_aliases_are_free_at_once() {
    let t = given(&[("Aria", ALICE, &["bard"])]).await;
    let removed = t.service.remove(&t.as_user(ALICE), "bard").await.unwrap();
    assert!(removed.is_removed());
    let events = t.then_events().await;
    assert!(
        matches!(events.as_slice(), [DomainEvent::PersonalityRemoved { name, aliases, .. }] if name.as_str() == "Aria" && aliases.len() == 1)
    );
    let gone = t.service.get(ServerId::new(HOME).ok(), "Aria").await;
    assert!(matches!(gone, Err(ServiceError::NotFound(_))), "{gone:?}");
    t.service
        .register(&t.as_user(BOB), registration("Bard", &["aria"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unknown_reference_is_not_found_and_changes_nothing() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let missing = t
        .service
        .update_profile(&t.as_user(ALICE), " nobody ", prompt("x"))
        .await;
    assert!(
        matches!(&missing, Err(ServiceError::NotFound(r)) if r == "nobody"),
        "{missing:?}"
    );
    t.then_nothing_new().await;
}

#[tokio::test]
async fn events_another_writer_stored_are_published_first_and_in_order() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    t.service.mark_published_up_to_now().await.unwrap();
    // Another process registers Bran on the same store, unseen by this service.
    let other = service_on(Arc::clone(&t.repository));
    other
        .service
        .register(&other.as_user(BOB), registration("Bran", &[]))
        .await
        .unwrap();
    t.service
        .add_alias(&t.as_user(ALICE), "Aria", "bard")
        .await
        .unwrap();
    assert_eq!(t.published_sequences(), vec![1, 2, 3]);
    // The poll for other processes' events finds nothing left to publish.
    assert_eq!(t.service.publish_external_events().await.unwrap(), 0);
}

/// A repository whose next `busy` writes find the database busy.
struct Flaky {
    inner: MemoryRepository,
    busy: AtomicU32,
}

impl Flaky {
    fn busy(&self) -> bool {
        self.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }
}

#[async_trait]
impl PersonalityRepository for Flaky {
    async fn find_by_key(
        &self,
        server: Option<ServerId>,
        key: &str,
    ) -> Result<Option<Personality>, StoreError> {
        self.inner.find_by_key(server, key).await
    }
    async fn get(&self, id: PersonalityId) -> Result<Option<Personality>, StoreError> {
        self.inner.get(id).await
    }
    async fn list(&self, listing: Listing) -> Result<Vec<Personality>, StoreError> {
        self.inner.list(listing).await
    }
    async fn save(&self, change: Change) -> Result<Vec<EventEnvelope>, StoreError> {
        if self.busy() {
            return Err(StoreError::Busy("locked".into()));
        }
        self.inner.save(change).await
    }
    async fn rehearse(
        &self,
        changes: Vec<Change>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        self.inner.rehearse(changes).await
    }
    async fn change(
        &self,
        server: Option<ServerId>,
        key: &str,
        decide: Decide,
    ) -> Result<Result<Saved, ServiceError>, StoreError> {
        if self.busy() {
            return Err(StoreError::Busy("locked".into()));
        }
        self.inner.change(server, key, decide).await
    }
    async fn restore(
        &self,
        server: Option<ServerId>,
        key: &str,
        decide: DecideRestore,
    ) -> Result<Result<Saved, ServiceError>, StoreError> {
        if self.busy() {
            return Err(StoreError::Busy("locked".into()));
        }
        self.inner.restore(server, key, decide).await
    }
    async fn events(&self, filter: EventFilter) -> Result<Vec<EventEnvelope>, StoreError> {
        self.inner.events(filter).await
    }
    async fn last_sequence(&self) -> Result<i64, StoreError> {
        self.inner.last_sequence().await
    }
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.inner.snapshot().await
    }
    async fn settings(&self, server: ServerId) -> Result<ServerSettings, StoreError> {
        self.inner.settings(server).await
    }
    async fn all_settings(&self) -> Result<Vec<ServerSettings>, StoreError> {
        self.inner.all_settings().await
    }
    async fn change_settings(
        &self,
        server: ServerId,
        decide: DecideSettings,
    ) -> Result<Result<(ServerSettings, Vec<EventEnvelope>), ServiceError>, StoreError> {
        if self.busy() {
            return Err(StoreError::Busy("locked".into()));
        }
        self.inner.change_settings(server, decide).await
    }
}

/// Given Aria, stored through a repository whose next `busy` writes find it busy.
async fn flaky(busy: u32) -> Scenario {
    let repository = Arc::new(Flaky {
        inner: MemoryRepository::default(),
        busy: AtomicU32::new(0),
    });
    let mut t = service_on(Arc::clone(&repository) as Arc<dyn PersonalityRepository>);
    t.service
        .register(&t.as_user(ALICE), registration("Aria", &[]))
        .await
        .unwrap();
    t.given = 1;
    repository.busy.store(busy, Ordering::Release);
    t
}

#[tokio::test]
async fn a_busy_store_is_tried_again_before_the_user_sees_an_error() {
    let t = flaky(3).await;
    t.service
        .update_profile(&t.as_user(ALICE), "Aria", prompt("Sing."))
        .await
        .unwrap();
    let t = flaky(4).await;
    let failed = t
        .service
        .update_profile(&t.as_user(ALICE), "Aria", prompt("Sing."))
        .await;
    match failed {
        Err(e @ ServiceError::Storage(_)) => assert!(!e.is_user_error()),
        other => panic!("{other:?}"),
    }
    t.then_nothing_new().await;
}

#[tokio::test]
async fn given_a_personality_when_a_manager_of_its_server_changes_it_then_it_changes() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let manager = t.in_server(BOB, HOME, true);
    t.service
        .update_profile(&manager, "aria", prompt("Sing."))
        .await
        .unwrap();
    let events = t.stored().await;
    let last = events.last().unwrap();
    assert_eq!(
        last.actor,
        format!("user:{BOB}"),
        "the event names who acted"
    );
}

#[tokio::test]
async fn given_a_personality_when_a_manager_of_another_server_or_a_member_changes_it_then_it_is_refused(
) {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let member = t.in_server(BOB, HOME, false);
    let refused = t.service.update_profile(&member, "aria", prompt("x")).await;
    assert!(
        matches!(refused, Err(ServiceError::NotOwner(_))),
        "{refused:?}"
    );
    // From another server, the name doesn't even reach Aria.
    let other = t.in_server(BOB, ELSEWHERE, true);
    let refused = t.service.remove(&other, "aria").await;
    assert!(
        matches!(refused, Err(ServiceError::NotFound(_))),
        "{refused:?}"
    );
    assert!(t.then_events().await.is_empty());
}

#[tokio::test]
async fn given_aria_in_one_server_when_another_server_creates_an_aria_then_both_exist() {
    let t = given(&[("Aria", ALICE, &["bard"])]).await;
    let elsewhere = t.in_server(BOB, ELSEWHERE, false);
    let second = t
        .service
        .register(&elsewhere, registration("Aria", &["bard"]))
        .await
        .unwrap();
    assert_eq!(
        second.scope(),
        Scope::Server(ServerId::new(ELSEWHERE).unwrap())
    );
    let here = t
        .service
        .get(ServerId::new(HOME).ok(), "bard")
        .await
        .unwrap();
    assert_ne!(here.id(), second.id());
}

#[tokio::test]
async fn when_a_member_creates_a_global_personality_then_it_is_refused_and_an_admin_may() {
    let t = given(&[]).await;
    let global = Registration {
        global: true,
        ..registration("Sage", &[])
    };
    let refused = t.service.register(&t.as_user(ALICE), global.clone()).await;
    assert!(
        matches!(refused, Err(ServiceError::AdminOnly(_))),
        "{refused:?}"
    );
    let made = t.service.register(&t.as_user(ADMIN), global).await.unwrap();
    assert_eq!(made.scope(), Scope::Global);
    let anywhere = t.service.get(ServerId::new(ELSEWHERE).ok(), "sage").await;
    assert_eq!(anywhere.unwrap().id(), made.id());
}

#[tokio::test]
async fn when_the_command_line_creates_without_a_server_then_it_is_told_to_name_one() {
    let t = given(&[]).await;
    let host = RequestContext::new(Actor::CommandLine);
    let refused = t
        .service
        .register(
            &host,
            Registration {
                owner_id: Some(user(ALICE)),
                ..registration("Aria", &[])
            },
        )
        .await;
    assert!(
        matches!(refused, Err(ServiceError::ServerRequired)),
        "{refused:?}"
    );
    assert!(t.then_events().await.is_empty());
}

#[tokio::test]
async fn given_a_member_at_the_limit_when_they_create_another_then_it_is_refused() {
    let t = given(&[
        ("One", ALICE, &[]),
        ("Two", ALICE, &[]),
        ("Three", ALICE, &[]),
    ])
    .await;
    t.service
        .change_settings(&t.in_server(BOB, HOME, true), home(), vec![limit(3)])
        .await
        .unwrap();
    let refused = t
        .service
        .register(&t.as_user(ALICE), registration("Four", &[]))
        .await;
    assert!(
        matches!(refused, Err(ServiceError::OwnerLimit(3))),
        "{refused:?}"
    );
    // Another server has its own count, and bot admins have none.
    t.service
        .register(
            &t.in_server(ALICE, ELSEWHERE, false),
            registration("Four", &[]),
        )
        .await
        .unwrap();
    let for_alice = Registration {
        owner_id: Some(user(ALICE)),
        ..registration("Five", &[])
    };
    t.service
        .register(&t.as_user(ADMIN), for_alice)
        .await
        .unwrap();
    let listing = Listing {
        owner: Some(user(ALICE)),
        visible_in: None,
    };
    assert_eq!(t.service.list(listing).await.unwrap().len(), 5);
}

#[tokio::test]
async fn given_a_server_personality_when_an_admin_makes_it_global_then_every_server_finds_it() {
    let t = given(&[("Aria", ALICE, &["bard"])]).await;
    let refused = t.service.make_global(&t.as_user(ALICE), "aria").await;
    assert!(
        matches!(refused, Err(ServiceError::AdminOnly(_))),
        "{refused:?}"
    );
    let made = t
        .service
        .make_global(&t.as_user(ADMIN), "aria")
        .await
        .unwrap();
    assert_eq!(made.scope(), Scope::Global);
    assert!(matches!(
        t.then_events().await.as_slice(),
        [DomainEvent::PersonalityMadeGlobal { server }] if server.get() == HOME
    ));
    let found = t.service.get(ServerId::new(ELSEWHERE).ok(), "bard").await;
    assert_eq!(found.unwrap().id(), made.id());
}

#[tokio::test]
async fn when_a_model_the_host_does_not_offer_is_set_then_it_is_refused_naming_the_offered_ones() {
    let t = given(&[("Aria", ALICE, &[])]).await;
    let alice = t.as_user(ALICE);
    let pricey = ProfileUpdate {
        model: Some("gpt-4-32k".into()),
        ..Default::default()
    };
    let refused = t.service.update_profile(&alice, "aria", pricey).await;
    assert!(
        matches!(&refused, Err(ServiceError::Invalid { field: "model", reason }) if reason.contains("small, large")),
        "{refused:?}"
    );
    let at_creation = Registration {
        model: Some("gpt-4-32k".into()),
        ..registration("Bran", &[])
    };
    let refused = t.service.register(&alice, at_creation).await;
    assert!(
        matches!(refused, Err(ServiceError::Invalid { field: "model", .. })),
        "{refused:?}"
    );
    assert!(t.then_events().await.is_empty());
    let offered = ProfileUpdate {
        model: Some("large".into()),
        ..Default::default()
    };
    t.service
        .update_profile(&alice, "aria", offered)
        .await
        .unwrap();
}

#[tokio::test]
async fn only_the_servers_managers_and_bot_admins_change_its_settings() {
    let t = given(&[]).await;
    let globals_off = || vec![SettingChange::Globals(false)];
    for (who, refused) in [
        ("a member", t.as_user(ALICE)),
        (
            "a manager of another server",
            t.in_server(BOB, ELSEWHERE, true),
        ),
    ] {
        let outcome = t
            .service
            .change_settings(&refused, home(), globals_off())
            .await;
        assert!(
            matches!(outcome, Err(ServiceError::NotServerManager)),
            "{who}: {outcome:?}"
        );
        let read = t.service.server_settings(&refused, home()).await;
        assert!(
            matches!(read, Err(ServiceError::NotServerManager)),
            "{who}: {read:?}"
        );
    }
    t.then_nothing_new().await;

    let manager = t.in_server(BOB, HOME, true);
    let changed = t
        .service
        .change_settings(&manager, home(), globals_off())
        .await
        .unwrap();
    assert_eq!((changed.version, changed.settings.globals), (1, false));
    t.service
        .change_settings(
            &t.in_server(ADMIN, ELSEWHERE, false),
            home(),
            vec![limit(2)],
        )
        .await
        .unwrap();
    let stored = t.stored().await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].aggregate_id, AggregateId::ServerSettings(home()));
    assert_eq!(stored[1].aggregate_version, 2);
    assert_eq!(stored[1].actor, format!("user:{ADMIN}"));
    assert!(matches!(
        &stored[0].event,
        DomainEvent::ServerSettingsChanged { changed, .. } if changed == &[Setting::Globals]
    ));
    assert_eq!(t.published_sequences(), vec![1, 2]);
    let now = t.service.server_settings(&manager, home()).await.unwrap();
    assert_eq!(
        (now.settings.globals, now.settings.member_limit.get()),
        (false, 2)
    );
    assert!(t.service.verify().await.unwrap().is_ok());
}

#[tokio::test]
async fn a_settings_change_that_changes_nothing_stores_nothing() {
    let t = given(&[]).await;
    let manager = t.in_server(BOB, HOME, true);
    let refused = t
        .service
        .change_settings(&manager, home(), vec![SettingChange::Globals(true)])
        .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Rejected(DomainError::NothingToUpdate))
        ),
        "{refused:?}"
    );
    t.then_nothing_new().await;
    assert_eq!(
        t.repository.settings(home()).await.unwrap(),
        ServerSettings::defaults(home())
    );
}

#[tokio::test]
async fn where_members_may_not_create_only_managers_and_admins_do() {
    let t = given(&[]).await;
    let manager = t.in_server(BOB, HOME, true);
    t.service
        .change_settings(
            &manager,
            home(),
            vec![SettingChange::MembersMayCreate(false)],
        )
        .await
        .unwrap();
    let t = Scenario { given: 1, ..t };
    let refused = t
        .service
        .register(&t.as_user(ALICE), registration("Aria", &[]))
        .await;
    assert!(
        matches!(refused, Err(ServiceError::CreationClosed)),
        "{refused:?}"
    );
    t.then_nothing_new().await;
    t.service
        .register(&manager, registration("Aria", &[]))
        .await
        .unwrap();
    t.service
        .register(
            &t.in_server(ALICE, ELSEWHERE, false),
            registration("Aria", &[]),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn history_lists_each_profile_revision_and_a_revert_is_a_new_update() {
    let t = given(&[("Aria", ALICE, &["bard"])]).await;
    let alice = t.as_user(ALICE);
    t.service
        .update_profile(&alice, "aria", prompt("Sing."))
        .await
        .unwrap();
    t.service.add_alias(&alice, "aria", "muse").await.unwrap();
    let vandal = ProfileUpdate {
        prompt: Some("Insult everyone.".into()),
        model: Some("large".into()),
        ..Default::default()
    };
    t.service
        .update_profile(&t.in_server(BOB, HOME, true), "bard", vandal)
        .await
        .unwrap();

    let (_, revisions) = t.service.history(&alice, "aria").await.unwrap();
    let numbers: Vec<i64> = revisions.iter().map(|r| r.number).collect();
    assert_eq!(
        numbers,
        vec![1, 2, 4],
        "alias changes are not profile revisions"
    );
    assert_eq!(revisions[0].changed, ProfileField::ALL.to_vec());
    assert_eq!(
        revisions[2].changed,
        vec![ProfileField::Prompt, ProfileField::Model]
    );
    assert_eq!(revisions[2].actor, format!("user:{BOB}"));

    let refused = t.service.history(&t.as_user(BOB), "aria").await;
    assert!(
        matches!(refused, Err(ServiceError::NotOwner(_))),
        "{refused:?}"
    );
    let missing = t.service.revert(&alice, "aria", 3).await;
    assert!(
        matches!(
            missing,
            Err(ServiceError::Invalid {
                field: "revision",
                ..
            })
        ),
        "{missing:?}"
    );

    let before = t.stored().await.len();
    let reverted = t.service.revert(&alice, "aria", 2).await.unwrap();
    assert_eq!(reverted.profile().prompt.as_str(), "Sing.");
    assert_eq!(reverted.profile().model, None);
    let stored = t.stored().await;
    assert_eq!(stored.len(), before + 1, "one new event, history kept");
    assert!(matches!(
        &stored[before].event,
        DomainEvent::PersonalityProfileUpdated { changed, .. }
            if changed == &[ProfileField::Prompt, ProfileField::Model]
    ));
    let again = t.service.revert(&alice, "aria", 2).await;
    assert!(
        matches!(
            again,
            Err(ServiceError::Rejected(DomainError::NothingToUpdate))
        ),
        "{again:?}"
    );
    assert!(t.service.verify().await.unwrap().is_ok());
}
