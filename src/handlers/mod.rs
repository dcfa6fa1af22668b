//! What happens when something happens to a personality: one reaction per file, all
//! registered by [`register_handlers`] against the bus the service publishes on.

mod audit;
mod conversation_cleanup;
mod profile_cache;
mod settings_cache;

pub use audit::AuditHandler;
pub use conversation_cleanup::ConversationCleanupHandler;
pub use profile_cache::ProfileCacheHandler;
pub use settings_cache::SettingsCacheHandler;

use std::sync::Arc;

use crate::cache::{ProfileCache, SettingsCache};
use crate::conversation::ConversationTracker;
use crate::domain::EventType;
use crate::events::{DispatchError, Dispatcher, DurableConfig, EventBus, EventLog, Topic};

/// The durable subscribers of a running application, by name.
pub type Subscribers = Arc<Dispatcher>;

/// Wires every handler to the bus the service publishes on, each to the event types it
/// reacts to. The profile and settings caches are plain subscribers (they are rebuilt from
/// the database at every start); conversation cleanup and the audit trail are durable: checkpointed, caught
/// up after a crash, retried, and parked as dead letters when they keep failing.
pub async fn register_handlers(
    bus: &EventBus,
    log: Arc<dyn EventLog>,
    cache: &Arc<ProfileCache>,
    settings: &Arc<SettingsCache>,
    tracker: &Arc<ConversationTracker>,
) -> Result<Subscribers, DispatchError> {
    let profile_cache = Arc::new(ProfileCacheHandler::new(Arc::clone(cache)));
    for event_type in [
        EventType::PersonalityCreated,
        EventType::PersonalityProfileUpdated,
        EventType::PersonalityAliasAdded,
        EventType::PersonalityAliasRemoved,
        EventType::PersonalityRemoved,
        EventType::PersonalityRestored,
        EventType::PersonalityMadeGlobal,
    ] {
        bus.subscribe(Topic::Type(event_type), profile_cache.clone());
    }
    bus.subscribe(
        Topic::Type(EventType::ServerSettingsChanged),
        Arc::new(SettingsCacheHandler::new(Arc::clone(settings))),
    );

    let dispatcher = Dispatcher::new(bus.clone(), log, DurableConfig::default());
    let cleanup = Arc::new(ConversationCleanupHandler::new(Arc::clone(tracker)));
    dispatcher
        .register(&[Topic::Type(EventType::PersonalityRemoved)], cleanup)
        .await?;
    dispatcher
        .register(&[Topic::All], Arc::new(AuditHandler))
        .await?;
    Ok(Arc::new(dispatcher))
}
