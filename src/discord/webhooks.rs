//! Personalities speak through webhooks: one per channel, created on first use and cached.
//! Threads use their parent channel's webhook with `thread_id`. Executions go through our
//! own HTTP client so that 429s (with their `retry_after`) and 5xx answers are retried
//! here, whether or not serenity's rate limiter is on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use poise::serenity_prelude as serenity;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use url::Url;

use super::idle_map::IdleMap;

/// How long an unused channel's webhook and target stay cached.
const CACHE_IDLE: Duration = Duration::from_secs(60 * 60);
/// The name of the webhooks the bot creates.
pub const WEBHOOK_NAME: &str = "personae";
/// Discord's error code for a webhook that no longer exists.
const UNKNOWN_WEBHOOK: i64 = 10015;
/// Discord's error code for a message that no longer exists.
const UNKNOWN_MESSAGE: i64 = 10008;
/// Retries of a webhook execution answered with 429 or 5xx.
const MAX_RETRIES: u32 = 4;
/// The longest `retry_after` we wait out; longer means something is wrong.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Where a message to a channel goes: the channel owning the webhook, and the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub webhook_channel: u64,
    pub thread: Option<u64>,
}

#[derive(Clone)]
struct Credentials {
    id: u64,
    token: String,
}

/// One message as a personality: its text, name and avatar.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookMessage {
    pub content: String,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// Always "parse nothing": personalities never ping.
    pub allowed_mentions: AllowedMentions,
}

/// A new text for a message a webhook sent.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookEdit {
    pub content: String,
    /// Always "parse nothing", on edits too: an edit can ping as a post can.
    pub allowed_mentions: AllowedMentions,
}

/// `{"parse": []}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AllowedMentions {
    pub parse: [&'static str; 0],
}

#[derive(Deserialize)]
struct SentMessage {
    id: serenity::MessageId,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    retry_after: Option<f64>,
    #[serde(default)]
    message: String,
}

/// Why a webhook message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("Discord refused the webhook request: {0}")]
    Discord(serenity::Error),
    #[error("webhook execution failed with HTTP {status}: {message}")]
    Status {
        status: u16,
        code: i64,
        message: String,
    },
    /// The request never got an answer. Built only through `From`, which strips the URL:
    /// an execution's URL holds the webhook's token.
    #[error("webhook execution failed: {0}")]
    Transport(reqwest::Error),
}

impl WebhookError {
    /// True when Discord answered that the message isn't there (deleted, or not this
    /// webhook's).
    pub fn is_unknown_message(&self) -> bool {
        matches!(
            self,
            WebhookError::Status {
                code: UNKNOWN_MESSAGE,
                ..
            }
        )
    }
}

impl From<serenity::Error> for WebhookError {
    fn from(e: serenity::Error) -> Self {
        WebhookError::Discord(super::error::without_urls(e))
    }
}

impl From<reqwest::Error> for WebhookError {
    fn from(e: reqwest::Error) -> Self {
        WebhookError::Transport(e.without_url())
    }
}

/// Finds, creates and caches the bot's webhooks, and sends messages through them.
pub struct WebhookManager {
    http: Arc<serenity::Http>,
    client: reqwest::Client,
    api_base: Url,
    /// Webhook credentials and targets per channel, forgotten after an idle hour (and
    /// looked up again on the next message there).
    webhooks: IdleMap<u64, Credentials>,
    targets: IdleMap<u64, Target>,
    /// One creator per channel at a time, so two messages don't create two webhooks.
    creating: DashMap<u64, Arc<tokio::sync::Mutex<()>>>,
    /// What Discord said about each webhook's rate-limit bucket.
    buckets: super::buckets::Buckets,
}

impl WebhookManager {
    /// A manager using `http` for webhook management and `api_base` (https://discord.com
    /// or DISCORD_API_URL) for executions.
    pub fn new(http: Arc<serenity::Http>, api_base: Url) -> Self {
        Self {
            http,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            api_base,
            webhooks: IdleMap::new(CACHE_IDLE),
            targets: IdleMap::new(CACHE_IDLE),
            creating: DashMap::new(),
            buckets: super::buckets::Buckets::default(),
        }
    }

