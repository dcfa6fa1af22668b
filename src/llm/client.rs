//! A client for OpenAI-compatible `/chat/completions` endpoints (OpenAI, Ollama, vLLM,
//! OpenRouter, LM Studio, …).

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use url::Url;

use super::LlmError;

/// How much of an error response body is kept, in characters.
const BODY_EXCERPT_CHARS: usize = 200;

/// Where the model is and how to talk to it.
#[derive(Clone)]
pub struct LlmConfig {
    /// The API root, e.g. `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: Url,
    /// Sent as `Authorization: Bearer …` when set (local servers usually need none).
    pub api_key: Option<String>,
    /// The model used when a request names none.
    pub default_model: String,
    /// The longest one request may take, reading the answer included.
    pub timeout: Duration,
    /// Sent as `max_tokens` with every request: the longest answer the host pays for.
    pub max_tokens: Option<u32>,
}

// By hand so the key never reaches a log line.
impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("default_model", &self.default_model)
            .field("timeout", &self.timeout)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

/// Who wrote a message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The instructions: the personality's prompt.
    System,
    /// Anyone but the personality.
    User,
    /// The personality itself.
    Assistant,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub content: String,
    /// Images that go with it, as `data:` URLs (for models that see images).
    #[serde(skip)]
    pub images: Vec<String>,
}

// By hand: a message with images goes as OpenAI's content parts, one without as a string,
// which every endpoint reads.
impl Serialize for ChatMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut message = serializer.serialize_struct("ChatMessage", 2)?;
        message.serialize_field("role", &self.role)?;
        if self.images.is_empty() {
            message.serialize_field("content", &self.content)?;
        } else {
            let mut parts = vec![serde_json::json!({"type": "text", "text": self.content})];
            parts.extend(
                self.images
                    .iter()
                    .map(|url| serde_json::json!({"type": "image_url", "image_url": {"url": url}})),
            );
            message.serialize_field("content", &parts)?;
        }
        message.end()
    }
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A message from someone other than the personality.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// A message the personality wrote earlier.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            images: Vec::new(),
        }
    }
}

/// A conversation to complete, with the model to ask if not the default one.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The personality's own model; `None` (or blank) uses the configured default.
    pub model: Option<String>,
    /// The conversation, system message first.
    pub messages: Vec<ChatMessage>,
    /// The personality's sampling temperature; `None` leaves it to the endpoint.
    pub temperature: Option<f32>,
    /// The personality's longest answer in tokens; never above the host's cap.
    pub max_tokens: Option<u32>,
}

impl ChatRequest {
    /// A request for the default model.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            model: None,
            messages,
            temperature: None,
            max_tokens: None,
        }
    }

    /// The same request for another model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
}

/// A model's answer: whole, or arriving in pieces.
pub enum Answer {
    /// The endpoint answered at once (it doesn't stream, or wasn't asked to).
    Whole(String),
    /// The endpoint streams the answer.
    Streamed(Box<super::DeltaStream>),
}

/// Asks an OpenAI-compatible endpoint to continue conversations. Cheap to clone.
#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    /// For streamed answers: the time-out bounds each wait for the next piece, not the
    /// whole answer, so a slow model may write for as long as it keeps writing.
    streaming_http: reqwest::Client,
    endpoint: Url,
    /// `{base_url}/models`, for the start-up probe.
    models_endpoint: Url,
    /// The endpoint without credentials or query, for errors and logs.
    shown_endpoint: String,
    api_key: Option<String>,
    default_model: String,
    timeout: Duration,
    max_tokens: Option<u32>,
}

