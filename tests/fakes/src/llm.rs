//! A fake OpenAI-compatible chat-completions server: scripted replies, failures and
//! delays set while it runs, and a record of every request it received.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

mod streaming;

pub use streaming::Pacing;

/// A request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The JSON body (a JSON string holding the raw text if it wasn't JSON).
    pub body: Value,
    /// The `Authorization` header, if one was sent.
    pub authorization: Option<String>,
}

/// A fake LLM endpoint on 127.0.0.1; it stops when dropped.
///
/// By default every request is answered with "echo: " and the last user message.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl FakeLlm {
    /// Starts the server on a free port.
    pub async fn start() -> Self {
        Self::try_start_on(0)
            .await
            .expect("FakeLlm: bind 127.0.0.1:0")
    }

    /// Starts the server on 127.0.0.1:`port` (0 picks a free one), reporting a failure to
    /// bind.
    pub async fn try_start_on(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            script: Mutex::new(Script::default()),
            recorded: Mutex::new(Vec::new()),
            first_tokens: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            next_id: AtomicU64::new(1),
            stopped: stopped.clone(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let mut stopped = stopped;
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { wait_until_stopped(&mut stopped).await });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "FakeLlm stopped with an error");
            }
        });
        Ok(Self {
            addr,
            shared,
            shutdown,
        })
    }

    /// The API root to configure the client with: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Answers every later request with `text` (after any queued replies or failures).
    pub fn reply_with(&self, text: impl Into<String>) {
        self.shared.script().reply = Reply::Fixed(text.into());
    }

    /// Goes back to echoing the last user message.
    pub fn echo(&self) {
        self.shared.script().reply = Reply::Echo;
    }

    /// Answers the next requests with these texts, one each, then as before.
    pub fn reply_sequence<I, S>(&self, texts: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.shared
            .script()
            .sequence
            .extend(texts.into_iter().map(Into::into));
    }

    /// Fails the next `times` requests with `status` and an OpenAI-shaped error body.
    pub fn fail_with(&self, status: u16, times: usize) {
        let status = StatusCode::from_u16(status).expect("FakeLlm: a valid HTTP status");
        self.shared.script().failures = Some((status, times));
    }

    /// Answers the next request with exactly this status and body (e.g. malformed JSON).
    pub fn respond_raw(&self, status: u16, body: impl Into<String>) {
        let status = StatusCode::from_u16(status).expect("FakeLlm: a valid HTTP status");
        self.shared.script().raw.push_back((status, body.into()));
    }

    /// Waits this long before answering each later request (to provoke time-outs).
    pub fn delay(&self, duration: Duration) {
        self.shared.script().delay = duration;
    }

    /// Paces later streamed answers (`"stream": true`); by default the whole answer
    /// comes in one event at once.
    pub fn stream_pacing(&self, pacing: Pacing) {
        self.shared.script().pacing = pacing;
    }

    /// Breaks the next streamed answer off after `chars` characters: the connection
    /// drops without the answer being finished.
    pub fn break_next_stream_after(&self, chars: usize) {
        self.shared.script().break_after = Some(chars);
    }

    /// Answers later requests as a plain completion even when they ask for a stream, as
    /// endpoints without streaming do.
    pub fn ignore_stream_requests(&self, ignore: bool) {
        self.shared.script().ignore_stream = ignore;
    }

    /// When the first piece of each streamed answer went out: (index of the request
    /// among [`Self::requests`], time), in the order they went out.
    pub fn first_tokens(&self) -> Vec<(usize, Instant)> {
        self.shared.first_tokens().clone()
    }

    /// The bodies of the requests received so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.recorded().into_iter().map(|r| r.body).collect()
    }

    /// The `Authorization` header of each request received so far, oldest first.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.recorded()
            .into_iter()
            .map(|r| r.authorization)
            .collect()
    }

    /// Everything recorded about the requests received so far, oldest first.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.shared.recorded().clone()
    }

    /// Waits until at least `n` requests arrived and returns their bodies; panics with
    /// what it got if that takes longer than `timeout`.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before checking, so an arrival in between is not missed.
            let arrived = self.shared.arrived.notified();
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "FakeLlm: expected {n} requests within {timeout:?}, got {}: {requests:?}",
                    requests.len()
                );
            }
        }
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        // Stops accepting, ends pending delays, and lets open connections close.
        self.shutdown.send_replace(true);
    }
}

struct Shared {
    script: Mutex<Script>,
    recorded: Mutex<Vec<RecordedRequest>>,
    first_tokens: Mutex<Vec<(usize, Instant)>>,
    arrived: Notify,
    next_id: AtomicU64,
    stopped: watch::Receiver<bool>,
}