    /// Sends one message (≤ 2000 characters) as a personality in `channel_id` and returns
    /// the id of the message Discord created. A deleted webhook is recreated once.
    pub async fn send(
        &self,
        channel_id: u64,
        message: &WebhookMessage,
    ) -> Result<u64, WebhookError> {
        let target = self.target(channel_id).await?;
        let webhook = self.webhook(target.webhook_channel).await?;
        match self.execute(&webhook, target.thread, message).await {
            Err(WebhookError::Status {
                code: UNKNOWN_WEBHOOK,
                ..
            }) => {
                info!(
                    channel_id = target.webhook_channel,
                    "webhook was deleted; creating a new one"
                );
                self.webhooks
                    .remove_if(&target.webhook_channel, |w| w.id == webhook.id);
                let webhook = self.webhook(target.webhook_channel).await?;
                self.execute(&webhook, target.thread, message).await
            }
            other => other,
        }
    }

    /// The webhook channel and thread for messages to `channel_id` (looked up once).
    pub async fn target(&self, channel_id: u64) -> Result<Target, WebhookError> {
        if let Some(t) = self.targets.get(&channel_id) {
            return Ok(t);
        }
        let channel = self
            .http
            .get_channel(serenity::ChannelId::new(channel_id))
            .await?;
        let target = match channel {
            serenity::Channel::Guild(c)
                if matches!(
                    c.kind,
                    serenity::ChannelType::PublicThread
                        | serenity::ChannelType::PrivateThread
                        | serenity::ChannelType::NewsThread
                ) =>
            {
                Target {
                    webhook_channel: c
                        .parent_id
                        .map_or(channel_id, poise::serenity_prelude::ChannelId::get),
                    thread: Some(channel_id),
                }
            }
            _ => Target {
                webhook_channel: channel_id,
                thread: None,
            },
        };
        self.targets.insert(channel_id, target, Instant::now());
        Ok(target)
    }

    async fn webhook(&self, channel_id: u64) -> Result<Credentials, WebhookError> {
        if let Some(w) = self.webhooks.get(&channel_id) {
            return Ok(w);
        }
        let lock = Arc::clone(self.creating.entry(channel_id).or_default().value());
        let creating = lock.lock().await;
        let found = self.webhooks.get(&channel_id);
        let result = match found {
            Some(w) => Ok(w),
            None => self.find_or_create(channel_id).await,
        };
        // The creator lock is only needed while someone waits on it; the last one out
        // removes it so the map doesn't keep one per channel ever answered in.
        drop(creating);
        self.creating
            .remove_if(&channel_id, |_, lock| Arc::strong_count(lock) <= 2);
        result
    }

    /// Reuses the bot's webhook in the channel or creates one, and caches it.
    async fn find_or_create(&self, channel_id: u64) -> Result<Credentials, WebhookError> {
        let channel = serenity::ChannelId::new(channel_id);
        // Reuse a webhook the bot made earlier: Discord shows its token only to its creator.
        let existing = channel
            .webhooks(&self.http)
            .await?
            .into_iter()
            .find(|w| w.name.as_deref() == Some(WEBHOOK_NAME) && w.token.is_some());
        let webhook = if let Some(w) = existing {
            w
        } else {
            info!(channel_id, "creating the channel's webhook");
            channel
                .create_webhook(&self.http, serenity::CreateWebhook::new(WEBHOOK_NAME))
                .await?
        };
        let token = webhook
            .token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .ok_or_else(|| WebhookError::Status {
                status: 0,
                code: 0,
                message: "Discord returned a webhook without a token".into(),
            })?;
        let credentials = Credentials {
            id: webhook.id.get(),
            token,
        };
        self.webhooks
            .insert(channel_id, credentials.clone(), Instant::now());
        Ok(credentials)
    }

