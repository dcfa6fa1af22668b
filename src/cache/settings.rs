//! The servers' settings the message path reads, kept fresh by an event handler.

use std::sync::Arc;

use dashmap::DashMap;

use crate::domain::{ServerId, ServerSettings, Settings};

/// Every server's settings, read by every message in a server. A server without an entry
/// has the defaults. Changed only by the settings-cache event handler (and the load at
/// start-up), never by a command directly.
#[derive(Debug, Default)]
pub struct SettingsCache {
    servers: DashMap<ServerId, Arc<Settings>>,
    defaults: Arc<Settings>,
}

impl SettingsCache {
    /// A cache holding these servers' settings.
    pub fn new(stored: Vec<ServerSettings>) -> Self {
        let cache = Self::default();
        for s in stored {
            cache.put(s.server, s.settings);
        }
        cache
    }

    /// The settings of `server`.
    pub fn get(&self, server: ServerId) -> Arc<Settings> {
        self.servers
            .get(&server)
            .map_or_else(|| Arc::clone(&self.defaults), |s| Arc::clone(&s))
    }

    /// Replaces the settings of `server`.
    pub fn put(&self, server: ServerId, settings: Settings) {
        self.servers.insert(server, Arc::new(settings));
    }
}
