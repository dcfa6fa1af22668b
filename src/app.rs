//! Builds the application from the library: database, bus, caches, handlers, services.
//! `personae run`, the command line and the tests all start here; this is the one place
//! that knows which store, which handlers and which front end go together.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use rusqlite::Connection;

use crate::application::PersonalityRepository;
use crate::application::{ConversationService, PersonalityService, ServiceConfig};
use crate::cache::{ProfileCache, ProfileInfo, SettingsCache};
use crate::config::{Config, DiscordConfig};
use crate::conversation::ConversationTracker;
use crate::discord::DiscordError;
use crate::events::{BusConfig, Dispatcher, DurableConfig, EventBus};
use crate::handlers;
use crate::metrics::Metrics;
use crate::store::personality_rows;
use crate::store::{Database, RunLock, RunLockError, StoreError};

/// The wired application.
pub struct App {
    pub db: Database,
    pub bus: EventBus,
    pub service: Arc<PersonalityService>,
    pub conversations: ConversationService,
    pub cache: Arc<ProfileCache>,
    /// Every server's settings, for the message path.
    pub settings: Arc<SettingsCache>,
    pub tracker: Arc<ConversationTracker>,
    pub subscribers: handlers::Subscribers,
    /// What the bot counts, for `/metrics` (served only with METRICS_ADDR).
    pub metrics: Arc<Metrics>,
}

