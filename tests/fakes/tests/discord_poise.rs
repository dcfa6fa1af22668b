//! A real serenity + poise client against the fake: start-up, command
//! registration, slash commands with replies, deferrals, ephemeral
//! follow-ups, autocomplete, webhook execution, a gateway resume, and a
//! clean shutdown — with every body the client sends validated against
//! Discord's OpenAPI description.

use std::time::Duration;

use personae_fakes::discord::{CommandSpec, FakeDiscord, FakeDiscordConfig, MessageSpec};
use poise::serenity_prelude as serenity;
use serde_json::{json, Value};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Context<'a> = poise::Context<'a, (), Error>;

const WAIT: Duration = Duration::from_secs(30);

/// Replies "Pong!".
#[poise::command(slash_command)]
async fn ping(ctx: Context<'_>) -> Result<(), Error> {
    ctx.say("Pong!").await?;
    Ok(())
}

async fn complete_name(_ctx: Context<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    let choices = ["Aria", "Arthur", "Bob"]
        .into_iter()
        .filter(|name| name.to_lowercase().starts_with(&partial.to_lowercase()))
        .map(serenity::AutocompleteChoice::from)
        .collect();
    serenity::CreateAutocompleteResponse::new().set_choices(choices)
}

/// Manage personalities.
#[poise::command(
    slash_command,
    subcommands("show"),
    default_member_permissions = "MANAGE_GUILD"
)]
async fn personality(_ctx: Context<'_>) -> Result<(), Error> {
    Ok(())
}

/// Show one personality, to its caller only.
#[poise::command(slash_command)]
async fn show(
    ctx: Context<'_>,
    #[description = "Its name"]
    #[autocomplete = "complete_name"]
    name: String,
) -> Result<(), Error> {
    ctx.send(
        poise::CreateReply::default()
            .content(format!("This is {name}."))
            .ephemeral(true),
    )
    .await?;
    Ok(())
}

/// Thinks first, then answers twice.
#[poise::command(slash_command)]
async fn slow(ctx: Context<'_>) -> Result<(), Error> {
    ctx.defer().await?;
    ctx.say("Done thinking.").await?;
    ctx.send(
        poise::CreateReply::default()
            .content("Just for you.")
            .ephemeral(true),
    )
    .await?;
    Ok(())
}

/// Speaks through a webhook as a persona.
#[poise::command(slash_command)]
async fn speak(ctx: Context<'_>, #[description = "What to say"] text: String) -> Result<(), Error> {
    let webhook = ctx
        .channel_id()
        .create_webhook(ctx, serenity::CreateWebhook::new("Personae"))
        .await?;
    let execute = serenity::ExecuteWebhook::new()
        .content(text)
        .username("Aria")
        .avatar_url("https://example.com/aria.png")
        .allowed_mentions(serenity::CreateAllowedMentions::new());
    let message = webhook
        .execute(ctx, true, execute)
        .await?
        .ok_or("no message despite wait=true")?;
    ctx.send(
        poise::CreateReply::default()
            .content(format!("Sent {}.", message.id))
            .ephemeral(true),
    )
    .await?;
    Ok(())
}

struct Bot {
    shard_manager: std::sync::Arc<serenity::ShardManager>,
    run: tokio::task::JoinHandle<Result<(), serenity::Error>>,
}

async fn start_bot(fake: &FakeDiscord) -> Bot {
    let http = serenity::HttpBuilder::new("test-token")
        .proxy(fake.base_url())
        .ratelimiter_disabled(true)
        .build();
    let framework = poise::Framework::builder()
        .options(poise::FrameworkOptions {
            commands: vec![ping(), personality(), slow(), speak()],
            allowed_mentions: Some(serenity::CreateAllowedMentions::new()),
            ..Default::default()
        })
        .setup(|ctx, _ready, framework| {
            Box::pin(async move {
                let guild = serenity::GuildId::new(8001);
                poise::builtins::register_in_guild(ctx, &framework.options().commands, guild)
                    .await?;
                Ok(())
            })
        })
        .build();
    let intents =
        serenity::GatewayIntents::non_privileged() | serenity::GatewayIntents::MESSAGE_CONTENT;
    let mut client = serenity::ClientBuilder::new_with_http(http, intents)
        .framework(framework)
        .await
        .expect("client builds");
    let shard_manager = client.shard_manager.clone();
    let run = tokio::spawn(async move { client.start().await });
    Bot { shard_manager, run }
}

fn assert_clean(fake: &FakeDiscord) {
    assert_eq!(
        fake.validation_errors(),
        Vec::<String>::new(),
        "validation errors"
    );
    let unhandled: Vec<String> = fake
        .unhandled_requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(unhandled, Vec::<String>::new(), "unhandled requests");
    assert_eq!(
        fake.response_validation_errors(),
        Vec::<String>::new(),
        "the fake's own answers"
    );
}

