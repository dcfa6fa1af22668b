//! Conversation tracking: who is talking to which personality, where.

mod store;
mod tracker;

pub use store::{ConversationRows, ConversationStore, Forgotten, SentMessages};
pub use tracker::{ConversationTracker, Traces, DM_CONVERSATION_TTL, GUILD_CONVERSATION_TTL};