impl App {
    /// Opens the database, loads the caches, registers every handler on one bus and lets the
    /// durable subscribers catch up with what they missed.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let db = open(config).await?;
        Self::start_with_database(config, db).await
    }

    /// Like [`App::start`], on an already opened database.
    pub async fn start_with_database(config: &Config, db: Database) -> anyhow::Result<Self> {
        let cache = db.call(load_profiles).await?;
        let settings = SettingsCache::new(db.all_settings().await?);
        let tracker = ConversationTracker::load(Arc::new(db.clone())).await?;
        let caches = Caches {
            profiles: cache,
            settings,
        };
        Self::wire(config, db, caches, tracker, Handlers::Registered).await
    }

    /// The application for a process that never routes a message: the command line. The
    /// profile cache and conversation tracking start empty instead of loaded (they only serve
    /// the message path), so a one-off command on a large database neither reads every
    /// personality nor holds them all in memory. The handlers are the same; the
    /// conversation clean-up deletes in the database whatever memory holds.
    pub async fn start_command_line(config: &Config) -> anyhow::Result<Self> {
        let db = open(config).await?;
        let tracker = ConversationTracker::unloaded(Arc::new(db.clone()));
        Self::wire(config, db, Caches::empty(), tracker, Handlers::Registered).await
    }

    /// The application for a command that only reads (`personality list`, `events verify`,
    /// …): like [`App::start_command_line`] without the handlers, so no durable subscriber
    /// catches up or writes its checkpoint, and a database only this process could break is
    /// never written.
    pub async fn start_read_only(config: &Config) -> anyhow::Result<Self> {
        let db = open(config).await?;
        let tracker = ConversationTracker::unloaded(Arc::new(db.clone()));
        Self::wire(config, db, Caches::empty(), tracker, Handlers::Skipped).await
    }

    /// Builds the bus, the service and the handlers around the caches.
    async fn wire(
        config: &Config,
        db: Database,
        caches: Caches,
        tracker: ConversationTracker,
        handlers: Handlers,
    ) -> anyhow::Result<Self> {
        let bus = EventBus::new(BusConfig {
            handler_timeout: config.handler_timeout,
        });
        let cache = Arc::new(caches.profiles);
        let settings = Arc::new(caches.settings);
        let tracker = Arc::new(tracker);
        let service = Arc::new(PersonalityService::new(
            Arc::new(db.clone()),
            bus.clone(),
            ServiceConfig {
                admin_ids: config.admin_ids.clone(),
                allowed_models: config.allowed_models.clone(),
                max_tokens: Some(config.max_tokens),
            },
        ));
        service.mark_published_up_to_now().await?;
        let conversations = ConversationService::new(Arc::new(db.clone()), Arc::clone(&tracker));
        let subscribers = match handlers {
            Handlers::Registered => {
                let log = Arc::new(db.clone());
                handlers::register_handlers(&bus, log, &cache, &settings, &tracker).await?
            }
            Handlers::Skipped => Arc::new(Dispatcher::new(
                bus.clone(),
                Arc::new(db.clone()),
                DurableConfig::default(),
            )),
        };
        Ok(Self {
            db,
            bus,
            service,
            conversations,
            cache,
            settings,
            tracker,
            subscribers,
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// Lets durable subscribers finish and save their checkpoints.
    pub async fn shutdown(&self) {
        if let Err(e) = self.subscribers.shutdown_all().await {
            tracing::error!(error = %e, "a durable subscriber did not save its checkpoint");
        }
    }
}

/// The read models the message path uses: loaded for the bot, empty for the command line.
struct Caches {
    profiles: ProfileCache,
    settings: SettingsCache,
}

impl Caches {
    fn empty() -> Self {
        Self {
            profiles: ProfileCache::new(),
            settings: SettingsCache::default(),
        }
    }
}

/// Whether the application reacts to its events.
#[derive(Clone, Copy)]
enum Handlers {
    Registered,
    Skipped,
}

/// Why `personae run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The application could not start (the database, the handlers).
    #[error("{0:#}")]
    Start(anyhow::Error),
    /// Serving Discord failed.
    #[error(transparent)]
    Discord(#[from] DiscordError),
    /// Another bot runs on the same database, or its lock can't be taken.
    #[error(transparent)]
    Lock(#[from] RunLockError),
    /// METRICS_ADDR can't be listened on.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

impl RunError {
    /// True when the host can fix it in the configuration.
    pub fn is_configuration_mistake(&self) -> bool {
        match self {
            RunError::Discord(e) => e.is_configuration_mistake(),
            RunError::Lock(RunLockError::Held { .. }) | RunError::Metrics(_) => true,
            RunError::Start(e) => StoreError::is_newer_schema_in(e),
            RunError::Lock(_) => false,
        }
    }
}

/// `personae run`: starts the application, serves Discord until `shutdown` completes, then
/// lets the durable subscribers save their checkpoints.
pub async fn run(
    config: &Config,
    discord: &DiscordConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunError> {
    // Taken before anything else, so a second bot never opens the database or connects.
    let _lock = RunLock::acquire(&config.database_path)?;
    let app = Arc::new(App::start(config).await.map_err(RunError::Start)?);
    // Bound before Discord connects, so a health check sees "not connected yet" rather
    // than nothing, and a port in use stops start-up at once.
    let metrics_server = match discord.metrics_addr {
        Some(addr) => {
            let listener = crate::metrics::bind(addr).await?;
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                Arc::clone(&app),
            )))
        }
        None => None,
    };
    let served = crate::discord::serve(Arc::clone(&app), discord, shutdown).await;
    if let Some(server) = metrics_server {
        server.abort();
    }
    app.shutdown().await;
    tracing::info!("personae stopped");
    Ok(served?)
}

/// Opens (and migrates) the configured database off the runtime's threads.
async fn open(config: &Config) -> anyhow::Result<Database> {
    let path = config.database_path.clone();
    let synchronous = config.database_synchronous;
    Ok(
        tokio::task::spawn_blocking(move || Database::open(&path, synchronous))
            .await
            .context("opening the database")??,
    )
}

/// Reads every personality into a new profile cache, one row at a time. The database
/// thread reads and checks the rows while a second thread indexes them, so a large load
/// uses both cores of a small server.
fn load_profiles(conn: &mut Connection) -> Result<ProfileCache, StoreError> {
    let (personalities, keys) = personality_rows::counts(conn)?;
    let cache = ProfileCache::with_capacity(personalities, keys);
    std::thread::scope(|scope| {
        let (send, received) = std::sync::mpsc::sync_channel::<Vec<ProfileInfo>>(LOAD_BATCHES);
        let indexer = std::thread::Builder::new()
            .name("personae-load".into())
            .spawn_scoped(scope, || {
                for info in received.into_iter().flatten() {
                    cache.put(info);
                }
            })
            .map_err(|e| StoreError::Task(format!("starting the cache loader thread: {e}")))?;
        // A send fails only once the indexer has panicked; joining it below reports that.
        let mut batch = Vec::with_capacity(LOAD_BATCH);
        personality_rows::for_each(conn, |p| {
            batch.push(ProfileInfo::from_personality(p));
            if batch.len() == LOAD_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(LOAD_BATCH));
                let _ = send.send(full);
            }
        })?;
        let _ = send.send(batch);
        drop(send);
        indexer
            .join()
            .map_err(|_| StoreError::Task("the cache loader thread panicked".into()))
    })?;
    Ok(cache)
}

/// Personalities handed to the indexer at a time: one wake-up per batch, not per row.
const LOAD_BATCH: usize = 256;
/// Batches read but not yet indexed: enough that neither thread waits on the other's
/// hiccups, few enough to hold no noticeable memory.
const LOAD_BATCHES: usize = 4;
