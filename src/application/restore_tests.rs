//! Restoring on the in-memory repository: given a personality's events (its creation and
//! removal, some days ago), when someone restores it, then a `PersonalityRestored` event (or
//! this error, and nothing new).

use std::sync::Arc;

use chrono::{Duration, Utc};

use super::memory_repository::MemoryRepository;
use super::service::unit_of_work;
use super::{
    Actor, EventFilter, PersonalityRepository, PersonalityService, Registration, RequestContext,
    ServiceConfig, ServiceError,
};
use crate::domain::{
    Alias, DisplayName, DomainError, DomainEvent, MemberLimit, NewPersonality, Personality,
    PersonalityId, PersonalityName, Profile, Prompt, Scope, ServerId, SettingChange, UserId,
};
use crate::events::{BusConfig, EventBus};

const ALICE: u64 = 10;
const BOB: u64 = 20;
const ADMIN: u64 = 1;
const HOME: u64 = 8001;
const ELSEWHERE: u64 = 8002;
const PROMPT: &str = "You are Aria; the secret word is thistle.";

fn alias(text: &str) -> Alias {
    Alias::parse(text).unwrap()
}

fn server(id: u64) -> ServerId {
    ServerId::new(id).unwrap()
}

struct Scenario {
    service: PersonalityService,
    repository: Arc<dyn PersonalityRepository>,
    /// Events stored by the `given` steps.
    given: usize,
}

/// Given a service on an empty in-memory repository.
fn service() -> Scenario {
    let repository: Arc<dyn PersonalityRepository> = Arc::new(MemoryRepository::default());
    let config = ServiceConfig {
        admin_ids: [UserId::new(ADMIN).unwrap()].into(),
        ..ServiceConfig::default()
    };
    let bus = EventBus::new(BusConfig::default());
    Scenario {
        service: PersonalityService::new(Arc::clone(&repository), bus, config),
        repository,
        given: 0,
    }
}

/// Given Aria (aliases bard, muse) of Alice in the home server, created 40 days ago and
/// removed `days_ago` days ago.
async fn given_aria_removed(days_ago: i64) -> Scenario {
    given_removed(Scope::Server(server(HOME)), days_ago).await
}

async fn given_removed(scope: Scope, days_ago: i64) -> Scenario {
    let mut t = service();
    let new = NewPersonality {
        name: PersonalityName::parse("Aria").unwrap(),
        owner_id: UserId::new(ALICE).unwrap(),
        scope,
        profile: Profile {
            display_name: DisplayName::parse("Aria the Bard").unwrap(),
            avatar_url: None,
            prompt: Prompt::parse(PROMPT).unwrap(),
            model: None,
            nsfw: false,
            temperature: None,
            max_tokens: None,
        },
        aliases: vec![alias("bard"), alias("muse")],
        card_extensions: None,
    };
    let created_at = Utc::now() - Duration::days(40);
    let mut aria = Personality::register(PersonalityId::new(), new, created_at).unwrap();
    let alice = t.member(ALICE, HOME, false);
    t.repository
        .save(unit_of_work(&alice, &mut aria, None))
        .await
        .unwrap();
    aria.remove(Utc::now() - Duration::days(days_ago));
    t.repository
        .save(unit_of_work(&alice, &mut aria, None))
        .await
        .unwrap();
    t.given = 2;
    t
}

impl Scenario {
    /// A member acting in `server`, with Manage Server there or not.
    fn member(&self, id: u64, at: u64, manager: bool) -> RequestContext {
        let actor = self.service.actor_for(UserId::new(id).unwrap(), manager);
        RequestContext::interaction(actor, 4242).in_server(ServerId::new(at).ok())
    }

