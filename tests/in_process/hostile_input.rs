//! Hostile input against every field: each value is either refused with a clear message
//! naming the field (and nothing changes) or stored exactly as its rule says — never a
//! panic, never a partial change.

use personae::application::{ProfileUpdate, Registration};
use personae::domain::lookup_key;
use personae_testkit::{alice, spawn_app};

fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "",
        "   ",
        "\t\n",
        "bell\u{7}",
        "nul\u{0}byte",
        "esc\u{1b}[31mred",
        "zero\u{200B}width",
        "joiner\u{200D}x",
        "bidi\u{202E}txet",
        "isolate\u{2066}x\u{2069}",
        "bom\u{FEFF}",
        "@everyone",
        "@here",
        "everyone",
        "Discord",
        "my clyde bot",
        "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "file:///etc/passwd",
        "'; DROP TABLE personalities; --",
        "Robert'); DELETE FROM events;--",
        "1 OR 1=1",
        "🦀",
        "Zoe\u{0308}",
        "e\u{0301}\u{0301}\u{0301}",
        "\u{0301}",
        "ｆｕｌｌｗｉｄｔｈ",
        "ﬁne",
        "<@123456789>",
        "<@&42>",
        "```code```",
        "https://example.com/a.png",
        "http://localhost/x",
        "a b  c",
        "normal-name_1",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    for n in [
        49, 50, 51, 63, 64, 65, 79, 80, 81, 100, 101, 2048, 2049, 6000, 6001, 10_000,
    ] {
        values.push("x".repeat(n));
    }
    values.push(format!("https://example.com/{}", "a".repeat(10_000)));
    values
}

/// What a field's rule keeps of an accepted value.
fn stored_form(field: &str, input: &str) -> String {
    match field {
        "name" | "display_name" | "avatar_url" | "model" => input.trim().to_owned(),
        "alias" => lookup_key(input.trim().strip_prefix('@').unwrap_or(input.trim())),
        "prompt" => input.to_owned(),
        other => panic!("unknown field {other}"),
    }
}

#[tokio::test]
async fn every_field_refuses_or_stores_exactly_every_hostile_value() {
    let t = spawn_app().await;
    let ctx = t.as_user(alice());
    let service = &t.app.service;
    let (mut accepted, mut refused) = (0, 0);
    for (i, value) in hostile_values().into_iter().enumerate() {
        for field in [
            "name",
            "display_name",
            "alias",
            "avatar_url",
            "prompt",
            "model",
        ] {
            // A unique, valid name for every attempt that isn't about the name.
            let name = if field == "name" {
                value.clone()
            } else {
                format!("P{i}{field}")
            };
            let mut registration = Registration {
                name,
                ..Default::default()
            };
            match field {
                "display_name" => registration.display_name = Some(value.clone()),
                "alias" => registration.aliases = vec![value.clone()],
                "avatar_url" => registration.avatar_url = Some(value.clone()),
                "prompt" => registration.prompt = Some(value.clone()),
                "model" => registration.model = Some(value.clone()),
                _ => {}
            }
            // Empty optional values mean "not given": they are neither refused nor stored.
            let optional_and_blank =
                matches!(field, "avatar_url" | "model") && value.trim().is_empty();
            let before = t.snapshot();
            match service.register(&ctx, registration).await {
                Ok(created) => {
                    accepted += 1;
                    let stored = service
                        .get_by_id(created.id())
                        .await
                        .unwrap()
                        .expect("stored");
                    assert_eq!(stored, created);
                    let got = match field {
                        "name" => stored.name().to_string(),
                        "display_name" => stored.profile().display_name.to_string(),
                        "alias" => stored.aliases()[0].to_string(),
                        "avatar_url" => stored
                            .profile()
                            .avatar_url
                            .as_ref()
                            .map(std::string::ToString::to_string)
                            .unwrap_or_default(),
                        "prompt" => stored.profile().prompt.to_string(),
                        _ => stored
                            .profile()
                            .model
                            .as_ref()
                            .map(std::string::ToString::to_string)
                            .unwrap_or_default(),
                    };
                    let expected = if optional_and_blank {
                        String::new()
                    } else {
                        stored_form(field, &value)
                    };
                    assert_eq!(got, expected, "{field} = {value:?} was not stored exactly");
                    // Clean up so later names and aliases stay free.
                    service.remove(&ctx, created.name().as_str()).await.unwrap();
                }
                Err(err) => {
                    refused += 1;
                    assert!(err.is_user_error(), "{field} = {value:?}: {err}");
                    let message = err.to_string();
                    // A name that can't be a webhook name points at the display_name option.
                    let names_field = message.starts_with(&format!("{field}: "))
                        || (field == "name" && message.starts_with("display_name: the name"));
                    assert!(
                        names_field,
                        "{field} = {value:?}: the message names the field: {message}"
                    );
                    assert!(
                        !message.contains("Invalid {") && !message.contains("Error("),
                        "no debug output: {message}"
                    );
                    assert_eq!(
                        t.snapshot(),
                        before,
                        "{field} = {value:?}: a refusal changed something"
                    );
                }
            }
        }
    }
    assert!(
        accepted > 50 && refused > 100,
        "accepted {accepted}, refused {refused}"
    );
}

#[tokio::test]
async fn hostile_updates_refuse_or_store_exactly_and_never_half_apply() {
    let t = spawn_app().await;
    let ctx = t.as_user(alice());
    t.create("Aria", alice(), &[]).await;
    let service = &t.app.service;
    for value in hostile_values() {
        let before = t.snapshot();
        // A valid field next to the hostile one: both apply or neither does.
        let update = ProfileUpdate {
            prompt: Some(format!("prompt for {}", value.len())),
            display_name: Some(value.clone()),
            ..Default::default()
        };
        match service.update_profile(&ctx, "Aria", update).await {
            Ok(p) => {
                assert_eq!(p.profile().display_name.as_str(), value.trim());
                assert_eq!(
                    p.profile().prompt.as_str(),
                    format!("prompt for {}", value.len())
                );
            }
            Err(err) => {
                assert!(err.is_user_error(), "{value:?}: {err}");
                assert_eq!(t.snapshot(), before, "{value:?}: half applied");
            }
        }
    }
    assert!(t.app.service.verify().await.unwrap().is_ok());
}
