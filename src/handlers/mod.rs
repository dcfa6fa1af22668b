//! What happens when something happens to a personality: one reaction per file, all
//! registered by [`register_handlers`] against the bus the service publishes on.

mod audit;
mod conversation_cleanup;
mod profile_cache;

pub use audit::AuditHandler;
pub use conversation_cleanup::ConversationCleanupHandler;
pub use profile_cache::ProfileCacheHandler;

use std::sync::Arc;

use crate::cache::ProfileCache;
use crate::conversation::ConversationTracker;
use crate::events::{DispatchError, Dispatcher, DurableConfig, EventBus, Topic};
use crate::store::Database;

/// The durable subscribers of a running application, by name.
pub type Subscribers = Arc<Dispatcher>;

/// Wires every handler to the bus the service publishes on — the step the first version
/// never took. The profile cache is a plain subscriber (it is rebuilt from the database at
/// every start); conversation cleanup and the audit trail are durable: checkpointed, caught
/// up after a crash, retried, and parked as dead letters when they keep failing.
pub async fn register_handlers(
    bus: &EventBus,
    db: &Database,
    cache: &Arc<ProfileCache>,
    tracker: &Arc<ConversationTracker>,
) -> Result<Subscribers, DispatchError> {
    bus.subscribe(
        Topic::All,
        Arc::new(ProfileCacheHandler::new(Arc::clone(cache))),
    );
    let dispatcher = Dispatcher::new(bus.clone(), Arc::new(db.clone()), DurableConfig::default());
    dispatcher
        .register(Arc::new(ConversationCleanupHandler::new(Arc::clone(
            tracker,
        ))))
        .await?;
    dispatcher.register(Arc::new(AuditHandler)).await?;
    Ok(Arc::new(dispatcher))
}
