use std::time::Duration;

use chrono::{DateTime, Utc};
use dashmap::{DashMap, DashSet};

use crate::domain::PersonalityId;
use crate::store::{conversation_rows as rows, Database, Forgotten, StoreError};

/// How long a conversation stays active without a message, in a server channel.
pub const GUILD_CONVERSATION_TTL: Duration = Duration::from_secs(30 * 60);
/// How long a conversation stays active without a message, in a direct message.
pub const DM_CONVERSATION_TTL: Duration = Duration::from_secs(2 * 60 * 60);

/// Where a personality still appears in conversation tracking.
pub type Traces = Forgotten;

#[derive(Debug, Clone, Copy)]
struct SentMessage {
    channel_id: u64,
    personality: PersonalityId,
}

#[derive(Debug, Clone, Copy)]
struct Conversation {
    personality: PersonalityId,
    last_active: DateTime<Utc>,
}

/// Conversation state, in memory for the message path (no database read per message) and
/// written through to SQLite so that a restart loses nothing.
pub struct ConversationTracker {
    db: Database,
    messages: DashMap<u64, SentMessage>,
    conversations: DashMap<(u64, u64), Conversation>,
    activations: DashMap<u64, PersonalityId>,
    auto_response: DashSet<u64>,
}

impl std::fmt::Debug for ConversationTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationTracker")
            .field("messages", &self.messages.len())
            .field("conversations", &self.conversations.len())
            .field("activations", &self.activations.len())
            .finish()
    }
}

impl ConversationTracker {
    /// Loads the persisted state.
    pub async fn load(db: Database) -> Result<Self, StoreError> {
        let loaded = db.call(|conn| rows::load_all(conn)).await?;
        let tracker = Self {
            db,
            messages: DashMap::with_capacity(loaded.messages.len()),
            conversations: DashMap::with_capacity(loaded.conversations.len()),
            activations: DashMap::with_capacity(loaded.activations.len()),
            auto_response: DashSet::with_capacity(loaded.auto_response_users.len()),
        };
        for (message_id, channel_id, personality) in loaded.messages {
            tracker.messages.insert(
                message_id,
                SentMessage {
                    channel_id,
                    personality,
                },
            );
        }
        for (user, channel, personality, last_active) in loaded.conversations {
            tracker.conversations.insert(
                (user, channel),
                Conversation {
                    personality,
                    last_active,
                },
            );
        }
        for (channel, personality) in loaded.activations {
            tracker.activations.insert(channel, personality);
        }
        for user in loaded.auto_response_users {
            tracker.auto_response.insert(user);
        }
        Ok(tracker)
    }

    /// Remembers that `personality` sent `message_id`, so replies to it reach the personality.
    pub async fn record_message(
        &self,
        message_id: u64,
        channel_id: u64,
        personality: PersonalityId,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        self.db
            .call(move |conn| rows::record_message(conn, message_id, channel_id, personality, now))
            .await?;
        self.messages.insert(
            message_id,
            SentMessage {
                channel_id,
                personality,
            },
        );
        Ok(())
    }

    /// The personality that sent this message, if one of ours did.
    pub fn personality_for_message(&self, message_id: u64) -> Option<PersonalityId> {
        self.messages.get(&message_id).map(|m| m.personality)
    }

    /// Marks the user as talking to `personality` in `channel` (auto-response continues it).
    pub async fn touch_conversation(
        &self,
        user_id: u64,
        channel_id: u64,
        personality: PersonalityId,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        self.db
            .call(move |conn| rows::touch_conversation(conn, user_id, channel_id, personality, now))
            .await?;
        self.conversations.insert(
            (user_id, channel_id),
            Conversation {
                personality,
                last_active: now,
            },
        );
        Ok(())
    }

