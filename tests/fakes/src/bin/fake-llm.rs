//! Runs the fake OpenAI-compatible LLM on 127.0.0.1 for trying the bot by hand: every chat
//! completion is answered with "echo: " and the last user message.
//!
//! ```text
//! cargo run -p personae-fakes --bin fake-llm -- --port 8766
//! LLM_BASE_URL=http://127.0.0.1:8766/v1 cargo run -- run
//! ```

use std::time::Duration;

use personae_fakes::llm::{FakeLlm, Pacing};

const USAGE: &str = "\
usage: fake-llm [--port PORT] [--reply TEXT] [--stream-chars N] [--stream-interval-ms MS]
                [--first-token-ms MS] [--break-after N] [--no-stream]

Serves an OpenAI-compatible /v1/chat/completions on 127.0.0.1:PORT (default 8766) that
answers \"echo: \" and the last user message, or TEXT with --reply. Point the bot's
LLM_BASE_URL at http://127.0.0.1:PORT/v1. Stop it with Ctrl-C.

Requests with \"stream\": true get server-sent events: N characters an event (default:
all at once), MS milliseconds apart, the first after --first-token-ms. --break-after N
drops the first streamed answer after N characters; --no-stream answers every request
whole, as endpoints without streaming do.";

/// What the command line asked for.
struct Args {
    port: u16,
    reply: Option<String>,
    pacing: Pacing,
    break_after: Option<usize>,
    no_stream: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut parsed = Args {
        port: 8766,
        reply: None,
        pacing: Pacing::default(),
        break_after: None,
        no_stream: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| -> Result<u64, String> {
            v.parse().map_err(|e| format!("{name}: {e}"))
        };
        match arg.as_str() {
            "--port" => {
                parsed.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?;
            }
            "--reply" => parsed.reply = Some(value("--reply")?),
            "--stream-chars" => {
                parsed.pacing.chars_per_event =
                    number(&arg, value(&arg)?)?.try_into().unwrap_or(usize::MAX);
            }
            "--stream-interval-ms" => {
                parsed.pacing.interval = Duration::from_millis(number(&arg, value(&arg)?)?);
            }
            "--first-token-ms" => {
                parsed.pacing.first_token_after =
                    Duration::from_millis(number(&arg, value(&arg)?)?);
            }
            "--break-after" => {
                parsed.break_after =
                    Some(number(&arg, value(&arg)?)?.try_into().unwrap_or(usize::MAX));
            }
            "--no-stream" => parsed.no_stream = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() {
    let Args {
        port,
        reply,
        pacing,
        break_after,
        no_stream,
    } = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let llm = match FakeLlm::try_start_on(port).await {
        Ok(llm) => llm,
        Err(e) => {
            eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    if let Some(text) = reply {
        llm.reply_with(text);
    }
    llm.stream_pacing(pacing);
    if let Some(chars) = break_after {
        llm.break_next_stream_after(chars);
    }
    llm.ignore_stream_requests(no_stream);
    println!(
        "fake LLM on {} (set LLM_BASE_URL to it); Ctrl-C to stop",
        llm.base_url()
    );
    let mut printed = 0;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let requests = llm.requests();
                for request in requests.iter().skip(printed) {
                    let model = request["model"].as_str().unwrap_or("?");
                    let last = request["messages"]
                        .as_array()
                        .and_then(|m| m.last())
                        .and_then(|m| m["content"].as_str())
                        .unwrap_or("");
                    println!("<- model {model}: {last}");
                }
                printed = requests.len();
            }
        }
    }
}
