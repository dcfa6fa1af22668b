use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dashmap::{DashMap, DashSet};

use super::{AnswerId, AnswerRecord, Answered, ConversationStore, Forgotten, SentMessages};
use crate::application::StoreError;
use crate::domain::PersonalityId;

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
/// written through to the store so that a restart loses nothing.
///
/// Memory follows the store in commit order: writes go one at a time, and each changes
/// memory once it is stored, so a change is visible to routing once it is stored, and
/// concurrent writes to the same row leave memory as they left the table.
pub struct ConversationTracker {
    store: Arc<dyn ConversationStore>,
    /// Held from a write's start until memory has its result.
    writes: tokio::sync::Mutex<()>,
    state: State,
}

/// What the tracker holds in memory; changed only after a commit.
#[derive(Debug, Default)]
struct State {
    messages: DashMap<u64, SentMessage>,
    conversations: DashMap<(u64, u64), Conversation>,
    activations: DashMap<u64, PersonalityId>,
    auto_response: DashSet<u64>,
    /// When expired conversations were last dropped from memory.
    conversations_swept: std::sync::Mutex<Option<DateTime<Utc>>>,
}

/// How often expired conversations are dropped from memory.
const CONVERSATION_SWEEP_EVERY: chrono::Duration = chrono::Duration::minutes(1);

impl std::fmt::Debug for ConversationTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversationTracker")
            .field("messages", &self.state.messages.len())
            .field("conversations", &self.state.conversations.len())
            .field("activations", &self.state.activations.len())
            .finish_non_exhaustive()
    }
}

impl ConversationTracker {
    /// Loads the persisted state.
    pub async fn load(store: Arc<dyn ConversationStore>) -> Result<Self, StoreError> {
        let loaded = store.load().await?;
        let tracker = Self::unloaded(store);
        let state = &tracker.state;
        for (message_id, channel_id, personality) in loaded.messages {
            state.sent(message_id, channel_id, personality);
        }
        let now = Utc::now();
        for (user, channel, personality, last_active) in loaded.conversations {
            if !expired(now, last_active) {
                state.talked((user, channel), personality, last_active);
            }
        }
        for (channel, personality) in loaded.activations {
            state.activated(channel, personality);
        }
        for user in loaded.auto_response_users {
            state.auto_response.insert(user);
        }
        Ok(tracker)
    }

    /// Tracking that starts empty instead of loaded, for a process that never routes a
    /// message (the command line): writes still go to the store, and a removal's clean-up
    /// deletes there.
    pub fn unloaded(store: Arc<dyn ConversationStore>) -> Self {
        Self {
            store,
            writes: tokio::sync::Mutex::new(()),
            state: State::default(),
        }
    }

    /// Remembers that `personality` sent `message_id`, so replies to it reach the
    /// personality. False, and nothing remembered, when the personality no longer exists
    /// (it was removed while its answer was on its way).
    pub async fn record_message(
        &self,
        message_id: u64,
        channel_id: u64,
        personality: PersonalityId,
    ) -> Result<bool, StoreError> {
        self.record_sent(SentMessages {
            personality,
            channel_id,
            message_ids: vec![message_id],
            answering: None,
            answer: None,
            at: Utc::now(),
        })
        .await
    }

    /// Remembers an answer in one write: `personality` sent `message_ids` (an answer split
    /// to Discord's length limit) in `channel_id`, answering `answered.member`, who is now
    /// talking to it there; the answer's record keeps how it came about. False, and nothing
    /// remembered, when the personality no longer exists.
    pub async fn record_answer(
        &self,
        channel_id: u64,
        personality: PersonalityId,
        message_ids: Vec<u64>,
        answered: Answered,
    ) -> Result<bool, StoreError> {
        self.record_sent(SentMessages {
            personality,
            channel_id,
            message_ids,
            answering: Some(answered.member),
            answer: Some(answered),
            at: Utc::now(),
        })
        .await
    }

    async fn record_sent(&self, sent: SentMessages) -> Result<bool, StoreError> {
        let _write = self.writes.lock().await;
        if !self.store.record_sent(sent.clone()).await? {
            return Ok(false);
        }
        for &message_id in &sent.message_ids {
            self.state
                .sent(message_id, sent.channel_id, sent.personality);
        }
        if let Some(user_id) = sent.answering {
            self.state
                .talked((user_id, sent.channel_id), sent.personality, sent.at);
        }
        Ok(true)
    }

    /// The personality that sent this message, if one of ours did.
    pub fn personality_for_message(&self, message_id: u64) -> Option<PersonalityId> {
        self.state.messages.get(&message_id).map(|m| m.personality)
    }

