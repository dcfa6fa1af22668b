//! Builds the application from the library: database, bus, caches, handlers, service.
//! `personae run`, the command line and the tests all start here.

use std::sync::Arc;

use anyhow::Context as _;

use crate::application::{PersonalityService, ServiceConfig};
use crate::cache::{ProfileCache, ProfileInfo};
use crate::config::Config;
use crate::conversation::ConversationTracker;
use crate::events::{BusConfig, EventBus};
use crate::handlers;
use crate::store::{personality_rows, Database};

/// The wired application.
pub struct App {
    pub db: Database,
    pub bus: EventBus,
    pub service: Arc<PersonalityService>,
    pub cache: Arc<ProfileCache>,
    pub tracker: Arc<ConversationTracker>,
    pub subscribers: handlers::Subscribers,
}

impl App {
    /// Opens the database, loads the caches, registers every handler on one bus and lets the
    /// durable subscribers catch up with what they missed.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let path = config.database_path.clone();
        let synchronous = config.database_synchronous;
        let db = tokio::task::spawn_blocking(move || Database::open(&path, synchronous))
            .await
            .context("opening the database")??;
        Self::start_with_database(config, db).await
    }

    /// Like [`App::start`], on an already opened database.
    pub async fn start_with_database(config: &Config, db: Database) -> anyhow::Result<Self> {
        let bus = EventBus::new(BusConfig {
            handler_timeout: config.handler_timeout,
        });
        // Streamed from the table into the cache: the personalities are never all held
        // twice, which would double the peak memory of a large start-up.
        let cache = db
            .call(|conn| {
                let t = std::time::Instant::now();
                let (personalities, keys) = personality_rows::counts(conn)?;
                eprintln!("TMP counts {:?}", t.elapsed());
                let t = std::time::Instant::now();
                personality_rows::for_each(conn, |p, k| {
                    std::hint::black_box((p, k));
                })?;
                eprintln!("TMP for_each noop {:?}", t.elapsed());
                let t = std::time::Instant::now();
                let cache = ProfileCache::with_capacity(personalities, keys);
                eprintln!("TMP with_capacity {:?}", t.elapsed());
                let t = std::time::Instant::now();
                personality_rows::for_each(conn, |p, name_key| {
                    cache.put_keyed(ProfileInfo::from_personality(p), name_key)
                })?;
                eprintln!("TMP for_each put {:?}", t.elapsed());
                Ok(Arc::new(cache))
            })
            .await?;
        let tracker = Arc::new(ConversationTracker::load(db.clone()).await?);
        let service = Arc::new(PersonalityService::new(
            db.clone(),
            bus.clone(),
            ServiceConfig {
                admin_ids: config.admin_ids.clone(),
            },
        ));
        service.mark_published_up_to_now().await?;
        let subscribers = handlers::register_handlers(&bus, &db, &cache, &tracker).await?;
        Ok(Self {
            db,
            bus,
            service,
            cache,
            tracker,
            subscribers,
        })
    }

    /// Lets durable subscribers finish and save their checkpoints.
    pub async fn shutdown(&self) {
        if let Err(e) = self.subscribers.shutdown_all().await {
            tracing::error!(error = %e, "a durable subscriber did not save its checkpoint");
        }
    }
}
