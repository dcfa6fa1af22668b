//! The OpenAI-compatible chat-completions client and prompt assembly.

mod client;
mod error;
mod probe;
mod prompt;

pub use client::{ChatMessage, ChatRequest, LlmClient, LlmConfig, Role};
pub use error::LlmError;
pub use probe::{warning as probe_warning, Probe};
pub use prompt::{build_messages, ContextMessage};