    /// Marks the user as talking to `personality` in `channel` (auto-response continues
    /// it). False, and nothing remembered, when the personality no longer exists.
    pub async fn touch_conversation(
        &self,
        user_id: u64,
        channel_id: u64,
        personality: PersonalityId,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let _write = self.writes.lock().await;
        let stored = self
            .store
            .touch_conversation(user_id, channel_id, personality, now)
            .await?;
        if stored {
            self.state.talked((user_id, channel_id), personality, now);
        }
        Ok(stored)
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
        let conversation = self.state.conversations.get(&(user_id, channel_id))?;
        let age = now.signed_duration_since(conversation.last_active);
        (age.to_std().unwrap_or_default() <= ttl).then_some(conversation.personality)
    }

    /// Ends the user's conversation in the channel (`/reset`). True if there was one.
    pub async fn end_conversation(
        &self,
        user_id: u64,
        channel_id: u64,
    ) -> Result<bool, StoreError> {
        let _write = self.writes.lock().await;
        let existed = self.store.end_conversation(user_id, channel_id).await?;
        let removed = self.state.end_conversation((user_id, channel_id));
        Ok(existed || removed)
    }

    /// Makes `personality` answer every message in `channel_id`. False, and nothing
    /// changed, when the personality no longer exists.
    pub async fn activate(
        &self,
        channel_id: u64,
        personality: PersonalityId,
        by: u64,
    ) -> Result<bool, StoreError> {
        let _write = self.writes.lock().await;
        let stored = self
            .store
            .activate(channel_id, personality, by, Utc::now())
            .await?;
        if stored {
            self.state.activated(channel_id, personality);
        }
        Ok(stored)
    }

    /// Stops the channel's activated personality. Returns the one that was active.
    pub async fn deactivate(&self, channel_id: u64) -> Result<Option<PersonalityId>, StoreError> {
        let _write = self.writes.lock().await;
        self.store.deactivate(channel_id).await?;
        Ok(self.state.deactivate(channel_id))
    }

    /// The personality activated in this channel.
    pub fn activation(&self, channel_id: u64) -> Option<PersonalityId> {
        self.state.activations.get(&channel_id).map(|p| *p)
    }

    /// Turns auto-response on or off for a user.
    pub async fn set_auto_response(&self, user_id: u64, enabled: bool) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        self.store
            .set_auto_response(user_id, enabled, Utc::now())
            .await?;
        if enabled {
            self.state.auto_response.insert(user_id);
        } else {
            self.state.auto_response.remove(&user_id);
        }
        Ok(())
    }

    /// True when the user continues conversations without mentioning the personality.
    pub fn auto_response(&self, user_id: u64) -> bool {
        self.state.auto_response.contains(&user_id)
    }

    /// Deletes every trace of a personality: sent messages, answer records, conversations,
    /// activations — in the store (also rows another process wrote), then in memory once
    /// that committed (a failure leaves both for the retry).
    pub async fn forget_personality(
        &self,
        personality: PersonalityId,
    ) -> Result<Forgotten, StoreError> {
        let _write = self.writes.lock().await;
        let forgotten = self.store.forget_personality(personality).await?;
        self.state.forget(personality);
        Ok(forgotten)
    }

    /// Where the personality still appears in memory (answer records are never held there).
    pub fn traces_in_memory(&self, personality: PersonalityId) -> Traces {
        Traces {
            answers: 0,
            messages: self
                .state
                .messages
                .iter()
                .filter(|m| m.personality == personality)
                .count(),
            conversations: self
                .state
                .conversations
                .iter()
                .filter(|c| c.personality == personality)
                .count(),
            activations: self
                .state
                .activations
                .iter()
                .filter(|p| **p == personality)
                .count(),
        }
    }

    /// Where the personality still appears in the store.
    pub async fn traces_in_database(
        &self,
        personality: PersonalityId,
    ) -> Result<Traces, StoreError> {
        self.store.traces_of(personality).await
    }

    /// Forgets sent-message mappings older than `age`, so the map doesn't grow forever.
    pub async fn prune_messages_older_than(&self, age: Duration) -> Result<usize, StoreError> {
        let cutoff = Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
        let _write = self.writes.lock().await;
        let pruned = self.store.prune_messages(cutoff).await?;
        for (message_id, personality) in &pruned {
            self.state.unsent(*message_id, *personality);
        }
        Ok(pruned.len())
    }

    /// The recorded answer `message_id` is part of, read from the store (message actions are
    /// rare; answers are not held in memory).
    pub async fn answer_for_message(
        &self,
        message_id: u64,
    ) -> Result<Option<AnswerRecord>, StoreError> {
        self.store.answer_for_message(message_id).await
    }

    /// Forgets an answer (its messages were deleted): its record and its messages' mappings,
    /// in the store and then in memory.
    pub async fn forget_answer(&self, answer: AnswerId) -> Result<(), StoreError> {
        let _write = self.writes.lock().await;
        let forgotten = self.store.forget_answer(answer).await?;
        for message_id in forgotten {
            self.state.messages.remove(&message_id);
        }
        Ok(())
    }

    /// Records a regenerated answer: its new facts and messages replace the old. False, and
    /// nothing remembered, when the answer or its personality no longer exists.
    pub async fn replace_answer(&self, answer: AnswerRecord) -> Result<bool, StoreError> {
        let _write = self.writes.lock().await;
        let (channel_id, personality) = (answer.channel_id, answer.personality);
        let message_ids = answer.message_ids.clone();
        let Some(dropped) = self.store.replace_answer(answer).await? else {
            return Ok(false);
        };
        for message_id in dropped {
            self.state.messages.remove(&message_id);
        }
        for message_id in message_ids {
            self.state.sent(message_id, channel_id, personality);
        }
        Ok(true)
    }

    /// Conversations held in memory (expired ones are dropped within a minute of use).
    pub fn conversations_in_memory(&self) -> usize {
        self.state.conversation_count()
    }

    /// The channel a tracked message was sent in.
    pub fn channel_of_message(&self, message_id: u64) -> Option<u64> {
        self.state.messages.get(&message_id).map(|m| m.channel_id)
    }
}

