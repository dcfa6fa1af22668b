//! Imports on the in-memory repository: given these personalities, when this file is
//! imported, then these personalities (and conflicts, one per refused personality).

use std::sync::Arc;

use serde_json::json;

use super::memory_repository::MemoryRepository;
use super::{
    Actor, EventFilter, ImportItem, ImportMode, PersonalityRepository, PersonalityService,
    Registration, RequestContext, ServiceConfig, ServiceError,
};
use crate::domain::{CardExtensions, MemberLimit, ServerId, SettingChange, UserId};
use crate::events::{BusConfig, EventBus};

const ALICE: u64 = 10;
const HOME: u64 = 8001;
const ELSEWHERE: u64 = 8002;

/// A service whose home server lets a member own 3 personalities.
async fn service() -> (PersonalityService, Arc<dyn PersonalityRepository>) {
    let repository: Arc<dyn PersonalityRepository> = Arc::new(MemoryRepository::default());
    let bus = EventBus::new(BusConfig::default());
    let service = PersonalityService::new(Arc::clone(&repository), bus, ServiceConfig::default());
    let limit = SettingChange::MemberLimit(MemberLimit::new(3).unwrap());
    let host = RequestContext::new(Actor::CommandLine);
    service
        .change_settings(&host, ServerId::new(HOME).unwrap(), vec![limit])
        .await
        .unwrap();
    (service, repository)
}

fn alice_at_home(service: &PersonalityService) -> RequestContext {
    let actor = service.actor_for(UserId::new(ALICE).unwrap(), false);
    RequestContext::interaction(actor, 77).in_server(ServerId::new(HOME).ok())
}

fn item(name: &str, aliases: &[&str]) -> ImportItem {
    ImportItem {
        server: None,
        registration: Registration {
            name: name.into(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            ..Registration::default()
        },
    }
}

fn lines(outcomes: &[super::ImportOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(p) => format!("{}: ok as {}", o.name, p.name()),
            Err(e) => format!("{}: {e}", o.name),
        })
        .collect()
}

#[tokio::test]
async fn an_import_creates_each_personality_under_one_correlation_id_and_reports_each_conflict() {
    let (service, repository) = service().await;
    let ctx = alice_at_home(&service);
    service
        .register(&ctx, item("Sage", &[]).registration)
        .await
        .unwrap();
    let file = vec![
        item("Aria", &["bard"]),
        item("Brio", &["sage"]),
        item("Cleo", &["bard"]),
        item("  ", &[]),
        item("Dora", &[]),
        item("Echo", &[]),
    ];
    let outcomes = service.import(&ctx, file, ImportMode::Write).await;
    assert_eq!(
        lines(&outcomes),
        [
            "Aria: ok as Aria",
            "Brio: alias: \"sage\" is already taken by the personality \"Sage\".",
            "Cleo: alias: \"bard\" is already taken by an alias of \"Aria\".",
            ": name: must not be empty",
            "Dora: ok as Dora",
            "Echo: You already own as many personalities in this server as it allows (3); remove one first.",
        ]
    );
    // Refused personalities left nothing behind: not their names, not their free aliases.
    let names: Vec<_> = service
        .list(super::Listing::default())
        .await
        .unwrap()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    assert_eq!(names, ["Aria", "Dora", "Sage"]);
    let events = repository
        .events(EventFilter {
            after: 1,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 3, "after the settings' event");
    assert!(events.iter().all(|e| e.correlation_id == "77"));
}

#[tokio::test]
async fn a_dry_run_reports_what_an_import_would_and_stores_nothing() {
    let (service, repository) = service().await;
    let ctx = alice_at_home(&service);
    service
        .register(&ctx, item("Sage", &[]).registration)
        .await
        .unwrap();
    let file = || {
        vec![
            item("Aria", &["bard"]),
            item("Brio", &["sage"]),
            item("Cleo", &["bard"]),
            item("Dora", &[]),
            item("Echo", &[]),
        ]
    };
    let rehearsed = lines(&service.import(&ctx, file(), ImportMode::DryRun).await);
    assert_eq!(
        repository
            .events(EventFilter::default())
            .await
            .unwrap()
            .len(),
        2,
        "the settings' and Sage's"
    );
    let (again, _) = self::service().await;
    let ctx_again = alice_at_home(&again);
    again
        .register(&ctx_again, item("Sage", &[]).registration)
        .await
        .unwrap();
    let written = lines(&again.import(&ctx_again, file(), ImportMode::Write).await);
    assert_eq!(rehearsed, written);
}

#[tokio::test]
async fn a_member_cannot_import_into_another_server() {
    let (service, repository) = service().await;
    let ctx = alice_at_home(&service);
    let elsewhere = ImportItem {
        server: ServerId::new(ELSEWHERE).ok(),
        ..item("Aria", &[])
    };
    for mode in [ImportMode::DryRun, ImportMode::Write] {
        let outcomes = service.import(&ctx, vec![elsewhere.clone()], mode).await;
        assert!(matches!(
            outcomes[0].result,
            Err(ServiceError::AdminOnly(_))
        ));
    }
    assert!(repository
        .events(EventFilter {
            after: 1,
            ..EventFilter::default()
        })
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_cards_extensions_are_recorded_with_the_created_personality() {
    let (service, _) = service().await;
    let ctx = alice_at_home(&service);
    let map = json!({"depth_prompt": {"depth": 4}})
        .as_object()
        .unwrap()
        .clone();
    let mut aria = item("Aria", &[]);
    aria.registration.card_extensions = Some(CardExtensions::parse(map.clone()).unwrap());
    let outcomes = service.import(&ctx, vec![aria], ImportMode::Write).await;
    let created = outcomes[0].result.as_ref().unwrap();
    let kept = service
        .card_extensions(created.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.as_map(), &map);
}
