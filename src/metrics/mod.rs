//! What the running bot counts, and the `/healthz` and `/metrics` endpoints that show it
//! (`METRICS_ADDR`, off by default).
//!
//! Counters and the LLM latency histogram are recorded where things happen (commands,
//! answers, LLM calls); everything that already has a source of truth (the bus's counters,
//! dead letters, subscriber checkpoints, the gateway, the profile cache) is read when
//! Prometheus scrapes, so it can't drift from what it describes.

mod sample;
mod server;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use sample::Sample;
pub use server::{bind, serve, Health, MetricsError};

use crate::llm::LlmError;
use crate::routing::Trigger;

/// How a slash command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)] // The variant names are the label values Prometheus shows.
pub enum Outcome {
    /// It did what was asked.
    ok,
    /// The user was refused (a rule, a permission, a bad option): theirs to fix.
    refused,
    /// It failed on our side (storage, Discord, a panic).
    failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CommandLabels {
    command: String,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TriggerLabels {
    trigger: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// One gateway shard as the metrics and the health check see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardStatus {
    /// The shard's number.
    pub id: u32,
    /// True once it is identified and not resuming.
    pub connected: bool,
    /// Its connection stage in words ("connected", "resuming", …).
    pub stage: String,
    /// The last heartbeat's round trip, once one was acknowledged.
    pub heartbeat_latency: Option<Duration>,
}

/// Where the gateway's state comes from: the Discord layer sets it once the client exists.
#[async_trait]
pub trait GatewayProbe: Send + Sync {
    /// Every shard the client runs.
    async fn shards(&self) -> Vec<ShardStatus>;
}

/// The bot's counters and the registry they are exposed from.
pub struct Metrics {
    registry: Registry,
    commands: Family<CommandLabels, Counter>,
    messages_answered: Family<TriggerLabels, Counter>,
    llm_latency: Histogram,
    llm_errors: Family<KindLabels, Counter>,
    sampled: Arc<sample::Sampled>,
    gateway: OnceLock<Arc<dyn GatewayProbe>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty counters, registered under the `personae_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("personae");
        let commands = Family::<CommandLabels, Counter>::default();
        registry.register(
            "commands",
            "Slash commands run, by command and outcome (ok, refused, failed)",
            commands.clone(),
        );
        let messages_answered = Family::<TriggerLabels, Counter>::default();
        registry.register(
            "messages_answered",
            "Messages a personality answered, by what made it answer",
            messages_answered.clone(),
        );
        // 0.1 s … 51.2 s: a small local model answers in well under a second, a large one
        // near the default 60 s time-out.
        let llm_latency = Histogram::new(exponential_buckets(0.1, 2.0, 10));
        registry.register(
            "llm_request_duration_seconds",
            "Time the LLM endpoint took to answer, failures included",
            llm_latency.clone(),
        );
        let llm_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "llm_errors",
            "LLM calls that failed, by kind (timeout, connect, http_4xx, http_5xx, bad_response, empty, setup)",
            llm_errors.clone(),
        );
        let sampled = Arc::new(sample::Sampled::default());
        registry.register_collector(Box::new(sample::Collector(Arc::clone(&sampled))));
        Self {
            registry,
            commands,
            messages_answered,
            llm_latency,
            llm_errors,
            sampled,
            gateway: OnceLock::new(),
        }
    }

    /// Counts one slash command (its qualified name, e.g. "personality create").
    pub fn command(&self, name: &str, outcome: Outcome) {
        self.commands
            .get_or_create(&CommandLabels {
                command: name.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Counts one answered message.
    pub fn message_answered(&self, trigger: Trigger) {
        let trigger = match trigger {
            Trigger::Mention => "mention",
            Trigger::Reply => "reply",
            Trigger::AutoResponse => "auto_response",
            Trigger::Activation => "activation",
        };
        self.messages_answered
            .get_or_create(&TriggerLabels { trigger })
            .inc();
    }

    /// Records one LLM call: how long it took and, if it failed, why.
    pub fn llm_call(&self, took: Duration, error: Option<&LlmError>) {
        self.llm_latency.observe(took.as_secs_f64());
        if let Some(e) = error {
            self.llm_errors
                .get_or_create(&KindLabels { kind: e.kind() })
                .inc();
        }
    }

    /// Tells the metrics where the gateway's state is; only the first call counts (one
    /// Discord client per process).
    pub fn set_gateway(&self, probe: Arc<dyn GatewayProbe>) {
        // A second client in one process would be a bug; the first probe stays.
        let _ = self.gateway.set(probe);
    }

    /// The gateway's shards, `None` before the Discord client exists.
    pub async fn gateway(&self) -> Option<Vec<ShardStatus>> {
        match self.gateway.get() {
            Some(probe) => Some(probe.shards().await),
            None => None,
        }
    }

    /// The Prometheus text exposition of every metric, with `sample` as the values read at
    /// scrape time.
    pub fn encode(&self, sample: Sample) -> Result<String, std::fmt::Error> {
        self.sampled.set(sample);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}