// By hand so the key never reaches a log line.
impl fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmClient")
            .field("endpoint", &self.shown_endpoint)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("default_model", &self.default_model)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// Builds a client; fails only on a base URL that is not http(s) or a TLS set-up problem.
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        let endpoint = chat_endpoint(&config.base_url)?;
        let models_endpoint = api_endpoint(&config.base_url, &["models"])?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| LlmError::Setup(e.without_url().to_string()))?;
        let streaming_http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .build()
            .map_err(|e| LlmError::Setup(e.without_url().to_string()))?;
        Ok(Self {
            http,
            streaming_http,
            shown_endpoint: shown(&endpoint),
            endpoint,
            models_endpoint,
            // An empty key in a .env file means "no key", not "Bearer ".
            api_key: config.api_key.filter(|key| !key.trim().is_empty()),
            default_model: config.default_model,
            timeout: config.timeout,
            max_tokens: config.max_tokens,
        })
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// The API root as it may be shown: no user, password or query.
    pub fn shown_base_url(&self) -> String {
        self.shown_endpoint
            .trim_end_matches("/chat/completions")
            .to_owned()
    }

    /// `GET {base_url}/models`: whether the endpoint answers, and which models it offers.
    pub async fn probe(&self) -> super::Probe {
        use super::Probe;
        let mut request = self
            .http
            .get(self.models_endpoint.clone())
            .timeout(self.timeout.min(Duration::from_secs(10)));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Probe::Unreachable(e.without_url().to_string()),
        };
        if !response.status().is_success() {
            return Probe::Status(response.status().as_u16());
        }
        match response.json::<ModelList>().await {
            Ok(list) => Probe::Models(list.data.into_iter().map(|m| m.id).collect()),
            Err(_) => Probe::NoList,
        }
    }

    /// Sends the conversation and returns the model's reply, trimmed.
    #[tracing::instrument(
        name = "llm_complete",
        skip_all,
        fields(model = tracing::field::Empty, messages = request.messages.len())
    )]
    pub async fn complete(&self, request: ChatRequest) -> Result<String, LlmError> {
        let response = self.send(&request, false).await?;
        self.whole(response).await
    }

    /// Asks for the answer as a stream (`stream: true`). An endpoint that answers with a
    /// plain completion instead gives [`Answer::Whole`].
    #[tracing::instrument(
        name = "llm_stream",
        skip_all,
        fields(model = tracing::field::Empty, messages = request.messages.len())
    )]
    pub async fn stream(&self, request: ChatRequest) -> Result<Answer, LlmError> {
        let response = self.send(&request, true).await?;
        let is_event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_event_stream {
            return self.whole(response).await.map(Answer::Whole);
        }
        let timeout = self.timeout;
        let endpoint = self.shown_endpoint.clone();
        Ok(Answer::Streamed(Box::new(super::DeltaStream::new(
            response,
            Box::new(move |e| transport_error(&endpoint, timeout, e)),
        ))))
    }

    /// Posts the request and returns the response if its status is a success.
    async fn send(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::Response, LlmError> {
        let model = request
            .model
            .as_deref()
            .map(str::trim)
            .filter(|model| !model.is_empty())
            .unwrap_or(&self.default_model);
        tracing::Span::current().record("model", model);
        let max_tokens = match (request.max_tokens, self.max_tokens) {
            (Some(own), Some(cap)) => Some(own.min(cap)),
            (own, cap) => own.or(cap),
        };
        let body = WireRequest {
            model,
            messages: &request.messages,
            max_tokens,
            temperature: request.temperature,
            stream,
        };
        let client = if stream {
            &self.streaming_http
        } else {
            &self.http
        };
        let mut http_request = client.post(self.endpoint.clone()).json(&body);
        if let Some(key) = &self.api_key {
            // bearer_auth marks the header sensitive, so reqwest never prints it either.
            http_request = http_request.bearer_auth(key);
        }
        let started = Instant::now();
        let response = http_request
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        tracing::debug!(
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            stream,
            "model answered"
        );
        if !status.is_success() {
            let bytes = response.bytes().await.unwrap_or_default();
            return Err(LlmError::Http {
                status: status.as_u16(),
                body: self.excerpt(&bytes),
            });
        }
        Ok(response)
    }

    /// Reads a whole (not streamed) completion.
    async fn whole(&self, response: reqwest::Response) -> Result<String, LlmError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        let parsed: WireResponse =
            serde_json::from_slice(&bytes).map_err(|e| LlmError::BadResponse {
                reason: format!("{e}; it starts with: {}", self.excerpt(&bytes)),
            })?;
        let content = parsed
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .unwrap_or_default();
        let reply = content.trim();
        if reply.is_empty() {
            return Err(LlmError::Empty);
        }
        Ok(reply.to_owned())
    }

    fn transport_error(&self, error: reqwest::Error) -> LlmError {
        transport_error(&self.shown_endpoint, self.timeout, error)
    }

    /// The start of a body, on one line, with the key blanked in case the server echoes it.
    fn excerpt(&self, body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        let mut excerpt = String::new();
        for word in text.split_whitespace() {
            if !excerpt.is_empty() {
                excerpt.push(' ');
            }
            excerpt.push_str(word);
            if excerpt.len() > BODY_EXCERPT_CHARS * 4 {
                break;
            }
        }
        if let Some(key) = &self.api_key {
            excerpt = excerpt.replace(key.as_str(), "***");
        }
        match excerpt.char_indices().nth(BODY_EXCERPT_CHARS) {
            Some((cut, _)) => format!("{}…", &excerpt[..cut]),
            None if excerpt.is_empty() => "(empty body)".to_owned(),
            None => excerpt,
        }
    }
}