    /// Changes the text of a message the channel's webhook sent (`PATCH
    /// /webhooks/{id}/{token}/messages/{message_id}`, with `thread_id` in threads).
    pub async fn edit(
        &self,
        channel_id: u64,
        message_id: u64,
        edit: &WebhookEdit,
    ) -> Result<(), WebhookError> {
        let target = self.target(channel_id).await?;
        let webhook = self.webhook(target.webhook_channel).await?;
        let path = format!(
            "api/v10/webhooks/{}/{}/messages/{message_id}",
            webhook.id, webhook.token
        );
        let url = self.url(&path, &[], target.thread).map_err(bad_url)?;
        self.request(&webhook, reqwest::Method::PATCH, url, Some(edit))
            .await
            .map(drop)
    }

    /// Deletes a message the channel's webhook sent (`DELETE
    /// /webhooks/{id}/{token}/messages/{message_id}`, with `thread_id` in threads). A message
    /// already gone counts as deleted.
    pub async fn delete(&self, channel_id: u64, message_id: u64) -> Result<(), WebhookError> {
        let target = self.target(channel_id).await?;
        let webhook = self.webhook(target.webhook_channel).await?;
        let path = format!(
            "api/v10/webhooks/{}/{}/messages/{message_id}",
            webhook.id, webhook.token
        );
        let url = self.url(&path, &[], target.thread).map_err(bad_url)?;
        match self
            .request::<()>(&webhook, reqwest::Method::DELETE, url, None)
            .await
        {
            Err(e) if e.is_unknown_message() => Ok(()),
            other => other.map(drop),
        }
    }

    async fn execute(
        &self,
        webhook: &Credentials,
        thread: Option<u64>,
        message: &WebhookMessage,
    ) -> Result<u64, WebhookError> {
        let path = format!("api/v10/webhooks/{}/{}", webhook.id, webhook.token);
        let url = self
            .url(&path, &[("wait", "true")], thread)
            .map_err(bad_url)?;
        let response = self
            .request(webhook, reqwest::Method::POST, url, Some(message))
            .await?;
        let sent: SentMessage = response.json().await?;
        Ok(sent.id.get())
    }

    /// `{api_base}/{path}?{query}[&thread_id=…]`.
    fn url(
        &self,
        path: &str,
        query: &[(&str, &str)],
        thread: Option<u64>,
    ) -> Result<Url, url::ParseError> {
        let mut url = self.api_base.join(path)?;
        for (name, value) in query {
            url.query_pairs_mut().append_pair(name, value);
        }
        if let Some(thread) = thread {
            url.query_pairs_mut()
                .append_pair("thread_id", &thread.to_string());
        }
        Ok(url)
    }

    /// Sends one request to a webhook route: waits while the webhook's bucket is empty,
    /// remembers what Discord says about the bucket, and retries 429s (after their
    /// `retry_after`) and 5xx answers.
    async fn request<B: Serialize>(
        &self,
        webhook: &Credentials,
        method: reqwest::Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<reqwest::Response, WebhookError> {
        let mut attempt = 0;
        loop {
            self.buckets.wait(webhook.id).await;
            let mut request = self.client.request(method.clone(), url.clone());
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await?;
            let status = response.status();
            self.buckets.update(webhook.id, response.headers());
            if status.is_success() {
                return Ok(response);
            }
            let header_delay = retry_after_header(&response);
            let body: ErrorBody = response.json().await.unwrap_or_default();
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            if !retryable || attempt >= MAX_RETRIES {
                return Err(WebhookError::Status {
                    status: status.as_u16(),
                    code: body.code,
                    message: body.message,
                });
            }
            attempt += 1;
            let delay = if status == StatusCode::TOO_MANY_REQUESTS {
                let delay = body
                    .retry_after
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .or(header_delay)
                    .unwrap_or(Duration::from_secs(1))
                    .min(MAX_RETRY_AFTER);
                self.buckets.block(webhook.id, delay);
                delay
            } else {
                Duration::from_millis(250 * 2u64.pow(attempt - 1))
            };
            warn!(
                status = status.as_u16(),
                method = %method,
                attempt,
                delay_ms = delay.as_millis() as u64,
                "webhook request will be retried"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// The error for a webhook URL that doesn't parse (the URL itself holds the token).
fn bad_url(e: url::ParseError) -> WebhookError {
    WebhookError::Status {
        status: 0,
        code: 0,
        message: format!("bad webhook URL: {e}"),
    }
}

fn retry_after_header(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}
