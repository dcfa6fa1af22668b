//! The LLM client against the fake OpenAI-compatible server.

use std::time::Duration;

use personae::llm::{ChatMessage, ChatRequest, LlmClient, LlmConfig, LlmError};
use personae_fakes::llm::FakeLlm;
use url::Url;

const KEY: &str = "sk-test-very-secret-key";

fn client(fake: &FakeLlm, api_key: Option<&str>, timeout: Duration) -> LlmClient {
    LlmClient::new(LlmConfig {
        base_url: Url::parse(&fake.base_url()).expect("the fake's URL parses"),
        api_key: api_key.map(str::to_owned),
        default_model: "default-model".to_owned(),
        timeout,
        max_tokens: None,
    })
    .expect("the client builds")
}

fn hello() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You are Aria."),
        ChatMessage::user("Ann: hello"),
    ])
}

/// Neither the message nor the debug form of an error may ever show the key.
fn assert_no_key(error: &LlmError) {
    let shown = format!("{error} / {error:?}");
    assert!(!shown.contains(KEY), "the key leaked: {shown}");
}

#[tokio::test]
async fn a_completion_returns_the_reply_text() {
    let fake = FakeLlm::start().await;
    let client = client(&fake, None, Duration::from_secs(5));
    let reply = client.complete(hello()).await.unwrap();
    assert_eq!(reply, "echo: Ann: hello");

    let body = &fake.requests()[0];
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], "You are Aria.");
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["messages"][1]["content"], "Ann: hello");
}

#[tokio::test]
async fn replies_are_trimmed() {
    let fake = FakeLlm::start().await;
    fake.reply_with("\n  Hi there!  \n");
    let client = client(&fake, None, Duration::from_secs(5));
    assert_eq!(client.complete(hello()).await.unwrap(), "Hi there!");
}

#[tokio::test]
async fn the_default_model_is_used_unless_the_request_names_one() {
    let fake = FakeLlm::start().await;
    let client = client(&fake, None, Duration::from_secs(5));
    client.complete(hello()).await.unwrap();
    client
        .complete(hello().with_model("llama3.1:8b"))
        .await
        .unwrap();
    client.complete(hello().with_model("  ")).await.unwrap();
    let models: Vec<_> = fake.requests().iter().map(|b| b["model"].clone()).collect();
    assert_eq!(models, ["default-model", "llama3.1:8b", "default-model"]);
}

#[tokio::test]
async fn the_bearer_header_is_sent_only_when_a_key_is_configured() {
    let fake = FakeLlm::start().await;
    client(&fake, Some(KEY), Duration::from_secs(5))
        .complete(hello())
        .await
        .unwrap();
    client(&fake, None, Duration::from_secs(5))
        .complete(hello())
        .await
        .unwrap();
    client(&fake, Some(""), Duration::from_secs(5))
        .complete(hello())
        .await
        .unwrap();
    assert_eq!(
        fake.authorizations(),
        [Some(format!("Bearer {KEY}")), None, None]
    );
}

#[tokio::test]
async fn a_slow_model_is_a_timeout() {
    let fake = FakeLlm::start().await;
    fake.delay(Duration::from_secs(5));
    let client = client(&fake, Some(KEY), Duration::from_millis(200));
    let error = client.complete(hello()).await.unwrap_err();
    assert!(
        matches!(error, LlmError::Timeout { after } if after == Duration::from_millis(200)),
        "{error:?}"
    );
    assert!(error.is_transient());
    assert_no_key(&error);
}

#[tokio::test]
async fn a_server_error_is_an_http_error_with_a_short_excerpt() {
    let fake = FakeLlm::start().await;
    fake.fail_with(500, 1);
    let client = client(&fake, Some(KEY), Duration::from_secs(5));
    let error = client.complete(hello()).await.unwrap_err();
    match &error {
        LlmError::Http { status, body } => {
            assert_eq!(*status, 500);
            assert!(body.contains("FakeLlm was told to fail"), "{body}");
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    assert!(error.to_string().contains("500"), "{error}");
    assert!(error.is_transient());
    assert_no_key(&error);
    // The failure was used up: the next request succeeds.
    assert!(client.complete(hello()).await.is_ok());
}

#[tokio::test]
async fn a_server_echoing_the_key_in_an_error_never_leaks_it() {
    let fake = FakeLlm::start().await;
    fake.respond_raw(401, format!(r#"{{"error":"invalid key Bearer {KEY}"}}"#));
    let client = client(&fake, Some(KEY), Duration::from_secs(5));
    let error = client.complete(hello()).await.unwrap_err();
    assert!(
        matches!(error, LlmError::Http { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert_no_key(&error);
}

#[tokio::test]
async fn malformed_json_is_a_bad_response() {
    let fake = FakeLlm::start().await;
    fake.respond_raw(200, format!("{{\"choices\": [ oops {KEY}"));
    let client = client(&fake, Some(KEY), Duration::from_secs(5));
    let error = client.complete(hello()).await.unwrap_err();
    assert!(matches!(error, LlmError::BadResponse { .. }), "{error:?}");
    assert_no_key(&error);
}

#[tokio::test]
async fn json_that_is_not_a_completion_is_a_bad_response() {
    let fake = FakeLlm::start().await;
    fake.respond_raw(200, r#"{"hello":"world"}"#);
    let client = client(&fake, None, Duration::from_secs(5));
    let error = client.complete(hello()).await.unwrap_err();
    assert!(matches!(error, LlmError::BadResponse { .. }), "{error:?}");
}

#[tokio::test]
async fn an_empty_reply_or_no_choice_is_empty() {
    let fake = FakeLlm::start().await;
    let client = client(&fake, None, Duration::from_secs(5));
    fake.reply_sequence(["   "]);
    let error = client.complete(hello()).await.unwrap_err();
    assert!(matches!(error, LlmError::Empty), "{error:?}");

    fake.respond_raw(200, r#"{"choices":[]}"#);
    let error = client.complete(hello()).await.unwrap_err();
    assert!(matches!(error, LlmError::Empty), "{error:?}");

    fake.respond_raw(
        200,
        r#"{"choices":[{"message":{"role":"assistant","content":null}}]}"#,
    );
    let error = client.complete(hello()).await.unwrap_err();
    assert!(matches!(error, LlmError::Empty), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_connect_error_without_the_key() {
    let port = {
        // Bind then drop: nothing listens on this port any more.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = LlmClient::new(LlmConfig {
        base_url: Url::parse(&format!("http://127.0.0.1:{port}/v1")).unwrap(),
        api_key: Some(KEY.to_owned()),
        default_model: "m".to_owned(),
        timeout: Duration::from_secs(5),
        max_tokens: None,
    })
    .unwrap();
    let error = client.complete(hello()).await.unwrap_err();
    assert!(matches!(error, LlmError::Connect { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    assert!(error.is_transient());
    assert_no_key(&error);
}
