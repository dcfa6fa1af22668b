//! Conversation tracking: who is talking to which personality, where.

mod answer;
mod store;
mod tracker;

pub use answer::{AnswerId, AnswerRecord, Answered};
pub use store::{ConversationRows, ConversationStore, Forgotten, SentMessages};
pub use tracker::{ConversationTracker, Traces, DM_CONVERSATION_TTL, GUILD_CONVERSATION_TTL};