impl Shared {
    // A test that panicked while holding a lock must not hide its own failure behind
    // a poisoned-lock panic here.
    fn script(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn recorded(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn first_tokens(&self) -> MutexGuard<'_, Vec<(usize, Instant)>> {
        self.first_tokens.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct Script {
    reply: Reply,
    sequence: VecDeque<String>,
    failures: Option<(StatusCode, usize)>,
    raw: VecDeque<(StatusCode, String)>,
    delay: Duration,
    pacing: Pacing,
    break_after: Option<usize>,
    ignore_stream: bool,
}

#[derive(Default)]
enum Reply {
    #[default]
    Echo,
    Fixed(String),
}

/// What to answer one request with, decided under the lock and sent after it.
enum Answer {
    Fail(StatusCode),
    Raw(StatusCode, String),
    Text(Option<String>),
}

impl Script {
    fn next_answer(&mut self) -> Answer {
        if let Some((status, left)) = &mut self.failures {
            if *left > 0 {
                *left -= 1;
                return Answer::Fail(*status);
            }
        }
        if let Some((status, body)) = self.raw.pop_front() {
            return Answer::Raw(status, body);
        }
        if let Some(text) = self.sequence.pop_front() {
            return Answer::Text(Some(text));
        }
        match &self.reply {
            Reply::Echo => Answer::Text(None),
            Reply::Fixed(text) => Answer::Text(Some(text.clone())),
        }
    }
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let recorded_body = parsed
        .clone()
        .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let authorization = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let request_index = {
        let mut recorded = shared.recorded();
        recorded.push(RecordedRequest {
            body: recorded_body,
            authorization,
        });
        recorded.len() - 1
    };
    shared.arrived.notify_waiters();

    let wants_stream = parsed
        .as_ref()
        .and_then(|b| b.get("stream"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (answer, delay, pacing, break_after) = {
        let mut script = shared.script();
        let streams = wants_stream && !script.ignore_stream;
        let break_after = if streams {
            script.break_after.take()
        } else {
            None
        };
        (
            script.next_answer(),
            script.delay,
            streams.then_some(script.pacing),
            break_after,
        )
    };
    if !delay.is_zero() {
        let mut stopped = shared.stopped.clone();
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = wait_until_stopped(&mut stopped) => {}
        }
    }

    let request =
        match parsed.as_ref().and_then(ChatBody::parse) {
            Some(request) => request,
            None => return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the body must be JSON with a string \"model\" and \"messages\": [{role, content}]",
            ),
        };
    match answer {
        Answer::Fail(status) => error(status, "server_error", "FakeLlm was told to fail"),
        Answer::Raw(status, body) => {
            (status, [(CONTENT_TYPE, "application/json")], body).into_response()
        }
        Answer::Text(text) => {
            let text = text.unwrap_or_else(|| format!("echo: {}", request.last_user));
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            match pacing {
                Some(pacing) => streaming::response(
                    shared.clone(),
                    streaming::StreamPlan {
                        request_index,
                        id,
                        model: request.model,
                        text,
                        pacing,
                        break_after,
                    },
                ),
                None => completion(id, &request, &text),
            }
        }
    }
}

/// The parts of a chat-completions body the fake needs, checked like a real endpoint.
struct ChatBody {
    model: String,
    prompt_chars: usize,
    last_user: String,
}

impl ChatBody {
    fn parse(body: &Value) -> Option<Self> {
        let model = body.get("model")?.as_str()?.to_owned();
        let messages = body.get("messages")?.as_array()?;
        let mut prompt_chars = 0;
        let mut last_user = String::new();
        for message in messages {
            let role = message.get("role")?.as_str()?;
            let content = content_text(message.get("content")?)?;
            if !matches!(role, "system" | "user" | "assistant") {
                return None;
            }
            prompt_chars += content.chars().count();
            if role == "user" {
                last_user = content;
            }
        }
        Some(Self {
            model,
            prompt_chars,
            last_user,
        })
    }
}

/// The text of a message's content: a string, or the `text` of its parts (OpenAI's
/// `[{"type": "text", …}, {"type": "image_url", …}]`).
fn content_text(content: &Value) -> Option<String> {
    if let Some(text) = content.as_str() {
        return Some(text.to_owned());
    }
    let mut text = String::new();
    for part in content.as_array()? {
        match part.get("type")?.as_str()? {
            "text" => text.push_str(part.get("text")?.as_str()?),
            "image_url" => {
                part.get("image_url")?.get("url")?.as_str()?;
            }
            _ => return None,
        }
    }
    Some(text)
}

fn completion(id: u64, request: &ChatBody, text: &str) -> Response {
    // About four characters a token: enough for code that only reads the numbers.
    let prompt_tokens = request.prompt_chars.div_ceil(4);
    let completion_tokens = text.chars().count().div_ceil(4);
    Json(json!({
        "id": format!("chatcmpl-fake-{id}"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": request.model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text },
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }))
    .into_response()
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "error": { "message": message, "type": kind, "code": status.as_u16() } });
    (status, Json(body)).into_response()
}

async fn models() -> Json<Value> {
    Json(json!({
        "object": "list",
        // The default model the end-to-end tests configure is offered too, so the bot's
        // start-up probe finds it.
        "data": [
            { "id": "fake-model", "object": "model", "created": 0, "owned_by": "personae-fakes" },
            { "id": "test-default-model", "object": "model", "created": 0, "owned_by": "personae-fakes" },
        ],
    }))
}

async fn wait_until_stopped(stopped: &mut watch::Receiver<bool>) {
    // An error means the sender (the FakeLlm) is gone: stopped as well.
    let _ = stopped.wait_for(|stopped| *stopped).await;
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A minimal HTTP/1.1 POST over a raw socket: the fakes crate has no HTTP client.
    async fn post(fake: &FakeLlm, body: &str, authorization: Option<&str>) -> (u16, Value) {
        let mut stream = tokio::net::TcpStream::connect(fake.addr).await.unwrap();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let status = response[9..12].parse().unwrap();
        let (_, body) = response.split_once("\r\n\r\n").unwrap();
        (
            status,
            serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
        )
    }

    const HELLO: &str = r#"{"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi"}]}"#;

    #[tokio::test]
    async fn it_echoes_the_last_user_message_in_the_openai_shape() {
        let fake = FakeLlm::start().await;
        let (status, body) = post(&fake, HELLO, Some("Bearer k")).await;
        assert_eq!(status, 200);
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], "m");
        assert_eq!(body["choices"][0]["message"]["content"], "echo: hi");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
        let recorded = fake.recorded();
        assert_eq!(recorded[0].body["model"], "m");
        assert_eq!(recorded[0].authorization.as_deref(), Some("Bearer k"));
    }

