//! Conversation tracking: who is talking to which personality, where.

mod traces;
mod tracker;

pub use tracker::{ConversationTracker, Traces, DM_CONVERSATION_TTL, GUILD_CONVERSATION_TTL};
