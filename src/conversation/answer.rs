//! The record of one answer a personality sent: what the message actions ("Personality
//! info", "Delete answer", "Regenerate") read and change. Kept in the store only; the
//! actions are rare, so nothing of it is held in memory.

use chrono::{DateTime, Utc};

use crate::domain::PersonalityId;

/// The store's id of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnswerId(i64);

impl AnswerId {
    /// The id as the store wrote it.
    pub fn new(id: i64) -> Self {
        Self(id)
    }

    /// The number the store keys the answer by.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// How an answer came about: whom it answered and what produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// The member it answered.
    pub member: u64,
    /// Their message, which the answer is to.
    pub trigger_id: u64,
    /// The server it was sent in; `None` in a DM.
    pub server: Option<u64>,
    /// The personality's version when it answered (its profile revision).
    pub revision: i64,
    /// The model that wrote it.
    pub model: String,
    /// How long the model took, in milliseconds.
    pub llm_ms: u64,
}

/// An answer as recorded: its Discord messages and how it came about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRecord {
    pub id: AnswerId,
    pub personality: PersonalityId,
    pub channel_id: u64,
    /// Its messages, in order (an answer is split at Discord's length limit).
    pub message_ids: Vec<u64>,
    pub answered: Answered,
    /// When it was first sent; a regeneration keeps it.
    pub at: DateTime<Utc>,
}