    #[tokio::test]
    async fn scripted_failures_sequences_and_fixed_replies_apply_in_order() {
        let fake = FakeLlm::start().await;
        fake.reply_with("fixed");
        fake.reply_sequence(["one", "two"]);
        fake.fail_with(503, 1);
        let mut answers = Vec::new();
        for _ in 0..4 {
            let (status, body) = post(&fake, HELLO, None).await;
            answers.push((status, body["choices"][0]["message"]["content"].clone()));
        }
        assert_eq!(
            answers,
            [
                (503, Value::Null),
                (200, json!("one")),
                (200, json!("two")),
                (200, json!("fixed"))
            ]
        );
        assert_eq!(fake.authorizations(), vec![None; 4]);
    }

    #[tokio::test]
    async fn bodies_that_are_not_chat_requests_get_a_400() {
        let fake = FakeLlm::start().await;
        let (status, body) = post(&fake, "not json", None).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(fake.requests(), [json!("not json")]);
    }

    #[tokio::test]
    async fn waiting_for_requests_returns_once_they_arrived() {
        let fake = Arc::new(FakeLlm::start().await);
        let sender = fake.clone();
        tokio::spawn(async move { post(&sender, HELLO, None).await });
        let requests = fake.wait_for_requests(1, Duration::from_secs(5)).await;
        assert_eq!(requests.len(), 1);
    }

    #[tokio::test]
    async fn dropping_the_fake_stops_it_even_during_a_delay() {
        let fake = Arc::new(FakeLlm::start().await);
        let addr = fake.addr;
        fake.delay(Duration::from_secs(3600));
        let sender = fake.clone();
        let pending = tokio::spawn(async move { post(&sender, HELLO, None).await });
        fake.wait_for_requests(1, Duration::from_secs(5)).await;
        // The pending request holds the other reference; stop through it being answered.
        fake.shutdown.send_replace(true);
        let (status, _) = tokio::time::timeout(Duration::from_secs(5), pending)
            .await
            .expect("the delay ends at shutdown")
            .unwrap();
        assert_eq!(status, 200);
        drop(fake);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    #[should_panic(expected = "expected 1 requests")]
    async fn waiting_for_requests_that_never_come_panics() {
        let fake = FakeLlm::start().await;
        fake.wait_for_requests(1, Duration::from_millis(50)).await;
    }
}