    /// The personality the user is talking to in this channel, if the conversation is younger
    /// than `ttl`.
    pub fn active_conversation(
        &self,
        user_id: u64,
        channel_id: u64,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Option<PersonalityId> {
        let conversation = self.conversations.get(&(user_id, channel_id))?;
        let age = now.signed_duration_since(conversation.last_active);
        (age.to_std().unwrap_or_default() <= ttl).then_some(conversation.personality)
    }

    /// Ends the user's conversation in the channel (`/reset`). True if there was one.
    pub async fn end_conversation(
        &self,
        user_id: u64,
        channel_id: u64,
    ) -> Result<bool, StoreError> {
        let existed = self
            .db
            .call(move |conn| rows::end_conversation(conn, user_id, channel_id))
            .await?;
        let removed = self.conversations.remove(&(user_id, channel_id)).is_some();
        Ok(existed || removed)
    }

    /// Makes `personality` answer every message in `channel_id`.
    pub async fn activate(
        &self,
        channel_id: u64,
        personality: PersonalityId,
        by: u64,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        self.db
            .call(move |conn| rows::activate(conn, channel_id, personality, by, now))
            .await?;
        self.activations.insert(channel_id, personality);
        Ok(())
    }

    /// Stops the channel's activated personality. Returns the one that was active.
    pub async fn deactivate(&self, channel_id: u64) -> Result<Option<PersonalityId>, StoreError> {
        self.db
            .call(move |conn| rows::deactivate(conn, channel_id))
            .await?;
        Ok(self.activations.remove(&channel_id).map(|(_, p)| p))
    }

    /// The personality activated in this channel.
    pub fn activation(&self, channel_id: u64) -> Option<PersonalityId> {
        self.activations.get(&channel_id).map(|p| *p)
    }

    /// Turns auto-response on or off for a user.
    pub async fn set_auto_response(&self, user_id: u64, enabled: bool) -> Result<(), StoreError> {
        let now = Utc::now();
        self.db
            .call(move |conn| rows::set_auto_response(conn, user_id, enabled, now))
            .await?;
        if enabled {
            self.auto_response.insert(user_id);
        } else {
            self.auto_response.remove(&user_id);
        }
        Ok(())
    }

    /// True when the user continues conversations without mentioning the personality.
    pub fn auto_response(&self, user_id: u64) -> bool {
        self.auto_response.contains(&user_id)
    }

    /// Deletes every trace of a personality: sent messages, conversations, activations —
    /// in the database first (so a crash midway is repaired by the retry), then in memory.
    pub async fn forget_personality(
        &self,
        personality: PersonalityId,
    ) -> Result<Forgotten, StoreError> {
        let forgotten = self
            .db
            .write(
                move |conn| rows::forget_personality(conn, personality),
                |_, forgotten| forgotten,
            )
            .await?;
        self.messages.retain(|_, m| m.personality != personality);
        self.conversations
            .retain(|_, c| c.personality != personality);
        self.activations.retain(|_, p| *p != personality);
        Ok(forgotten)
    }

    /// Where the personality still appears in memory.
    pub fn traces_in_memory(&self, personality: PersonalityId) -> Traces {
        Traces {
            messages: self
                .messages
                .iter()
                .filter(|m| m.personality == personality)
                .count(),
            conversations: self
                .conversations
                .iter()
                .filter(|c| c.personality == personality)
                .count(),
            activations: self
                .activations
                .iter()
                .filter(|p| **p == personality)
                .count(),
        }
    }

    /// Where the personality still appears in the database.
    pub async fn traces_in_database(
        &self,
        personality: PersonalityId,
    ) -> Result<Traces, StoreError> {
        self.db
            .call(move |conn| rows::traces_of(conn, personality))
            .await
    }

    /// Forgets sent-message mappings older than `age`, so the map doesn't grow forever.
    pub async fn prune_messages_older_than(&self, age: Duration) -> Result<usize, StoreError> {
        let cutoff = Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        let pruned = self
            .db
            .call(move |conn| rows::prune_messages(conn, cutoff))
            .await?;
        if pruned > 0 {
            // The in-memory map has no timestamps; reload the survivors' ids.
            let loaded = self.db.call(|conn| rows::load_all(conn)).await?;
            let keep: std::collections::HashSet<u64> =
                loaded.messages.iter().map(|m| m.0).collect();
            self.messages.retain(|id, _| keep.contains(id));
        }
        Ok(pruned)
    }

    /// The channel a tracked message was sent in.
    pub fn channel_of_message(&self, message_id: u64) -> Option<u64> {
        self.messages.get(&message_id).map(|m| m.channel_id)
    }
}
