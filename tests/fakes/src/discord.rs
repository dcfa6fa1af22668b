//! A fake Discord for end-to-end tests: REST (`/api/v10/...`) and the
//! gateway websocket (`/ws`) on one port of 127.0.0.1.
//!
//! Point serenity at it with
//! `HttpBuilder::new(token).proxy(fake.base_url()).ratelimiter_disabled(true)`
//! and build the client with `ClientBuilder::new_with_http`. The fake then:
//!
//! * answers the start-up sequence (`GET /gateway`, the application lookup,
//!   HELLO, IDENTIFY → READY and GUILD_CREATE, command registration);
//! * records every REST request ([`FakeDiscord::requests`]) and validates
//!   every JSON body against Discord's OpenAPI description
//!   ([`FakeDiscord::validation_errors`] — tests assert it stays empty);
//! * lets a test play the users: [`FakeDiscord::send_message`],
//!   [`FakeDiscord::slash_command`], [`FakeDiscord::autocomplete`],
//!   [`FakeDiscord::button_click`], [`FakeDiscord::modal_submit`], or any raw
//!   [`FakeDiscord::dispatch`];
//! * keeps what the bot does — messages per channel, webhooks and their
//!   messages, interaction responses, follow-ups and edits — and lets tests
//!   wait for it, every wait with a time-out;
//! * injects faults ([`FakeDiscord::fail_next`]) and gateway disconnects
//!   ([`FakeDiscord::close_gateway`], [`FakeDiscord::drop_gateway`]).
//!
//! Like Discord, it also rejects what Discord rejects beyond the schema
//! (empty messages, webhook names containing "discord"/"clyde", a second
//! acknowledgement of an interaction, an acknowledgement after 3 s, …);
//! those rejections are listed in [`FakeDiscord::validation_errors`] too.
//! Unless configured otherwise it echoes the bot's own messages and webhook
//! messages back as MESSAGE_CREATE, as Discord does.
//!
//! The server stops when the [`FakeDiscord`] is dropped.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

mod attachments;
mod cdn;
mod channels;
mod commands;
mod gateway;
mod interactions;
mod multipart;
pub mod openapi;
mod payloads;
mod rate_limits;
mod record;
mod rest;
mod routes;
mod server;
mod state;
mod user_interactions;
mod webhooks;

pub use channels::MessageSpec;
pub use multipart::UploadedFile;
pub use record::{RecordedRequest, RequestMatcher, API_PREFIX};
pub use user_interactions::{CommandSpec, ComponentSpec, MessageCommandSpec, ModalSpec};

pub use attachments::AttachmentSpec;
pub use rate_limits::RateLimit;
use record::Fault;
use state::Shared;

/// Settings of a [`FakeDiscord`]; `Default` gives the values below.
#[derive(Clone, Debug)]
pub struct FakeDiscordConfig {
    /// Port on 127.0.0.1; 0 (default) picks a free one.
    pub port: u16,
    /// Close the gateway with 4004 (authentication failed) after IDENTIFY.
    pub reject_token: bool,
    /// Close the gateway with 4014 (disallowed intents) after IDENTIFY, as Discord does when
    /// a privileged intent is asked for but not enabled in the Developer Portal.
    pub disallow_privileged_intents: bool,
    /// READY lists no guild (a bot nobody invited yet); set `send_guild_create` to false too.
    pub in_no_server: bool,
    /// The bot user's id; default `"9001"`.
    pub bot_user_id: String,
    /// The bot user's name; default `"testbot"`.
    pub bot_username: String,
    /// The application id READY announces; default `"9001"`.
    pub application_id: String,
    /// The guild the bot is in; default `"8001"`.
    pub guild_id: String,
    /// That guild's name; default `"Test Guild"`.
    pub guild_name: String,
    /// Announced in HELLO; heartbeats are answered whenever they arrive.
    pub heartbeat_interval_ms: u64,
    /// Send GUILD_CREATE (with registered channels) after READY; default true.
    pub send_guild_create: bool,
    /// Dispatch MESSAGE_CREATE/UPDATE/DELETE for messages the bot creates,
    /// edits or deletes (REST, webhooks, interaction responses), as Discord
    /// does; default true.
    pub echo_bot_messages: bool,
    /// Interactions not acknowledged within this time get 404 "Unknown
    /// interaction", as on Discord (3 s); `None` disables the check.
    pub interaction_ack_deadline: Option<Duration>,
    /// Each webhook's bucket for executions and message edits ([`RateLimit::WEBHOOK`],
    /// Discord's, by default); `None` lets everything through.
    pub webhook_rate_limit: Option<RateLimit>,
}

impl Default for FakeDiscordConfig {
    fn default() -> Self {
        Self {
            port: 0,
            reject_token: false,
            disallow_privileged_intents: false,
            in_no_server: false,
            bot_user_id: "9001".to_owned(),
            bot_username: "testbot".to_owned(),
            application_id: "9001".to_owned(),
            guild_id: "8001".to_owned(),
            guild_name: "Test Guild".to_owned(),
            heartbeat_interval_ms: 41_250,
            send_guild_create: true,
            echo_bot_messages: true,
            interaction_ack_deadline: Some(Duration::from_secs(3)),
            webhook_rate_limit: Some(RateLimit::WEBHOOK),
        }
    }
}