fn transport_error(endpoint: &str, timeout: Duration, error: reqwest::Error) -> LlmError {
    if error.is_timeout() {
        LlmError::Timeout { after: timeout }
    } else {
        LlmError::Connect {
            endpoint: endpoint.to_owned(),
            // The URL is already in the message, without credentials.
            source: error.without_url(),
        }
    }
}

/// `{base_url}/chat/completions`, keeping any query (some gateways need `?api-version=`).
fn chat_endpoint(base_url: &Url) -> Result<Url, LlmError> {
    api_endpoint(base_url, &["chat", "completions"])
}

/// `{base_url}/{segments…}`, keeping any query.
fn api_endpoint(base_url: &Url, segments: &[&str]) -> Result<Url, LlmError> {
    if !matches!(base_url.scheme(), "http" | "https") {
        return Err(LlmError::Setup(format!(
            "the base URL must start with http:// or https:// (got {}://)",
            base_url.scheme()
        )));
    }
    let mut endpoint = base_url.clone();
    endpoint
        .path_segments_mut()
        .map_err(|()| LlmError::Setup("the base URL has no path".to_owned()))?
        .pop_if_empty()
        .extend(segments);
    Ok(endpoint)
}

/// The endpoint as it may be shown: no user, password or query.
fn shown(endpoint: &Url) -> String {
    let mut shown = endpoint.clone();
    // Both only fail for URLs without a host, which `chat_endpoint` already refused.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

#[derive(Deserialize)]
struct WireResponse {
    choices: Vec<WireChoice>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: &str, key: Option<&str>) -> LlmConfig {
        LlmConfig {
            base_url: Url::parse(base).unwrap(),
            api_key: key.map(str::to_owned),
            default_model: "m".to_owned(),
            timeout: Duration::from_secs(1),
            max_tokens: None,
        }
    }

    #[test]
    fn the_endpoint_is_appended_to_the_base_path() {
        for (base, endpoint) in [
            (
                "http://127.0.0.1:11434/v1",
                "http://127.0.0.1:11434/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:11434/v1/",
                "http://127.0.0.1:11434/v1/chat/completions",
            ),
            (
                "https://api.example.com",
                "https://api.example.com/chat/completions",
            ),
            (
                "https://h/openai?api-version=1",
                "https://h/openai/chat/completions?api-version=1",
            ),
        ] {
            assert_eq!(
                chat_endpoint(&Url::parse(base).unwrap()).unwrap().as_str(),
                endpoint
            );
        }
    }

    #[test]
    fn non_http_base_urls_are_refused() {
        let err = LlmClient::new(config("ftp://example.com/v1", None)).unwrap_err();
        assert!(matches!(err, LlmError::Setup(_)), "{err}");
    }

    #[test]
    fn the_shown_endpoint_has_no_credentials_or_query() {
        let client = LlmClient::new(config("https://user:pw@h.example/v1?key=abc", None)).unwrap();
        assert_eq!(
            client.shown_endpoint,
            "https://h.example/v1/chat/completions"
        );
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config = config("http://h/v1", Some("sk-secret"));
        let client = LlmClient::new(config.clone()).unwrap();
        for shown in [format!("{config:?}"), format!("{client:?}")] {
            assert!(!shown.contains("sk-secret"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }

    #[test]
    fn a_blank_key_counts_as_no_key() {
        let client = LlmClient::new(config("http://h/v1", Some("  "))).unwrap();
        assert!(client.api_key.is_none());
    }

    #[test]
    fn excerpts_are_short_single_line_and_redacted() {
        let client = LlmClient::new(config("http://h/v1", Some("sk-secret"))).unwrap();
        let body = format!("bad key\n\n sk-secret {}", "x".repeat(1000));
        let excerpt = client.excerpt(body.as_bytes());
        assert!(excerpt.starts_with("bad key *** x"), "{excerpt}");
        assert_eq!(excerpt.chars().count(), BODY_EXCERPT_CHARS + 1);
        assert_eq!(client.excerpt(b""), "(empty body)");
    }
}
