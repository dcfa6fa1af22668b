//! What conversation tracking needs from a store. `src/store` implements it for SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{AnswerId, AnswerRecord, Answered};
use crate::application::StoreError;
use crate::domain::PersonalityId;

/// Everything conversation tracking persists, as loaded at start-up.
#[derive(Debug, Default, Clone)]
pub struct ConversationRows {
    /// (message id, channel id, personality)
    pub messages: Vec<(u64, u64, PersonalityId)>,
    /// (user id, channel id, personality, last active)
    pub conversations: Vec<(u64, u64, PersonalityId, DateTime<Utc>)>,
    /// (channel id, personality)
    pub activations: Vec<(u64, PersonalityId)>,
    pub auto_response_users: Vec<u64>,
}

/// How many rows name a personality, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    pub messages: usize,
    pub conversations: usize,
    pub activations: usize,
    /// Answer records (kept in the store only).
    pub answers: usize,
}

/// Messages a personality sent in one channel, and the user it was answering, if the
/// conversation with them goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessages {
    pub personality: PersonalityId,
    pub channel_id: u64,
    pub message_ids: Vec<u64>,
    /// The user now talking to the personality in the channel.
    pub answering: Option<u64>,
    /// How the messages came about, when they are an answer to a member's message: recorded
    /// with them, for the message actions.
    pub answer: Option<Answered>,
    pub at: DateTime<Utc>,
}

/// The rows of conversation tracking. Rows that name a personality are written only while
/// it exists: the methods that add one return false, and write nothing, once it is gone.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// Every row.
    async fn load(&self) -> Result<ConversationRows, StoreError>;

    /// Records the messages and, when it answers someone, the conversation, in one
    /// transaction.
    async fn record_sent(&self, sent: SentMessages) -> Result<bool, StoreError>;

    /// Records that the user talks to `personality` in the channel.
    async fn touch_conversation(
        &self,
        user_id: u64,
        channel_id: u64,
        personality: PersonalityId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Ends the user's conversation in the channel; true if there was one.
    async fn end_conversation(&self, user_id: u64, channel_id: u64) -> Result<bool, StoreError>;

    /// Makes `personality` answer every message in the channel.
    async fn activate(
        &self,
        channel_id: u64,
        personality: PersonalityId,
        by: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Stops the channel's activation; true if there was one.
    async fn deactivate(&self, channel_id: u64) -> Result<bool, StoreError>;

    /// Turns auto-response on or off for a user.
    async fn set_auto_response(
        &self,
        user_id: u64,
        enabled: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Deletes every row that names the personality, in one transaction.
    async fn forget_personality(&self, personality: PersonalityId)
        -> Result<Forgotten, StoreError>;

    /// Counts the rows that name the personality.
    async fn traces_of(&self, personality: PersonalityId) -> Result<Forgotten, StoreError>;

    /// Deletes message mappings and answer records older than `before` (an answer with all
    /// its messages); returns each deleted message with the personality that sent it.
    async fn prune_messages(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<(u64, PersonalityId)>, StoreError>;

    /// The answer `message_id` is part of, if it is a recorded answer's message.
    async fn answer_for_message(&self, message_id: u64)
        -> Result<Option<AnswerRecord>, StoreError>;

    /// Deletes an answer record and its messages' mappings, in one transaction; returns the
    /// messages whose mapping was deleted.
    async fn forget_answer(&self, answer: AnswerId) -> Result<Vec<u64>, StoreError>;

    /// Replaces an answer's facts and messages with `answer`'s (a regeneration), in one
    /// transaction. Returns the messages that are no longer part of it, or `None`, and
    /// nothing written, when the answer or its personality no longer exists.
    async fn replace_answer(&self, answer: AnswerRecord) -> Result<Option<Vec<u64>>, StoreError>;
}
