//! What every command and event handler can reach.

use std::sync::Arc;

use super::costs::CostLimits;
use super::inflight::InFlight;
use super::webhooks::WebhookManager;
use super::BotError;
use crate::app::App;
use crate::llm::LlmClient;

/// The bot's shared state, handed to poise.
pub struct Data {
    pub app: Arc<App>,
    pub llm: LlmClient,
    pub webhooks: WebhookManager,
    /// The host's limits on LLM calls and answer length.
    pub costs: CostLimits,
    /// What a shutdown waits for.
    pub inflight: Arc<InFlight>,
    /// Earlier channel messages sent to the model with each question.
    pub context_messages: u8,
    /// Ask for streamed answers and show them as they are written.
    pub stream: bool,
    /// How many personalities one message may call on ("@aria @bard …").
    pub max_personalities: usize,
    /// Where members' attachments may be downloaded from.
    pub attachment_hosts: super::AttachmentHosts,
    /// Models that see images.
    pub vision_models: Vec<String>,
    /// Downloads members' attachments (follows no redirects).
    pub downloads: reqwest::Client,
    /// Where each user's context starts in a channel after `/reset`: channel messages
    /// older than this id are no longer sent to the model for them.
    pub context_starts: super::idle_map::IdleMap<(u64, u64), u64>,
}

/// The error type of every command.
pub type Error = BotError;

/// The context every command gets.
pub type Context<'a> = poise::Context<'a, Data, Error>;
