//! Serving Discord with a running application: the gateway, commands, messages, and a
//! clean stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use poise::serenity_prelude as serenity;
use tracing::{error, info, warn};
use url::Url;

use super::inflight::InFlight;
use super::webhooks::WebhookManager;
use super::{commands, error::on_error, messages, BotError, Data, DiscordError};
use crate::app::App;
use crate::config::DiscordConfig;
use crate::llm::{LlmClient, LlmConfig};
use crate::metrics::{GatewayProbe, Outcome, ShardStatus};

/// View Channels, Send Messages, Read Message History, Manage Webhooks and Use Application
/// Commands: what the README's invite link asks for.
const INVITE_PERMISSIONS: u64 = 2_684_423_168;
/// A `/reset` older than this no longer matters: the channel history the bot reads
/// (`LLM_CONTEXT_MESSAGES`, at most 100) has moved past it in all but idle channels.
const CONTEXT_START_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How often the bot looks for changes made by the command line in another process.
const EXTERNAL_EVENTS_POLL: Duration = Duration::from_secs(1);
/// How long a shutdown waits for messages being answered and commands being run.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Sent-message mappings older than this are forgotten (replies to them no longer resolve).
const MESSAGE_MAPPING_RETENTION: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Connects to Discord and answers commands and messages with `app` until `shutdown`
/// completes (then it waits for work in progress) or the gateway fails for good.
pub async fn serve(
    app: Arc<App>,
    discord: &DiscordConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DiscordError> {
    let llm = LlmClient::new(LlmConfig {
        base_url: discord.llm_base_url.clone(),
        api_key: discord.llm_api_key.clone(),
        default_model: discord.llm_model.clone(),
        timeout: discord.llm_timeout,
        max_tokens: Some(discord.llm_max_tokens),
    })
    .map_err(DiscordError::Llm)?;
    info!(
        version = %env!("CARGO_PKG_VERSION"),
        database = %app.db.path().display(),
        personalities = app.cache.len(),
        llm_base_url = %llm.shown_base_url(),
        llm_model = %llm.default_model(),
        "starting personae"
    );
    let probe_llm = llm.clone();
    tokio::spawn(async move {
        let probe = probe_llm.probe().await;
        let base_url = probe_llm.shown_base_url();
        if let Some(warning) =
            crate::llm::probe_warning(&probe, &base_url, probe_llm.default_model())
        {
            warn!("{warning}");
        } else {
            info!(llm_base_url = %base_url, "the LLM endpoint answers");
        }
    });

    let mut http = serenity::HttpBuilder::new(&discord.token);
    let api_base = match &discord.api_url {
        Some(url) => {
            // serenity's own rate limiter bypasses the proxy, so with DISCORD_API_URL the
            // proxy (or the Discord-compatible server) is in charge of rate limits.
            http = http
                .proxy(url.as_str().trim_end_matches('/'))
                .ratelimiter_disabled(true);
            url.clone()
        }
        None => Url::parse("https://discord.com/").map_err(|e| DiscordError::Setup(e.into()))?,
    };
    let http = http.build();
    tokio::pin!(shutdown);
    if !wait_for_discord(&http, &mut shutdown).await {
        return Ok(());
    }

    let dev_guild = discord.dev_guild_id;
    let costs = super::costs::CostLimits::new(discord);
    let context_messages = discord.llm_context_messages;
    let stream = discord.llm_stream;
    let max_personalities = discord.max_personalities_per_message as usize;
    let vision_models = discord.llm_vision_models.clone();
    let setup_app = Arc::clone(&app);
    let inflight = Arc::new(InFlight::default());
    let setup_inflight = Arc::clone(&inflight);
    let attachment_hosts = discord.attachment_hosts.clone();
    // Attachments are fetched from the configured bases only: no redirect may lead away.
    let attachment_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(super::attachments::DOWNLOAD_TIMEOUT)
        .build()
        .map_err(|e| DiscordError::Setup(e.into()))?;
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: commands::all(),
            on_error: |e| Box::pin(on_error(e)),
            event_handler: |framework, event| Box::pin(on_event(framework, event)),
            pre_command: |ctx| {
                Box::pin(async move {
                    ctx.data().inflight.command_started(ctx.id());
                })
            },
            post_command: |ctx| {
                Box::pin(async move {
                    ctx.data().inflight.command_finished(ctx.id());
                    ctx.data()
                        .app
                        .metrics
                        .command(&ctx.command().qualified_name, Outcome::ok);
                })
            },
            ..Default::default()
        })
        .initialize_owners(false)
        .setup(move |ctx, ready, framework| {
            Box::pin(async move {
                let commands = &framework.options().commands;
                if let Some(guild) = dev_guild {
                    poise::builtins::register_in_guild(ctx, commands, serenity::GuildId::new(guild)).await?;
                    info!(guild, "slash commands registered in the development server");
                } else {
                    poise::builtins::register_globally(ctx, commands).await?;
                    info!("slash commands registered globally (Discord may take a while to show them)");
                }
                info!(bot = %ready.user.name, guilds = ready.guilds.len(), "connected to Discord");
                if ready.guilds.is_empty() {
                    info!(
                        "the bot is in no server yet; invite it with https://discord.com/oauth2/authorize?client_id={}&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}",
                        ready.application.id
                    );
                }
                Ok(Data {
                    app: setup_app,
                    llm,
                    webhooks: WebhookManager::new(Arc::clone(&ctx.http), api_base),
                    costs,
                    inflight: setup_inflight,
                    context_messages,
                    stream,
                    max_personalities,
                    attachment_hosts,
                    vision_models,
                    downloads: attachment_client,
                    context_starts: super::idle_map::IdleMap::new(CONTEXT_START_RETENTION),
                })
            })
        })
        .build();

    let intents = serenity::GatewayIntents::GUILDS
        | serenity::GatewayIntents::GUILD_MESSAGES
        | serenity::GatewayIntents::DIRECT_MESSAGES
        | serenity::GatewayIntents::MESSAGE_CONTENT;
    let mut client = serenity::ClientBuilder::new_with_http(http, intents)
        .framework(framework)
        .await
        .map_err(DiscordError::Gateway)?;

    let background = spawn_background(Arc::clone(&app));
    let shard_manager = Arc::clone(&client.shard_manager);
    let watcher = tokio::spawn(watch_connection(Arc::clone(&shard_manager)));
    app.metrics
        .set_gateway(Arc::new(Shards(Arc::clone(&shard_manager))));
    let result = tokio::select! {
        result = client.start() => result,
        () = &mut shutdown => {
            info!("shutting down: closing the gateway");
            shard_manager.shutdown_all().await;
            let pending = inflight.count();
            if pending > 0 {
                info!(pending, "waiting for messages and commands in progress");
            }
            if !inflight.wait_idle(SHUTDOWN_GRACE).await {
                warn!(pending = inflight.count(), "gave up waiting for work in progress");
            }
            Ok(())
        }
    };
    background.abort();
    watcher.abort();
    match result {
        Ok(()) => Ok(()),
        Err(serenity::Error::Gateway(serenity::GatewayError::InvalidAuthentication)) => {
            Err(DiscordError::InvalidToken)
        }
        Err(serenity::Error::Gateway(serenity::GatewayError::DisallowedGatewayIntents)) => {
            Err(DiscordError::DisallowedIntents)
        }
        Err(e) => Err(DiscordError::Gateway(e)),
    }
}