/// A running fake Discord. See the [module docs](self).
pub struct FakeDiscord {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl FakeDiscord {
    /// Starts a fake with the default configuration.
    ///
    /// # Panics
    /// If no port on 127.0.0.1 can be bound (use [`Self::try_start_with`] to
    /// handle that).
    pub async fn start() -> Self {
        Self::start_with(FakeDiscordConfig::default()).await
    }

    /// Starts a fake with the given configuration.
    ///
    /// # Panics
    /// If the port cannot be bound (use [`Self::try_start_with`] to handle that).
    pub async fn start_with(config: FakeDiscordConfig) -> Self {
        match Self::try_start_with(config).await {
            Ok(fake) => fake,
            Err(e) => panic!("fake Discord could not bind 127.0.0.1: {e}"),
        }
    }

    /// Starts a fake, reporting a failure to bind.
    pub async fn try_start_with(config: FakeDiscordConfig) -> std::io::Result<Self> {
        let listener = server::bind(config.port).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared::new(config, base_url));
        let server = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        Ok(Self { shared, server })
    }

    /// `http://127.0.0.1:PORT`, for serenity's `HttpBuilder::proxy`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `ws://127.0.0.1:PORT/ws`, the gateway URL the fake hands out.
    pub fn gateway_url(&self) -> String {
        self.shared.ws_url()
    }

    /// The configuration the fake runs with.
    pub fn config(&self) -> &FakeDiscordConfig {
        &self.shared.config
    }

    /// Waits until the bot has identified, READY has been sent and the bot
    /// has registered its commands (poise registers after READY and ignores
    /// events until it has). The error says which step is missing.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let ready = self
            .shared
            .wait_for(timeout, "the bot to be ready", |s| {
                (s.gateway.ready_count > 0 && s.commands.registrations > 0).then_some(())
            })
            .await;
        ready.map_err(|timed_out| {
            let missing = self.shared.read(|s| {
                if s.requests.is_empty() && s.gateway.received.is_empty() {
                    "no request and no gateway connection arrived (is the bot's HTTP proxy set to the fake's base_url, with the rate limiter disabled?)".to_owned()
                } else if s.gateway.identify_count == 0 {
                    "no IDENTIFY arrived on the gateway".to_owned()
                } else if s.gateway.ready_count == 0 {
                    "IDENTIFY was rejected (reject_token is set)".to_owned()
                } else {
                    let failed: Vec<String> = s
                        .requests
                        .iter()
                        .filter(|r| r.api_path().contains("/commands") && r.status >= 400)
                        .map(|r| format!("{} {} → {}", r.method, r.path, r.status))
                        .collect();
                    format!("READY was sent but no command registration succeeded (failed: {failed:?}; validation errors: {:?})", s.validation_errors)
                }
            });
            format!("{timed_out}: {missing}")
        })
    }

    /// Waits until `condition` holds, looking again after every change the
    /// fake sees (requests, gateway frames, …).
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&FakeDiscord) -> bool,
    ) -> Result<(), String> {
        self.shared
            .wait_changes(timeout, what, || condition(self).then_some(()))
            .await
    }

    /// Every REST request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.read(|s| s.requests.clone())
    }

    /// Waits for a request (already received or arriving later) for which
    /// `predicate` holds, and returns the first such one.
    pub async fn wait_for_request(
        &self,
        predicate: impl Fn(&RecordedRequest) -> bool,
        timeout: Duration,
    ) -> Result<RecordedRequest, String> {
        self.shared
            .wait_for(timeout, "a matching request", |s| {
                s.requests.iter().find(|r| predicate(r)).cloned()
            })
            .await
    }

    /// Requests to routes the fake does not implement (answered 404).
    pub fn unhandled_requests(&self) -> Vec<RecordedRequest> {
        self.shared.read(|s| s.unhandled.clone())
    }

    /// One line per request Discord would have rejected as malformed: bodies
    /// that fail the OpenAPI schema of their route (route, error paths,
    /// body), and the semantic rejections listed in the module docs.
    pub fn validation_errors(&self) -> Vec<String> {
        self.shared.read(|s| s.validation_errors.clone())
    }

    /// Answers of the fake itself that do not fit the OpenAPI response
    /// schema; a non-empty list is a bug in the fake.
    pub fn response_validation_errors(&self) -> Vec<String> {
        self.shared.read(|s| s.response_errors.clone())
    }

    /// Answers the next `times` requests that match with `status` and
    /// `body` instead of handling them. For 429 the rate-limit headers
    /// (`retry-after`, `x-ratelimit-*`) are derived from the body's
    /// `retry_after` and `global`. Faults are applied in the order added.
    pub fn fail_next(
        &self,
        matcher: impl Into<RequestMatcher>,
        status: u16,
        body: Value,
        times: usize,
    ) {
        self.fail_next_with_headers(matcher, status, body, Vec::new(), times);
    }

    /// Drops the connection of the next `times` requests that match, without an answer, as
    /// a network failure does.
    pub fn drop_next(&self, matcher: impl Into<RequestMatcher>, times: usize) {
        self.fail_next(matcher, rest::DROP_CONNECTION, Value::Null, times);
    }

    /// Like [`Self::fail_next`], with extra response headers.
    pub fn fail_next_with_headers(
        &self,
        matcher: impl Into<RequestMatcher>,
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
        times: usize,
    ) {
        let fault = Fault {
            matcher: matcher.into(),
            status,
            body,
            headers,
            remaining: times,
        };
        self.shared.update(|s| s.faults.push(fault));
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        self.server.abort();
    }
}
