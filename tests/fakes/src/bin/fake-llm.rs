//! Runs the fake OpenAI-compatible LLM on 127.0.0.1 for trying the bot by hand: every chat
//! completion is answered with "echo: " and the last user message.
//!
//! ```text
//! cargo run -p personae-fakes --bin fake-llm -- --port 8766
//! LLM_BASE_URL=http://127.0.0.1:8766/v1 cargo run -- run
//! ```

use personae_fakes::llm::FakeLlm;

const USAGE: &str = "\
usage: fake-llm [--port PORT] [--reply TEXT]

Serves an OpenAI-compatible /v1/chat/completions on 127.0.0.1:PORT (default 8766) that
answers \"echo: \" and the last user message, or TEXT with --reply. Point the bot's
LLM_BASE_URL at http://127.0.0.1:PORT/v1. Stop it with Ctrl-C.";

fn parse_args() -> Result<(u16, Option<String>), String> {
    let mut port = 8766;
    let mut reply = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?;
            }
            "--reply" => reply = Some(value("--reply")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok((port, reply))
}

#[tokio::main]
async fn main() {
    let (port, reply) = match parse_args() {
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