/// The first wait before asking Discord again, doubled after each failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
const LONGEST_RETRY: Duration = Duration::from_secs(60);

/// Waits until Discord's REST API answers (`GET /gateway`), with a WARN and a growing wait
/// after each failure: serenity would otherwise fall back to the default gateway URL and
/// retry quietly. False when `shutdown` came first.
async fn wait_for_discord(
    http: &serenity::Http,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> bool {
    let mut wait = FIRST_RETRY;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let error = match http.get_gateway().await {
            // An answer, even 401 for a bad token (the gateway then says so clearly), means
            // Discord is reachable.
            Ok(_) | Err(serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(_))) => {
                return true
            }
            Err(e) => super::error::without_urls(e),
        };
        warn!(
            attempt,
            retry_in_secs = wait.as_secs(),
            error = %error,
            "cannot reach Discord; trying again"
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut *shutdown => return false,
        }
        wait = (wait * 2).min(LONGEST_RETRY);
    }
}

/// How often the gateway connection is looked at: serenity tries to start a shard again
/// every 5 seconds while it can't connect.
const CONNECTION_CHECK: Duration = Duration::from_secs(5);

/// Logs a WARN, with serenity's back-off, at every check that finds no shard connected,
/// and an INFO when the gateway is back: serenity retries on its own and says little.
/// The first check comes one interval after start-up, when the first connection is made.
async fn watch_connection(shards: Arc<serenity::ShardManager>) {
    let mut down_since: Option<std::time::Instant> = None;
    let mut attempt: u32 = 0;
    let start = tokio::time::Instant::now() + CONNECTION_CHECK;
    let mut checks = tokio::time::interval_at(start, CONNECTION_CHECK);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        checks.tick().await;
        let connected = shards
            .runners
            .lock()
            .await
            .values()
            .any(|r| r.stage == serenity::ConnectionStage::Connected);
        match (connected, down_since) {
            (true, Some(since)) => {
                info!(
                    down_for_secs = since.elapsed().as_secs(),
                    "connected to Discord again"
                );
                down_since = None;
                attempt = 0;
            }
            (true, None) => {}
            (false, _) => {
                let since = *down_since.get_or_insert_with(std::time::Instant::now);
                attempt += 1;
                warn!(
                    attempt,
                    down_for_secs = since.elapsed().as_secs(),
                    retry_in_secs = CONNECTION_CHECK.as_secs(),
                    "cannot reach Discord's gateway; trying again"
                );
            }
        }
    }
}

