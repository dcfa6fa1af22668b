//! The OpenAI-compatible chat-completions client and prompt assembly.

mod client;
mod error;
mod prompt;

pub use client::{ChatMessage, ChatRequest, LlmClient, LlmConfig, Role};
pub use error::LlmError;
pub use prompt::{build_messages, ContextMessage};
