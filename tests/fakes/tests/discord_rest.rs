//! The REST side, driven by a plain HTTP client: recording, fault
//! injection, validation answers, webhooks, messages and interactions.

use std::time::Duration;

use personae_fakes::discord::{
    CommandSpec, ComponentSpec, FakeDiscord, FakeDiscordConfig, MessageCommandSpec, MessageSpec,
    RequestMatcher,
};
use reqwest::{Client, Response};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

struct Api {
    fake: FakeDiscord,
    http: Client,
}

impl Api {
    async fn start() -> Self {
        Self::start_with(FakeDiscordConfig::default()).await
    }

    async fn start_with(config: FakeDiscordConfig) -> Self {
        Self {
            fake: FakeDiscord::start_with(config).await,
            http: Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v10{path}", self.fake.base_url())
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("Authorization", "Bot test-token");
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = self.call(method, path, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).expect("JSON")
            },
        )
    }

    /// Asserts the fake's own answers all fit the spec.
    fn assert_clean_responses(&self) {
        assert_eq!(self.fake.response_validation_errors(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn start_up_routes_answer() {
    let api = Api::start().await;
    let (status, gateway) = api.json("GET", "/gateway", None).await;
    assert_eq!(
        (status, gateway),
        (200, json!({"url": api.fake.gateway_url()}))
    );
    let (_, bot) = api.json("GET", "/gateway/bot", None).await;
    assert_eq!(bot["session_start_limit"]["max_concurrency"], 1);
    let (_, app) = api.json("GET", "/oauth2/applications/@me", None).await;
    let app: serenity::model::application::CurrentApplicationInfo =
        serde_json::from_value(app).expect("app parses");
    assert_eq!(app.id.get(), 9001);
    let (_, me) = api.json("GET", "/users/@me", None).await;
    let me: serenity::model::user::CurrentUser = serde_json::from_value(me).expect("user parses");
    assert_eq!(me.name, "testbot");
    api.assert_clean_responses();

    let request = api
        .fake
        .wait_for_request(|r| r.is("GET", "/users/@me"), WAIT)
        .await
        .expect("recorded");
    assert_eq!(request.authorization(), Some("Bot test-token"));
    assert_eq!(request.status, 200);
    assert_eq!(request.path, "/api/v10/users/@me");
}

#[tokio::test]
async fn unknown_routes_are_404_and_recorded() {
    let api = Api::start().await;
    let (status, _) = api.json("GET", "/guilds/8001/audit-logs", None).await;
    assert_eq!(status, 404);
    let unhandled = api.fake.unhandled_requests();
    assert_eq!(unhandled.len(), 1);
    assert_eq!(unhandled[0].api_path(), "/guilds/8001/audit-logs");
}

#[tokio::test]
async fn an_injected_fault_is_answered_once() {
    let api = Api::start().await;
    let body =
        json!({"message": "You are being rate limited.", "retry_after": 0.2, "global": false});
    api.fake.fail_next(
        RequestMatcher::route("POST", "/channels/6001/messages"),
        429,
        body.clone(),
        1,
    );

    let response = api
        .call(
            "POST",
            "/channels/6001/messages",
            Some(json!({"content": "hi"})),
        )
        .await;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["x-ratelimit-global"], "false");
    assert_eq!(response.json::<Value>().await.expect("JSON"), body);

    let (status, message) = api
        .json(
            "POST",
            "/channels/6001/messages",
            Some(json!({"content": "hi"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(message["author"]["id"], "9001");

    api.fake
        .fail_next(("GET", "/channels/"), 500, json!({"message": "oops"}), 2);
    assert_eq!(api.json("GET", "/channels/1", None).await.0, 500);
    assert_eq!(api.json("GET", "/channels/1", None).await.0, 500);
    assert_eq!(api.json("GET", "/channels/1", None).await.0, 200);

    api.fake.fail_next(
        RequestMatcher::custom(|r| r.query_param("wait").is_some()),
        502,
        json!({}),
        1,
    );
    assert_eq!(api.json("GET", "/channels/1?wait=1", None).await.0, 502);
    api.assert_clean_responses();
}

#[tokio::test]
async fn invalid_bodies_get_discords_400_and_are_listed() {
    let api = Api::start().await;
    let (_, webhook) = api
        .json(
            "POST",
            "/channels/6001/webhooks",
            Some(json!({"name": "Personae"})),
        )
        .await;
    let execute = format!(
        "/webhooks/{}/{}?wait=true",
        webhook["id"].as_str().expect("id"),
        webhook["token"].as_str().expect("token")
    );
    let (status, error) = api
        .json(
            "POST",
            &execute,
            Some(json!({"content": "hi", "username": "u".repeat(81)})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], 50035);
    assert!(error["errors"]["username"]["_errors"].is_array(), "{error}");
    let errors = api.fake.validation_errors();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("POST /webhooks/{webhook_id}/{webhook_token}"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("/username"), "{}", errors[0]);

    let (status, _) = api
        .json("POST", &execute, Some(json!({"content": ""})))
        .await;
    assert_eq!(status, 400, "empty message");
    let (status, _) = api
        .json(
            "POST",
            &execute,
            Some(json!({"content": "hi", "username": "Discord bot"})),
        )
        .await;
    assert_eq!(status, 400, "forbidden name");
    assert_eq!(api.fake.validation_errors().len(), 3);
}

#[tokio::test]
async fn webhooks_post_into_channel_history() {
    // More requests to one webhook than its bucket allows in two seconds: the limit has
    // its own test below.
    let api = Api::start_with(FakeDiscordConfig {
        webhook_rate_limit: None,
        ..Default::default()
    })
    .await;
    api.fake.add_thread("6100", "6001");
    let user_message = api
        .fake
        .send_message(MessageSpec::new("6001", "7001", "alice", "hi"))
        .await;

    let (status, webhook) = api
        .json(
            "POST",
            "/channels/6001/webhooks",
            Some(json!({"name": "Personae"})),
        )
        .await;
    assert_eq!(status, 200);
    let parsed: serenity::model::webhook::Webhook =
        serde_json::from_value(webhook.clone()).expect("webhook parses");
    assert_eq!(parsed.channel_id.map(|c| c.get()), Some(6001));
    let (id, token) = (
        webhook["id"].as_str().expect("id"),
        webhook["token"].as_str().expect("token"),
    );

    let body = json!({"content": "Hello!", "username": "Aria", "avatar_url": "https://example.com/a.png", "allowed_mentions": {"parse": []}});
    let (status, message) = api
        .json(
            "POST",
            &format!("/webhooks/{id}/{token}?wait=true"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 200);
    let parsed: serenity::model::channel::Message =
        serde_json::from_value(message.clone()).expect("message parses");
    assert_eq!(parsed.author.name, "Aria");
    assert_eq!(
        parsed.webhook_id.map(|w| w.to_string()).as_deref(),
        Some(id)
    );

    let (status, _) = api
        .json(
            "POST",
            &format!("/webhooks/{id}/{token}"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 204, "without wait");
    let (_, in_thread) = api
        .json(
            "POST",
            &format!("/webhooks/{id}/{token}?wait=true&thread_id=6100"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(in_thread["channel_id"], "6100");
    let (status, _) = api
        .json(
            "POST",
            &format!("/webhooks/{id}/{token}?wait=true&thread_id=6001"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, 400, "the parent channel is not a thread");

    let (_, history) = api
        .json("GET", "/channels/6001/messages?limit=10", None)
        .await;
    let ids: Vec<&str> = history
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[2], user_message, "newest first");
    let (_, before) = api
        .json(
            "GET",
            &format!("/channels/6001/messages?before={}", ids[0]),
            None,
        )
        .await;
    assert_eq!(before.as_array().map(Vec::len), Some(2));
    let (_, one) = api
        .json(
            "GET",
            &format!("/channels/6001/messages/{user_message}"),
            None,
        )
        .await;
    assert_eq!(one["content"], "hi");

    let (_, edited) = api
        .json(
            "PATCH",
            &format!("/webhooks/{id}/{token}/messages/{}", ids[0]),
            Some(json!({"content": "Edited"})),
        )
        .await;
    assert_eq!(edited["content"], "Edited");
    let thread_message = in_thread["id"].as_str().expect("id");
    let (status, _) = api
        .json(
            "GET",
            &format!("/webhooks/{id}/{token}/messages/{thread_message}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "thread messages need thread_id");
    let (status, _) = api
        .json(
            "GET",
            &format!("/webhooks/{id}/{token}/messages/{thread_message}?thread_id=6100"),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let (_, listed) = api.json("GET", "/channels/6001/webhooks", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(
        api.json("GET", &format!("/webhooks/{id}"), None).await.0,
        200
    );
    assert_eq!(api.fake.webhook_executions().len(), 4);

    assert!(api.fake.delete_webhook_externally(id));
    let (status, error) = api
        .json(
            "POST",
            &format!("/webhooks/{id}/{token}?wait=true"),
            Some(body),
        )
        .await;
    assert_eq!(
        (status, error),
        (404, json!({"code": 10015, "message": "Unknown Webhook"}))
    );
    assert_eq!(
        api.json("DELETE", &format!("/webhooks/{id}"), None).await.0,
        404
    );

    let (status, _) = api
        .json(
            "POST",
            "/channels/6100/webhooks",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 400, "no webhooks in threads");
    api.assert_clean_responses();
    assert_eq!(
        api.fake.validation_errors().len(),
        2,
        "{:?}",
        api.fake.validation_errors()
    );
}

#[tokio::test]
async fn a_webhook_past_its_bucket_gets_429_with_retry_after_and_edits_are_validated() {
    let api = Api::start().await;
    let (_, webhook) = api
        .json(
            "POST",
            "/channels/6001/webhooks",
            Some(json!({"name": "Personae"})),
        )
        .await;
    let (id, token) = (
        webhook["id"].as_str().expect("id"),
        webhook["token"].as_str().expect("token"),
    );
    let execute = format!("/webhooks/{id}/{token}?wait=true");
    let (_, sent) = api
        .json("POST", &execute, Some(json!({"content": "one"})))
        .await;
    let message = sent["id"].as_str().expect("id").to_owned();
    let edit = format!("/webhooks/{id}/{token}/messages/{message}");
    let (status, _) = api.json("PATCH", &edit, Some(json!({"content": 5}))).await;
    assert_eq!(status, 400, "an edit's body is checked against the spec");
    // The execution took one of the five; each edit takes one more.
    for n in 0..4 {
        let response = api
            .call(
                "PATCH",
                &edit,
                Some(json!({"content": format!("edit {n}")})),
            )
            .await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap(),
            (3 - n).to_string()
        );
    }
    let refused = api
        .call("PATCH", &edit, Some(json!({"content": "too fast"})))
        .await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.expect("JSON");
    let retry_after = body["retry_after"].as_f64().expect("retry_after");
    assert!(retry_after > 0.0 && retry_after <= 2.0, "{body}");
    assert_eq!(api.fake.rate_limited().len(), 1);
    assert_eq!(api.fake.validation_errors().len(), 1);
}

#[tokio::test]
async fn channels_answer_as_text_channels_or_threads() {
    let api = Api::start().await;
    api.fake.add_thread("6100", "6001");
    let (_, channel) = api.json("GET", "/channels/6001", None).await;
    assert_eq!(
        (channel["type"].clone(), channel["guild_id"].clone()),
        (json!(0), json!("8001"))
    );
    let parsed: serenity::model::channel::Channel =
        serde_json::from_value(channel).expect("channel parses");
    assert!(parsed.guild().is_some());
    let (_, thread) = api.json("GET", "/channels/6100", None).await;
    assert_eq!(
        (thread["type"].clone(), thread["parent_id"].clone()),
        (json!(11), json!("6001"))
    );
    let _: serenity::model::channel::Channel =
        serde_json::from_value(thread).expect("thread parses");
    assert_eq!(api.json("POST", "/channels/6001/typing", None).await.0, 204);

    api.fake
        .send_message(MessageSpec::dm("6500", "7001", "alice", "psst"))
        .await;
    let (_, dm) = api.json("GET", "/channels/6500", None).await;
    assert_eq!(dm["type"], 1);
    let parsed: serenity::model::channel::Channel = serde_json::from_value(dm).expect("DM parses");
    assert!(parsed.private().is_some());
    let (_, user) = api.json("GET", "/users/7001", None).await;
    assert_eq!(user["username"], "alice");
    let (_, member) = api.json("GET", "/guilds/8001/members/7001", None).await;
    let _: serenity::model::guild::Member = serde_json::from_value(member).expect("member parses");
    api.fake.add_text_channel("6002", "random");
    let (_, listed) = api.json("GET", "/guilds/8001/channels", None).await;
    assert_eq!(listed[0]["name"], "random");
    api.assert_clean_responses();
}

#[tokio::test]
async fn interactions_are_answered_once_and_followed_up() {
    let api = Api::start().await;
    let id = api
        .fake
        .slash_command(CommandSpec::new("ping", vec![]))
        .await;
    let token = api.fake.interaction_token(&id).expect("token");
    assert!(
        token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "URL-safe: {token}"
    );

    let (status, _) = api
        .json(
            "POST",
            &format!("/webhooks/9001/{token}"),
            Some(json!({"content": "early"})),
        )
        .await;
    assert_eq!(status, 404, "no follow-up before the acknowledgement");

    let callback = format!("/interactions/{id}/{token}/callback");
    let (status, _) = api.json("POST", &callback, Some(json!({"type": 5}))).await;
    assert_eq!(status, 204);
    let response = api
        .fake
        .wait_interaction_response(&id, WAIT)
        .await
        .expect("response");
    assert_eq!(response, json!({"type": 5}));
    let (status, error) = api
        .json(
            "POST",
            &callback,
            Some(json!({"type": 4, "data": {"content": "again"}})),
        )
        .await;
    assert_eq!((status, error["code"].clone()), (400, json!(40060)));

    let (status, edited) = api
        .json(
            "PATCH",
            &format!("/webhooks/9001/{token}/messages/@original"),
            Some(json!({"content": "Pong!"})),
        )
        .await;
    assert_eq!(status, 200);
    let _: serenity::model::channel::Message =
        serde_json::from_value(edited.clone()).expect("edit parses");
    assert_eq!(
        api.fake
            .wait_interaction_edit(&id, WAIT)
            .await
            .expect("edit"),
        json!({"content": "Pong!"})
    );
    assert_eq!(
        api.fake
            .interaction_original(&id)
            .map(|m| m["content"].clone()),
        Some(json!("Pong!"))
    );

    let (status, followup) = api
        .json(
            "POST",
            &format!("/webhooks/9001/{token}"),
            Some(json!({"content": "more", "flags": 64})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(followup["flags"], 64);
    let followups = api
        .fake
        .wait_interaction_followups(&id, 1, WAIT)
        .await
        .expect("follow-up");
    assert_eq!(followups, [json!({"content": "more", "flags": 64})]);
    let followup_id = followup["id"].as_str().expect("id");
    assert_eq!(
        api.json(
            "GET",
            &format!("/webhooks/9001/{token}/messages/{followup_id}"),
            None
        )
        .await
        .0,
        200
    );

    let visible: Vec<Value> = api.fake.channel_messages("6001");
    assert_eq!(
        visible.len(),
        1,
        "the ephemeral follow-up is not in the channel"
    );
    assert!(
        api.fake.webhook_executions().is_empty(),
        "follow-ups are not webhook executions"
    );
    api.assert_clean_responses();
    assert_eq!(
        api.fake.validation_errors().len(),
        2,
        "{:?}",
        api.fake.validation_errors()
    );
}

#[tokio::test]
async fn callback_types_must_fit_the_interaction() {
    let api = Api::start().await;
    let autocomplete = api.fake.autocomplete(CommandSpec::new("x", vec![])).await;
    let token = api.fake.interaction_token(&autocomplete).expect("token");
    let (status, _) = api
        .json(
            "POST",
            &format!("/interactions/{autocomplete}/{token}/callback"),
            Some(json!({"type": 4, "data": {"content": "no"}})),
        )
        .await;
    assert_eq!(status, 400);

    let message = api
        .fake
        .send_message(MessageSpec::new("6001", "9001", "testbot", "pick one"))
        .await;
    let click = api
        .fake
        .button_click(ComponentSpec {
            custom_id: "b".into(),
            message_id: message.clone(),
            ..Default::default()
        })
        .await;
    let token = api.fake.interaction_token(&click).expect("token");
    let (status, _) = api
        .json(
            "POST",
            &format!("/interactions/{click}/{token}/callback"),
            Some(json!({"type": 7, "data": {"content": "picked", "components": []}})),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        api.fake.message(&message).map(|m| m["content"].clone()),
        Some(json!("picked"))
    );
}

#[tokio::test]
async fn late_acknowledgements_are_unknown_interactions() {
    let config = FakeDiscordConfig {
        interaction_ack_deadline: Some(Duration::from_millis(50)),
        ..Default::default()
    };
    let api = Api::start_with(config).await;
    let id = api
        .fake
        .slash_command(CommandSpec::new("slow", vec![]))
        .await;
    let token = api.fake.interaction_token(&id).expect("token");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, error) = api
        .json(
            "POST",
            &format!("/interactions/{id}/{token}/callback"),
            Some(json!({"type": 5})),
        )
        .await;
    assert_eq!((status, error["code"].clone()), (404, json!(10062)));
    assert!(api.fake.validation_errors()[0].contains("acknowledged after"));
}

#[tokio::test]
async fn command_registration_is_kept_and_checked() {
    let api = Api::start().await;
    let commands = json!([{"name": "ping", "description": "Ping", "type": 1, "options": []}]);
    let (status, registered) = api
        .json(
            "PUT",
            "/applications/9001/guilds/8001/commands",
            Some(commands.clone()),
        )
        .await;
    assert_eq!(status, 200);
    let parsed: Vec<serenity::model::application::Command> =
        serde_json::from_value(registered.clone()).expect("commands parse");
    assert_eq!(parsed[0].name, "ping");
    assert_eq!(
        api.fake.registered_commands(),
        commands.as_array().cloned().expect("array")
    );
    let (_, again) = api
        .json(
            "PUT",
            "/applications/9001/guilds/8001/commands",
            Some(commands),
        )
        .await;
    assert_eq!(again[0]["id"], registered[0]["id"], "ids are stable");

    let (status, _) = api
        .json(
            "PUT",
            "/applications/9001/commands",
            Some(json!([{"name": "Ping", "description": "x"}])),
        )
        .await;
    assert_eq!(status, 400, "upper-case names are refused");
    let (status, _) = api
        .json(
            "PUT",
            "/applications/9001/commands",
            Some(json!([{"name": "a", "description": "x"}, {"name": "a", "description": "y"}])),
        )
        .await;
    assert_eq!(status, 400, "duplicate names are refused");
    api.assert_clean_responses();
}

#[tokio::test]
async fn message_commands_register_without_description_and_are_answered() {
    let api = Api::start().await;
    let menu = json!([{"name": "Personality info", "type": 3, "options": []}]);
    let (status, _) = api
        .json("PUT", "/applications/9001/commands", Some(menu))
        .await;
    assert_eq!(
        status, 200,
        "spaces and capitals are fine in a menu command"
    );
    let (status, _) = api
        .json(
            "PUT",
            "/applications/9001/commands",
            Some(json!([{"name": "Info", "type": 3, "description": "Shows info"}])),
        )
        .await;
    assert_eq!(status, 400, "menu commands have no description");

    let target = api
        .fake
        .send_message(MessageSpec::new("6001", "7002", "bob", "hello"))
        .await;
    let id = api
        .fake
        .message_command(MessageCommandSpec {
            name: "Personality info".to_owned(),
            target_id: target.clone(),
            ..MessageCommandSpec::default()
        })
        .await;
    let token = api.fake.interaction_token(&id).expect("token");
    let (status, _) = api
        .json(
            "POST",
            &format!("/interactions/{id}/{token}/callback"),
            Some(json!({"type": 4, "data": {"content": "ok", "flags": 64}})),
        )
        .await;
    assert_eq!(status, 204);
    api.assert_clean_responses();
}

#[tokio::test]
async fn messages_with_embeds_and_components_come_back_in_spec_shape() {
    let api = Api::start().await;
    let body = json!({
        "content": "Pick one",
        "embeds": [{"title": "Aria", "description": "A singer", "color": 3_447_003,
                    "fields": [{"name": "Model", "value": "default"}], "footer": {"text": "personae"}}],
        "components": [
            {"type": 1, "components": [{"type": 2, "style": 4, "label": "Delete", "custom_id": "delete:1"}]},
            {"type": 1, "components": [{"type": 3, "custom_id": "pick", "options": [{"label": "A", "value": "a"}]}]},
        ],
        "allowed_mentions": {"parse": []},
    });
    let (status, message) = api
        .json("POST", "/channels/6001/messages", Some(body))
        .await;
    assert_eq!(status, 200);
    assert_eq!(message["components"][0]["id"], 1);
    assert_eq!(message["components"][0]["components"][0]["id"], 2);
    assert_eq!(message["embeds"][0]["type"], "rich");
    let parsed: serenity::model::channel::Message =
        serde_json::from_value(message).expect("message parses");
    assert_eq!(parsed.components.len(), 2);
    assert!(!parsed.embeds[0].fields[0].inline);
    api.assert_clean_responses();
    assert!(
        api.fake.validation_errors().is_empty(),
        "{:?}",
        api.fake.validation_errors()
    );
}
