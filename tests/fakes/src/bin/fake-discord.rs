//! Runs the fake Discord on 127.0.0.1 for trying the bot by hand.
//!
//! ```text
//! cargo run -p personae-fakes --bin fake-discord -- --port 8765
//! DISCORD_API_URL=http://127.0.0.1:8765 DISCORD_TOKEN=x cargo run -- run
//! ```
//!
//! It prints every REST request and gateway payload it receives, and reads
//! commands from standard input (type `help`).

use std::time::Duration;

use personae_fakes::discord::{
    CommandSpec, FakeDiscord, FakeDiscordConfig, MessageCommandSpec, MessageSpec,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const USAGE: &str = "\
usage: fake-discord [--port PORT] [--app-id ID] [--guild-id ID] [--reject-token]

Serves Discord's REST API (/api/v10/...) and gateway (/ws) on 127.0.0.1:PORT
(default 8765). Point the bot's DISCORD_API_URL at http://127.0.0.1:PORT.";

const HELP: &str = "\
commands (users are alice 7001 unless given; channel 6001 in guild 8001):
  say TEXT...                       alice writes TEXT in channel 6001
  sayas CHANNEL USER_ID NAME TEXT...  someone writes TEXT in CHANNEL
  cmd NAME [OPTIONS_JSON]           alice runs /NAME with data.options
  action MESSAGE_ID NAME...         alice picks Apps → NAME on a message (e.g. Regenerate)
  dispatch EVENT JSON               a raw gateway dispatch
  close CODE | drop                 close (with CODE) or drop the gateway socket
  history CHANNEL                   the channel's messages, oldest first
  errors                            validation errors and unhandled requests
  help | quit";

fn parse_args() -> Result<FakeDiscordConfig, String> {
    let mut config = FakeDiscordConfig {
        port: 8765,
        interaction_ack_deadline: None,
        ..Default::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                config.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--app-id" => {
                let id = value("--app-id")?;
                config.application_id.clone_from(&id);
                config.bot_user_id = id;
            }
            "--guild-id" => config.guild_id = value("--guild-id")?,
            "--reject-token" => config.reject_token = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() {
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let fake = match FakeDiscord::try_start_with(config).await {
        Ok(fake) => fake,
        Err(e) => {
            eprintln!("cannot bind 127.0.0.1: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "fake Discord on {} (gateway {}); type `help`",
        fake.base_url(),
        fake.gateway_url()
    );
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut printed = Printed::default();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    if !run_command(&fake, line.trim()).await {
                        break;
                    }
                }
                Ok(None) | Err(_) => break,
            },
            _ = tick.tick() => printed.print_new(&fake),
        }
    }
}

/// How much of the fake's recordings has been printed.
#[derive(Default)]
struct Printed {
    requests: usize,
    frames: usize,
}

impl Printed {
    fn print_new(&mut self, fake: &FakeDiscord) {
        for request in fake.requests().iter().skip(self.requests) {
            let query = request
                .query
                .as_deref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let body = request
                .body
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default();
            println!(
                "<- {} {}{query} → {} {body}",
                request.method,
                request.api_path(),
                request.status
            );
            // A personality speaking (a webhook execution), in the words a member would see.
            if request.method == "POST" && request.api_path().starts_with("/webhooks/") {
                if let Some(body) = &request.body {
                    if let (Some(name), Some(content)) =
                        (body["username"].as_str(), body["content"].as_str())
                    {
                        println!("** {name}: {content}");
                    }
                }
            }
            self.requests += 1;
        }
        for frame in fake.gateway_received().iter().skip(self.frames) {
            if frame["op"] != 1 {
                println!("<~ gateway {frame}");
            }
            self.frames += 1;
        }
    }
}

/// Runs one stdin command; `false` to quit.
async fn run_command(fake: &FakeDiscord, line: &str) -> bool {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "" => {}
        "quit" | "exit" => return false,
        "help" => println!("{HELP}"),
        "say" => {
            let id = fake
                .send_message(MessageSpec::new("6001", "7001", "alice", rest))
                .await;
            println!("-> message {id}");
        }
        "sayas" => {
            let parts: Vec<&str> = rest.splitn(4, ' ').collect();
            match parts.as_slice() {
                [channel, user, name, text] => {
                    let id = fake
                        .send_message(MessageSpec::new(channel, user, name, text))
                        .await;
                    println!("-> message {id}");
                }
                _ => println!("usage: sayas CHANNEL USER_ID NAME TEXT..."),
            }
        }
        "cmd" => {
            let (name, options) = rest.split_once(' ').unwrap_or((rest, "[]"));
            match serde_json::from_str::<Vec<Value>>(options) {
                Ok(options) => {
                    let id = fake.slash_command(CommandSpec::new(name, options)).await;
                    match fake
                        .wait_interaction_response(&id, Duration::from_secs(5))
                        .await
                    {
                        Ok(response) => println!("-> interaction {id} answered: {response}"),
                        Err(e) => println!("-> interaction {id}: {e}"),
                    }
                }
                Err(e) => println!("options must be a JSON array: {e}"),
            }
        }
        "action" => match rest.split_once(' ') {
            Some((target, name)) => {
                let spec = MessageCommandSpec {
                    name: name.to_owned(),
                    target_id: target.to_owned(),
                    ..MessageCommandSpec::default()
                };
                let id = fake.message_command(spec).await;
                let wait = Duration::from_secs(10);
                match fake.wait_interaction_response(&id, wait).await {
                    Ok(response) if response["type"] == 5 => {
                        match fake.wait_interaction_followups(&id, 1, wait).await {
                            Ok(followups) => {
                                println!("-> interaction {id} answered: {}", followups[0]);
                            }
                            Err(e) => println!("-> interaction {id} deferred: {e}"),
                        }
                    }
                    Ok(response) => println!("-> interaction {id} answered: {response}"),
                    Err(e) => println!("-> interaction {id}: {e}"),
                }
            }
            None => println!("usage: action MESSAGE_ID NAME..."),
        },
        "dispatch" => match rest
            .split_once(' ')
            .map(|(e, j)| (e, serde_json::from_str::<Value>(j)))
        {
            Some((event, Ok(data))) => fake.dispatch(event, data).await,
            _ => println!("usage: dispatch EVENT JSON"),
        },
        "close" => match rest.parse::<u16>() {
            Ok(code) => println!("{:?}", fake.close_gateway(code).await),
            Err(_) => println!("usage: close CODE"),
        },
        "drop" => println!("{:?}", fake.drop_gateway().await),
        "history" => {
            for message in fake.channel_messages(rest) {
                println!(
                    "{} {}: {}",
                    message["id"], message["author"]["username"], message["content"]
                );
            }
        }
        "errors" => {
            for error in fake.validation_errors() {
                println!("invalid: {error}");
            }
            for request in fake.unhandled_requests() {
                println!("unhandled: {} {}", request.method, request.path);
            }
        }
        other => println!("unknown command {other:?}; type `help`"),
    }
    true
}