    /// And given `name` (with `aliases`), created by Bob in the home server since.
    async fn and_bob_created(&mut self, name: &str, aliases: &[&str]) {
        let registration = Registration {
            name: name.into(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            ..Registration::default()
        };
        let bob = self.member(BOB, HOME, false);
        self.service.register(&bob, registration).await.unwrap();
        self.given += 1;
    }

    async fn then_events(&self) -> Vec<DomainEvent> {
        let stored = self.repository.events(EventFilter::default()).await;
        let stored = stored.unwrap().into_iter().skip(self.given);
        stored.map(|e| e.event).collect()
    }

    async fn then_nothing_new(&self) {
        assert_eq!(self.then_events().await, vec![], "nothing may be stored");
    }

    async fn then_history_holds(&self) {
        let report = self.service.verify().await.unwrap();
        assert!(report.is_ok(), "{report:?}");
    }
}

#[tokio::test]
async fn given_aria_removed_yesterday_when_her_owner_restores_her_then_she_is_back_as_she_was() {
    let t = given_aria_removed(1).await;
    let restored = t
        .service
        .restore(&t.member(ALICE, HOME, false), "ARIA")
        .await
        .unwrap();
    assert!(restored.left_out.is_empty());
    let aria = restored.personality;
    assert_eq!(aria.version(), 3, "the next version after the removal");
    assert_eq!(aria.aliases(), [alias("bard"), alias("muse")]);
    assert_eq!(aria.profile().prompt.as_str(), PROMPT);
    let events = t.then_events().await;
    let [DomainEvent::PersonalityRestored {
        name,
        owner_id,
        aliases,
        left_out,
        ..
    }] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!(name.as_str(), "Aria");
    assert_eq!(owner_id.get(), ALICE);
    assert_eq!(aliases.len(), 2);
    assert!(left_out.is_empty());
    let found = t.service.get(Some(server(HOME)), "muse").await.unwrap();
    assert_eq!(found, aria);
    t.then_history_holds().await;
}

#[tokio::test]
async fn given_aria_removed_when_a_manager_of_her_server_restores_her_then_she_is_back() {
    let t = given_aria_removed(3).await;
    let manager = t.member(BOB, HOME, true);
    let restored = t.service.restore(&manager, "aria").await.unwrap();
    assert_eq!(
        restored.personality.owner_id().get(),
        ALICE,
        "still Alice's"
    );
    let stored = t.repository.events(EventFilter::default()).await.unwrap();
    assert_eq!(stored[2].actor, format!("user:{BOB}"));
    t.then_history_holds().await;
}

#[tokio::test]
async fn given_aria_removed_when_a_stranger_restores_her_then_it_is_refused_without_her_prompt() {
    let t = given_aria_removed(1).await;
    let refused = t.service.restore(&t.member(BOB, HOME, false), "aria").await;
    let Err(error) = refused else {
        panic!("{refused:?}")
    };
    assert!(
        matches!(&error, ServiceError::NotFormerOwner(name) if name == "Aria"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "Only the former owner of \"Aria\", the managers of its server or a bot admin can restore it."
    );
    assert!(!error.to_string().contains("thistle"));
    // A manager of another server doesn't even find her there.
    let elsewhere = t
        .service
        .restore(&t.member(BOB, ELSEWHERE, true), "aria")
        .await;
    assert!(
        matches!(&elsewhere, Err(ServiceError::NothingToRestore(name)) if name == "aria"),
        "{elsewhere:?}"
    );
    t.then_nothing_new().await;
}

#[tokio::test]
async fn given_aria_removed_31_days_ago_when_her_owner_restores_her_then_it_is_refused() {
    let t = given_aria_removed(31).await;
    let refused = t
        .service
        .restore(&t.member(ALICE, HOME, false), "aria")
        .await;
    let Err(error) = refused else {
        panic!("{refused:?}")
    };
    assert!(
        matches!(
            error,
            ServiceError::Rejected(DomainError::RestoreExpired { days: 30, .. })
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "\"Aria\" was removed more than 30 days ago and can no longer be restored."
    );
    t.then_nothing_new().await;
}

#[tokio::test]
async fn given_an_alias_taken_meanwhile_when_aria_is_restored_then_she_comes_back_without_it() {
    let mut t = given_aria_removed(1).await;
    t.and_bob_created("Cleo", &["bard"]).await;
    let restored = t
        .service
        .restore(&t.member(ALICE, HOME, false), "aria")
        .await
        .unwrap();
    assert_eq!(restored.left_out, [alias("bard")]);
    assert_eq!(restored.personality.aliases(), [alias("muse")]);
    let events = t.then_events().await;
    assert!(
        matches!(
            events.as_slice(),
            [DomainEvent::PersonalityRestored { aliases, left_out, .. }]
                if aliases == &[alias("muse")] && left_out == &[alias("bard")]
        ),
        "{events:?}"
    );
    let cleo = t.service.get(Some(server(HOME)), "bard").await.unwrap();
    assert_eq!(
        cleo.name().as_str(),
        "Cleo",
        "the alias stays with its holder"
    );
    t.then_history_holds().await;
}

#[tokio::test]
async fn given_the_name_taken_meanwhile_when_aria_is_restored_then_it_is_refused_naming_the_holder()
{
    let mut t = given_aria_removed(1).await;
    t.and_bob_created("Cleo", &["aria"]).await;
    let refused = t
        .service
        .restore(&t.member(ALICE, HOME, false), "aria")
        .await;
    let Err(error) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(
        error.to_string(),
        "Can't restore \"Aria\": its name is now taken by an alias of \"Cleo\"."
    );
    t.then_nothing_new().await;
}

#[tokio::test]
async fn given_aria_restored_when_she_is_restored_again_then_it_is_refused() {
    let t = given_aria_removed(1).await;
    let alice = t.member(ALICE, HOME, false);
    t.service.restore(&alice, "aria").await.unwrap();
    let again = t.service.restore(&alice, "aria").await;
    let Err(error) = again else {
        panic!("{again:?}")
    };
    assert_eq!(
        error.to_string(),
        "\"Aria\" is not removed: there is nothing to restore."
    );
    assert_eq!(t.then_events().await.len(), 1, "one restore only");
    let never = t.service.restore(&alice, "nobody").await;
    assert!(
        matches!(&never, Err(e) if e.to_string() == "No personality called \"nobody\" was removed here."),
        "{never:?}"
    );
    // An alias of a personality that exists is no removed personality's name either.
    let alias = t.service.restore(&alice, "muse").await;
    assert!(
        matches!(&alias, Err(ServiceError::NothingToRestore(name)) if name == "muse"),
        "{alias:?}"
    );
}

#[tokio::test]
async fn given_aria_removed_and_restored_and_removed_again_then_the_latest_removal_comes_back() {
    let t = given_aria_removed(2).await;
    let alice = t.member(ALICE, HOME, false);
    t.service.restore(&alice, "aria").await.unwrap();
    t.service
        .remove_alias(&alice, "aria", "muse")
        .await
        .unwrap();
    t.service.remove(&alice, "aria").await.unwrap();
    let again = t.service.restore(&alice, "aria").await.unwrap();
    assert_eq!(again.personality.version(), 6);
    assert_eq!(again.personality.aliases(), [alias("bard")]);
    t.then_history_holds().await;
}

#[tokio::test]
async fn where_members_may_not_create_a_member_may_not_restore_but_a_manager_may() {
    let t = given_aria_removed(1).await;
    let host = RequestContext::new(Actor::CommandLine);
    let closed = SettingChange::MembersMayCreate(false);
    t.service
        .change_settings(&host, server(HOME), vec![closed])
        .await
        .unwrap();
    let refused = t
        .service
        .restore(&t.member(ALICE, HOME, false), "aria")
        .await;
    assert!(
        matches!(refused, Err(ServiceError::CreationClosed)),
        "{refused:?}"
    );
    let by_manager = t.service.restore(&t.member(BOB, HOME, true), "aria").await;
    assert!(by_manager.is_ok(), "{by_manager:?}");
}

#[tokio::test]
async fn a_member_at_the_servers_limit_may_not_restore_another() {
    let mut t = given_aria_removed(1).await;
    let host = RequestContext::new(Actor::CommandLine);
    let one = SettingChange::MemberLimit(MemberLimit::new(1).unwrap());
    t.service
        .change_settings(&host, server(HOME), vec![one])
        .await
        .unwrap();
    t.given += 1;
    let registration = Registration {
        name: "Cleo".into(),
        ..Registration::default()
    };
    let alice = t.member(ALICE, HOME, false);
    t.service.register(&alice, registration).await.unwrap();
    t.given += 1;
    let refused = t.service.restore(&alice, "aria").await;
    assert!(
        matches!(refused, Err(ServiceError::RestoreOverLimit(1))),
        "{refused:?}"
    );
    t.then_nothing_new().await;
}

#[tokio::test]
async fn the_command_line_restores_a_global_personality_without_a_server_and_a_servers_with_one() {
    let t = given_removed(Scope::Global, 1).await;
    let host = RequestContext::new(Actor::CommandLine);
    let restored = t.service.restore(&host, "aria").await.unwrap();
    assert_eq!(restored.personality.scope(), Scope::Global);
    assert_eq!(t.then_events().await.len(), 1);

    let t = given_aria_removed(1).await;
    let nowhere = t.service.restore(&host, "aria").await;
    assert!(
        matches!(nowhere, Err(ServiceError::NothingToRestore(_))),
        "{nowhere:?}"
    );
    let at_home = host.clone().in_server(Some(server(HOME)));
    t.service.restore(&at_home, "aria").await.unwrap();
    let admin = t.member(ADMIN, HOME, false);
    let again = t.service.restore(&admin, "aria").await;
    assert!(again.is_err(), "{again:?}");
    t.then_history_holds().await;
}