/// The gateway as the health check and the metrics see it.
struct Shards(Arc<serenity::ShardManager>);

#[async_trait::async_trait]
impl GatewayProbe for Shards {
    async fn shards(&self) -> Vec<ShardStatus> {
        let runners = self.0.runners.lock().await;
        let mut shards: Vec<ShardStatus> = runners
            .iter()
            .map(|(id, runner)| ShardStatus {
                id: id.0,
                connected: runner.stage == serenity::ConnectionStage::Connected,
                stage: runner.stage.to_string(),
                heartbeat_latency: runner.latency,
            })
            .collect();
        shards.sort_by_key(|s| s.id);
        shards
    }
}

async fn on_event(
    framework: poise::FrameworkContext<'_, Data, BotError>,
    event: &serenity::FullEvent,
) -> Result<(), BotError> {
    if let serenity::FullEvent::Message { new_message } = event {
        let (ctx, data) = (framework.serenity_context, framework.user_data);
        let _in_flight = data.inflight.message();
        if let Err(e) = messages::on_message(ctx, data, new_message).await {
            error!(message_id = new_message.id.get(), channel_id = new_message.channel_id.get(), error = %e, "could not answer a message");
        }
    }
    Ok(())
}

/// Periodic work: publish events the command line committed from another process, and
/// forget very old sent-message mappings.
fn spawn_background(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut poll = tokio::time::interval(EXTERNAL_EVENTS_POLL);
        let mut ticks: u64 = 0;
        loop {
            poll.tick().await;
            ticks += 1;
            match app.service.publish_external_events().await {
                Ok(0) => {}
                Ok(n) => info!(events = n, "applied changes made outside the bot"),
                Err(e) => warn!(error = %e, "could not read new events"),
            }
            if ticks % 3600 == 1 {
                if let Err(e) = app
                    .tracker
                    .prune_messages_older_than(MESSAGE_MAPPING_RETENTION)
                    .await
                {
                    warn!(error = %e, "could not prune old message mappings");
                }
            }
        }
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (systemd, docker stop).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received"),
        () = terminate => info!("SIGTERM received"),
    }
}
