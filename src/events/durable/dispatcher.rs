//! The registry of durable subscribers, by name: what start-up registers and what the
//! command line (`events replay`, `events dead-letters --retry`) looks up.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::{CatchUpReport, DurableConfig, DurableStatus, DurableSubscriber, RetryReport};
use crate::events::{DeadLetter, EventBus, EventHandler, EventLog, LogError, Topic};

/// Why a dispatcher operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// No durable subscriber has that name; the message lists the known ones.
    #[error("no durable subscriber is named \"{name}\" (known: {known})")]
    UnknownSubscriber {
        /// The name asked for.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// Two subscribers would share a checkpoint: give the handler another name.
    #[error("a durable subscriber named \"{0}\" is already registered")]
    DuplicateName(String),
    /// The event log failed; see the cause.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Every durable subscriber of one bus and one event log, by name.
pub struct Dispatcher {
    bus: EventBus,
    log: Arc<dyn EventLog>,
    config: DurableConfig,
    subscribers: RwLock<BTreeMap<String, DurableSubscriber>>,
    /// Held across a subscriber's start, so two registrations of one name can't both pass
    /// the duplicate check.
    registering: tokio::sync::Mutex<()>,
}

impl Dispatcher {
    /// A dispatcher whose subscribers use `config` unless registered with their own.
    pub fn new(bus: EventBus, log: Arc<dyn EventLog>, config: DurableConfig) -> Self {
        Self {
            bus,
            log,
            config,
            subscribers: RwLock::new(BTreeMap::new()),
            registering: tokio::sync::Mutex::new(()),
        }
    }

    /// The event log the subscribers read.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Starts `handler` as a durable subscriber of `topics` (see
    /// [`DurableSubscriber::start`]) with the dispatcher's settings.
    pub async fn register(
        &self,
        topics: &[Topic],
        handler: Arc<dyn EventHandler>,
    ) -> Result<DurableSubscriber, DispatchError> {
        self.register_with(topics, handler, self.config).await
    }

    /// Starts `handler` as a durable subscriber of `topics` with its own settings.
    pub async fn register_with(
        &self,
        topics: &[Topic],
        handler: Arc<dyn EventHandler>,
        config: DurableConfig,
    ) -> Result<DurableSubscriber, DispatchError> {
        let _registering = self.registering.lock().await;
        let name = handler.name().to_owned();
        if self.read().contains_key(&name) {
            return Err(DispatchError::DuplicateName(name));
        }
        let log = Arc::clone(&self.log);
        let subscriber = DurableSubscriber::start(&self.bus, log, topics, handler, config).await?;
        self.write().insert(name, subscriber.clone());
        Ok(subscriber)
    }

    /// Opens `handler`'s durable state without subscribing it (see
    /// [`DurableSubscriber::open`]): for the command line, to replay or retry dead letters
    /// while the bot owns the live subscription.
    pub async fn register_passive(
        &self,
        topics: &[Topic],
        handler: Arc<dyn EventHandler>,
    ) -> Result<DurableSubscriber, DispatchError> {
        let _registering = self.registering.lock().await;
        let name = handler.name().to_owned();
        if self.read().contains_key(&name) {
            return Err(DispatchError::DuplicateName(name));
        }
        let timeout = self.bus.config().handler_timeout;
        let log = Arc::clone(&self.log);
        let subscriber =
            DurableSubscriber::open(log, topics, handler, self.config, timeout).await?;
        self.write().insert(name, subscriber.clone());
        Ok(subscriber)
    }

    /// The subscriber with that name, if registered.
    pub fn get(&self, name: &str) -> Option<DurableSubscriber> {
        self.read().get(name).cloned()
    }

    /// The subscriber with that name, or an error listing the known names.
    pub fn subscriber(&self, name: &str) -> Result<DurableSubscriber, DispatchError> {
        self.get(name)
            .ok_or_else(|| DispatchError::UnknownSubscriber {
                name: name.to_owned(),
                known: self.names().join(", "),
            })
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Where each subscriber stands, by name.
    pub fn statuses(&self) -> Vec<DurableStatus> {
        self.all().iter().map(DurableSubscriber::status).collect()
    }

    /// Re-delivers events from `sequence` on into the named subscriber.
    pub async fn replay(&self, name: &str, sequence: i64) -> Result<CatchUpReport, DispatchError> {
        Ok(self.subscriber(name)?.replay_from(sequence).await?)
    }

    /// Dead letters, oldest first, of one subscriber or of all (including subscribers no
    /// longer registered, whose letters an admin may still want to see).
    pub async fn dead_letters(&self, name: Option<&str>) -> Result<Vec<DeadLetter>, DispatchError> {
        Ok(self.log.dead_letters(name).await?)
    }

    /// Retries the dead letters of one subscriber, or of every registered one.
    pub async fn retry_dead_letters(
        &self,
        name: Option<&str>,
    ) -> Result<RetryReport, DispatchError> {
        let targets = match name {
            Some(name) => vec![self.subscriber(name)?],
            None => self.all(),
        };
        let mut report = RetryReport::default();
        for subscriber in targets {
            report.merge(subscriber.retry_dead_letters().await?);
        }
        Ok(report)
    }

    /// Waits until every subscriber reached the end of the log; `Ok(false)` on time-out.
    pub async fn wait_caught_up(&self, timeout: Duration) -> Result<bool, DispatchError> {
        let deadline = tokio::time::Instant::now() + timeout;
        for subscriber in self.all() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !subscriber.wait_caught_up(left).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Shuts every subscriber down (each writes its last checkpoint) and forgets them.
    /// Every subscriber is stopped even if one fails; the first failure is returned.
    pub async fn shutdown_all(&self) -> Result<(), DispatchError> {
        let subscribers: Vec<DurableSubscriber> =
            std::mem::take(&mut *self.write()).into_values().collect();
        let mut first_error = None;
        for subscriber in subscribers {
            if let Err(error) = subscriber.shutdown().await {
                tracing::error!(subscriber = subscriber.name(), error = %format!("{error:#}"), "durable subscriber did not shut down cleanly");
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error.into()),
            None => Ok(()),
        }
    }

    fn all(&self) -> Vec<DurableSubscriber> {
        self.read().values().cloned().collect()
    }

    // The map is only ever replaced or inserted into whole, so a poisoned lock still guards
    // a consistent map.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, DurableSubscriber>> {
        self.subscribers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, DurableSubscriber>> {
        self.subscribers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("subscribers", &self.names())
            .finish_non_exhaustive()
    }
}
