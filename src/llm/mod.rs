//! The OpenAI-compatible chat-completions client and prompt assembly.

mod client;
mod error;
mod probe;
mod prompt;
mod reasoning;
mod stream;

pub use client::{Answer, ChatMessage, ChatRequest, LlmClient, LlmConfig, Role};
pub use error::LlmError;
pub use probe::{warning as probe_warning, Probe};
pub use prompt::{build_messages, ContextMessage};
pub use reasoning::{may_open_thinking, visible_text};
pub use stream::DeltaStream;