/// True when a conversation last active at `last_active` can no longer route a message
/// (past the longer of the two time-to-lives).
fn expired(now: DateTime<Utc>, last_active: DateTime<Utc>) -> bool {
    now.signed_duration_since(last_active)
        .to_std()
        .is_ok_and(|age| age > GUILD_CONVERSATION_TTL.max(DM_CONVERSATION_TTL))
}

impl State {
    /// `personality` sent the message.
    fn sent(&self, message_id: u64, channel_id: u64, personality: PersonalityId) {
        let sent = SentMessage {
            channel_id,
            personality,
        };
        self.messages.insert(message_id, sent);
    }

    /// The message's mapping is gone.
    fn unsent(&self, message_id: u64, personality: PersonalityId) {
        self.messages
            .remove_if(&message_id, |_, m| m.personality == personality);
    }

    /// The user talked to `personality` in the channel.
    fn talked(&self, key: (u64, u64), personality: PersonalityId, at: DateTime<Utc>) {
        let conversation = Conversation {
            personality,
            last_active: at,
        };
        self.conversations.insert(key, conversation);
        self.sweep_conversations(at);
    }

    /// Drops conversations past the longest time-to-live from memory, at most once a
    /// minute: they no longer route anything, and each user and channel ever seen would
    /// otherwise stay in memory. Their rows stay until the next start skips them.
    fn sweep_conversations(&self, now: DateTime<Utc>) {
        {
            let mut last = self
                .conversations_swept
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|last| now - last < CONVERSATION_SWEEP_EVERY) {
                return;
            }
            *last = Some(now);
        }
        self.conversations
            .retain(|_, c| !expired(now, c.last_active));
    }

    /// Conversations held in memory.
    fn conversation_count(&self) -> usize {
        self.conversations.len()
    }

    /// True if there was a conversation.
    fn end_conversation(&self, key: (u64, u64)) -> bool {
        self.conversations.remove(&key).is_some()
    }

    /// `personality` answers every message in the channel.
    fn activated(&self, channel_id: u64, personality: PersonalityId) {
        self.activations.insert(channel_id, personality);
    }

    /// The personality that was active in the channel.
    fn deactivate(&self, channel_id: u64) -> Option<PersonalityId> {
        self.activations
            .remove(&channel_id)
            .map(|(_, stopped)| stopped)
    }

    /// Drops every entry that names `personality`: a pass over each map, on a removal.
    fn forget(&self, personality: PersonalityId) {
        self.messages.retain(|_, m| m.personality != personality);
        self.conversations
            .retain(|_, c| c.personality != personality);
        self.activations.retain(|_, p| *p != personality);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_conversations_leave_memory_once_a_later_one_is_recorded() {
        let state = State::default();
        let start = Utc::now();
        let personality = PersonalityId::new();
        for user in 0..1000 {
            state.talked((user, 1), personality, start);
        }
        assert_eq!(state.conversation_count(), 1000);
        state.talked((5000, 1), personality, start + chrono::Duration::hours(3));
        assert_eq!(state.conversation_count(), 1, "only the live one is left");
    }
}
