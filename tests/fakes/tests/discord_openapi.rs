//! The OpenAPI validation: real payloads pass, wrong ones fail with the
//! field that is wrong.

use personae_fakes::discord::openapi::{route_template, validate_request, validate_response};
use serde_json::{json, Value};

const EXECUTE: &str = "/webhooks/111/tok-abc";
const CALLBACK: &str = "/interactions/222/itok-1/callback";

fn failing_paths(method: &str, path: &str, body: &Value) -> Vec<String> {
    match validate_request(method, path, body) {
        Ok(()) => panic!("expected {method} {path} to be rejected: {body}"),
        Err(failure) => failure.errors.iter().map(|e| e.path.clone()).collect(),
    }
}

fn assert_valid(method: &str, path: &str, body: Value) {
    if let Err(failure) = validate_request(method, path, &body) {
        panic!("expected {method} {path} to validate: {failure}");
    }
}

#[test]
fn webhook_execution_as_serenity_sends_it_validates() {
    assert_valid(
        "POST",
        EXECUTE,
        json!({
            "content": "Hello there",
            "username": "Aria",
            "avatar_url": "https://example.com/aria.png",
            "allowed_mentions": {"parse": []},
            "embeds": [],
            "tts": false,
        }),
    );
}

#[test]
fn webhook_username_longer_than_80_is_rejected() {
    let body = json!({"content": "hi", "username": "a".repeat(81)});
    assert_eq!(failing_paths("POST", EXECUTE, &body), ["/username"]);
    let failure = validate_request("POST", EXECUTE, &body).expect_err("invalid");
    assert_eq!(failure.route, "POST /webhooks/{webhook_id}/{webhook_token}");
    assert_eq!(failure.errors[0].code, "BASE_TYPE_MAX_LENGTH");
    assert_eq!(
        failure.discord_body(),
        json!({"code": 50035, "message": "Invalid Form Body", "errors": {"username": {"_errors": [
            {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 80 or fewer in length."}
        ]}}})
    );
}

#[test]
fn content_longer_than_2000_is_rejected() {
    let body = json!({"content": "x".repeat(2001)});
    assert_eq!(failing_paths("POST", EXECUTE, &body), ["/content"]);
    assert_eq!(
        failing_paths("POST", "/channels/1/messages", &body),
        ["/content"]
    );
    assert_valid("POST", EXECUTE, json!({"content": "x".repeat(2000)}));
}

#[test]
fn avatar_url_must_be_a_uri() {
    let body = json!({"content": "hi", "avatar_url": "not a url"});
    assert_eq!(failing_paths("POST", EXECUTE, &body), ["/avatar_url"]);
}

#[test]
fn interaction_callbacks_poise_sends_validate() {
    assert_valid(
        "POST",
        CALLBACK,
        json!({"type": 4, "data": {
            "content": "Pong!", "flags": 64, "tts": false, "embeds": [], "components": [],
            "allowed_mentions": {"parse": [], "replied_user": false},
        }}),
    );
    assert_valid("POST", CALLBACK, json!({"type": 5, "data": {"flags": 64}}));
    assert_valid("POST", CALLBACK, json!({"type": 6}));
    assert_valid(
        "POST",
        CALLBACK,
        json!({"type": 8, "data": {"choices": [{"name": "Aria", "value": "Aria"}]}}),
    );
    assert_valid(
        "POST",
        CALLBACK,
        json!({"type": 9, "data": {"custom_id": "m1", "title": "Edit", "components": [
            {"type": 1, "components": [
                {"type": 4, "custom_id": "prompt", "style": 2, "label": "Prompt", "required": true}
            ]}
        ]}}),
    );
}

#[test]
fn bad_interaction_callbacks_are_rejected() {
    assert_eq!(
        failing_paths("POST", CALLBACK, &json!({"type": 42})),
        ["/type"]
    );
    let too_long = json!({"type": 4, "data": {"content": "x".repeat(2001)}});
    assert_eq!(
        failing_paths("POST", CALLBACK, &too_long),
        ["/data/content"]
    );
    let too_many_choices: Vec<Value> = (0..26)
        .map(|i| json!({"name": format!("c{i}"), "value": format!("c{i}")}))
        .collect();
    let autocomplete = json!({"type": 8, "data": {"choices": too_many_choices}});
    assert_eq!(
        failing_paths("POST", CALLBACK, &autocomplete),
        ["/data/choices"]
    );
}

#[test]
fn command_registration_with_subcommands_validates() {
    let commands = json!([{
        "name": "personality",
        "description": "Manage personalities",
        "name_localizations": {},
        "description_localizations": {},
        "default_member_permissions": "8",
        "dm_permission": false,
        "type": 1,
        "nsfw": false,
        "options": [{
            "type": 1, "name": "create", "description": "Create one",
            "options": [
                {"type": 3, "name": "name", "description": "Its name", "required": true,
                 "autocomplete": true, "min_length": 1, "max_length": 32},
                {"type": 4, "name": "temperature", "description": "0-100", "min_value": 0, "max_value": 100},
            ],
        }],
    }]);
    assert_valid("PUT", "/applications/9001/commands", commands.clone());
    assert_valid("PUT", "/applications/9001/guilds/8001/commands", commands);
}

#[test]
fn a_too_long_command_description_is_rejected() {
    let commands = json!([{"name": "ping", "description": "d".repeat(101), "type": 1}]);
    assert_eq!(
        failing_paths("PUT", "/applications/9001/commands", &commands),
        ["/0/description"]
    );
}

#[test]
fn permission_strings_are_accepted_only_as_decimal_digits() {
    let with = |permissions: Value| json!([{"name": "x", "description": "y", "default_member_permissions": permissions}]);
    assert_valid("PUT", "/applications/9001/commands", with(json!("8")));
    assert_valid("PUT", "/applications/9001/commands", with(json!(8)));
    assert_valid("PUT", "/applications/9001/commands", with(Value::Null));
    let bad = with(json!("eight"));
    assert_eq!(
        failing_paths("PUT", "/applications/9001/commands", &bad),
        ["/0/default_member_permissions"]
    );
}

#[test]
fn webhook_creation_name_is_bounded() {
    assert_valid(
        "POST",
        "/channels/6001/webhooks",
        json!({"name": "Personae"}),
    );
    let body = json!({"name": "n".repeat(81)});
    assert_eq!(
        failing_paths("POST", "/channels/6001/webhooks", &body),
        ["/name"]
    );
}

#[test]
fn routes_match_spec_templates() {
    assert_eq!(
        route_template("/webhooks/1/abc/messages/@original").as_deref(),
        Some("/webhooks/{webhook_id}/{webhook_token}/messages/@original")
    );
    assert_eq!(
        route_template("/channels/1/messages/2").as_deref(),
        Some("/channels/{channel_id}/messages/{message_id}")
    );
    assert_eq!(route_template("/nope"), None);
    // Routes without a described body always pass.
    assert_valid("POST", "/channels/1/typing", json!({"anything": true}));
}

#[test]
fn responses_are_checked_against_their_status_schema() {
    assert!(validate_response("GET", "/users/@me", 200, &json!({"id": "1"})).is_err());
    let user = json!({"id": "1", "username": "u", "avatar": null, "discriminator": "0", "public_flags": 0,
        "flags": 0, "global_name": null, "mfa_enabled": false, "locale": "en-US"});
    assert!(validate_response("GET", "/users/@me", 200, &user).is_ok());
}