async fn run_command(fake: &FakeDiscord, spec: CommandSpec) -> (String, Value) {
    let id = fake.slash_command(spec).await;
    let response = fake
        .wait_interaction_response(&id, WAIT)
        .await
        .expect("the bot answers");
    (id, response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poise_bot_runs_against_the_fake() {
    // The debug build of a bot on a busy 2-core machine can be slow to answer.
    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        interaction_ack_deadline: Some(Duration::from_secs(10)),
        ..Default::default()
    })
    .await;
    let bot = start_bot(&fake).await;
    fake.wait_ready(WAIT).await.expect("bot ready");

    let registered = fake.registered_commands();
    let names: Vec<&str> = registered
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["ping", "personality", "slow", "speak"]);
    assert_eq!(registered[1]["options"][0]["name"], "show");
    let paths: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.is("PUT", "/applications/9001/guilds/8001/commands")),
        "{paths:?}"
    );

    let (_, pong) = run_command(&fake, CommandSpec::new("ping", vec![])).await;
    assert_eq!(pong["type"], 4);
    assert_eq!(pong["data"]["content"], "Pong!");

    let typing = vec![
        json!({"name": "show", "type": 1, "options": [{"name": "name", "type": 3, "value": "ar", "focused": true}]}),
    ];
    let id = fake
        .autocomplete(CommandSpec::new("personality", typing))
        .await;
    let choices = fake
        .wait_interaction_response(&id, WAIT)
        .await
        .expect("choices");
    assert_eq!(choices["type"], 8);
    let names: Vec<&str> = choices["data"]["choices"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Aria", "Arthur"]);

    let chosen = vec![
        json!({"name": "show", "type": 1, "options": [{"name": "name", "type": 3, "value": "Aria"}]}),
    ];
    let (_, shown) = run_command(&fake, CommandSpec::new("personality", chosen)).await;
    assert_eq!(shown["data"]["content"], "This is Aria.");
    assert_eq!(shown["data"]["flags"], 64);

    let (id, deferred) = run_command(&fake, CommandSpec::new("slow", vec![])).await;
    assert_eq!(deferred["type"], 5);
    let followups = fake
        .wait_interaction_followups(&id, 2, WAIT)
        .await
        .expect("follow-ups");
    assert_eq!(followups[0]["content"], "Done thinking.");
    assert_eq!(followups[1]["flags"], 64);

    let say = vec![json!({"name": "text", "type": 3, "value": "Hello from Aria"})];
    let id = fake.slash_command(CommandSpec::new("speak", say)).await;
    let spoken = fake
        .wait_for_message(|m| m["author"]["username"] == "Aria", WAIT)
        .await
        .expect("webhook message");
    assert_eq!(spoken["content"], "Hello from Aria");
    let executions = fake.webhook_executions();
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].query_param("wait").as_deref(), Some("true"));
    let reply = fake
        .wait_interaction_response(&id, WAIT)
        .await
        .expect("speak reply");
    assert_eq!(
        reply["data"]["content"],
        format!("Sent {}.", spoken["id"].as_str().expect("id"))
    );

    // A user message reaches the bot too (MESSAGE_CREATE parses; nothing answers it).
    fake.send_message(MessageSpec::new("6001", "7001", "alice", "hello"))
        .await;

    fake.close_gateway(4000).await.expect("closed");
    fake.wait_resumed(1, WAIT).await.expect("the bot resumes");
    let (_, pong) = run_command(&fake, CommandSpec::new("ping", vec![])).await;
    assert_eq!(pong["data"]["content"], "Pong!");

    fake.drop_gateway().await.expect("dropped");
    fake.wait_resumed(2, WAIT)
        .await
        .expect("the bot resumes after a drop");
    let (_, pong) = run_command(&fake, CommandSpec::new("ping", vec![])).await;
    assert_eq!(pong["data"]["content"], "Pong!");
    assert_eq!(fake.identify_count(), 1, "resumed, never re-identified");

    assert_clean(&fake);

    bot.shard_manager.shutdown_all().await;
    let stopped = tokio::time::timeout(WAIT, bot.run)
        .await
        .expect("the client stops in time");
    stopped.expect("client task").expect("client ends cleanly");
    assert!(fake.gateway_client_close_codes().contains(&Some(1000)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_stops_the_client() {
    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        reject_token: true,
        ..Default::default()
    })
    .await;
    let bot = start_bot(&fake).await;
    let ended = tokio::time::timeout(WAIT, bot.run)
        .await
        .expect("the client gives up in time");
    let error = ended
        .expect("client task")
        .expect_err("authentication fails");
    assert!(error.to_string().to_lowercase().contains("auth"), "{error}");
}
