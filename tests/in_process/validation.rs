//! Every rule of the value objects, through the service: valid input is stored exactly,
//! invalid input gets an error naming the field and leaves the database unchanged.

use personae::application::{ProfileUpdate, Registration, ServiceError};
use personae_testkit::{alice, spawn_app, TestApp};

fn field_of(err: &ServiceError) -> String {
    err.to_string()
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn assert_refused(
    t: &TestApp,
    field: &str,
    result: Result<personae::domain::Personality, ServiceError>,
    before: &[String],
) {
    let err = result.expect_err("invalid input must be refused");
    assert!(err.is_user_error(), "{err}");
    assert_eq!(field_of(&err), field, "the error names the field: {err}");
    assert_eq!(
        t.snapshot(),
        before,
        "a refused command changes nothing ({err})"
    );
}

#[tokio::test]
async fn invalid_registrations_are_refused_with_the_field_named_and_change_nothing() {
    let t = spawn_app().await;
    t.create("Existing", alice(), &["ex"]).await;
    let before = t.snapshot();
    let ctx = t.as_user(alice());
    let base = || Registration {
        name: "Nova".into(),
        ..Default::default()
    };
    let long = |n| "x".repeat(n);
    let cases: Vec<(&str, Registration)> = vec![
        (
            "name",
            Registration {
                name: String::new(),
                ..base()
            },
        ),
        (
            "name",
            Registration {
                name: "   ".into(),
                ..base()
            },
        ),
        (
            "name",
            Registration {
                name: long(65),
                ..base()
            },
        ),
        (
            "name",
            Registration {
                name: "no.dots".into(),
                ..base()
            },
        ),
        (
            "name",
            Registration {
                name: "tab\there".into(),
                ..base()
            },
        ),
        (
            "display_name",
            Registration {
                display_name: Some(long(81)),
                ..base()
            },
        ),
        (
            "display_name",
            Registration {
                display_name: Some("Discord".into()),
                ..base()
            },
        ),
        (
            "display_name",
            Registration {
                display_name: Some("my CLYDE".into()),
                ..base()
            },
        ),
        (
            "display_name",
            Registration {
                display_name: Some("everyone".into()),
                ..base()
            },
        ),
        (
            "display_name",
            Registration {
                display_name: Some("Here".into()),
                ..base()
            },
        ),
        (
            "display_name",
            Registration {
                display_name: Some("a\u{202E}b".into()),
                ..base()
            },
        ),
        (
            "display_name",
            Registration {
                display_name: Some("zero\u{200B}width".into()),
                ..base()
            },
        ),
        (
            "display_name",
            Registration {
                display_name: Some("bell\u{7}".into()),
                ..base()
            },
        ),
        (
            "display_name",
            Registration {
                display_name: Some(" ".into()),
                ..base()
            },
        ),
        (
            "alias",
            Registration {
                aliases: vec![long(51)],
                ..base()
            },
        ),
        (
            "alias",
            Registration {
                aliases: vec!["🦀".into()],
                ..base()
            },
        ),
        (
            "alias",
            Registration {
                aliases: vec!["a.b".into()],
                ..base()
            },
        ),
        (
            "alias",
            Registration {
                aliases: vec!["  ".into()],
                ..base()
            },
        ),
        (
            "alias",
            Registration {
                aliases: (0..26).map(|i| format!("a{i}")).collect(),
                ..base()
            },
        ),
        (
            "alias",
            Registration {
                aliases: vec!["EX".into()],
                ..base()
            },
        ),
        (
            "alias",
            Registration {
                aliases: vec!["nova".into()],
                ..base()
            },
        ),
        (
            "avatar_url",
            Registration {
                avatar_url: Some("javascript:alert(1)".into()),
                ..base()
            },
        ),
        (
            "avatar_url",
            Registration {
                avatar_url: Some("data:image/png;base64,AAAA".into()),
                ..base()
            },
        ),
        (
            "avatar_url",
            Registration {
                avatar_url: Some("ftp://example.com/a.png".into()),
                ..base()
            },
        ),
        (
            "avatar_url",
            Registration {
                avatar_url: Some(format!("https://example.com/{}", long(2048))),
                ..base()
            },
        ),
        (
            "avatar_url",
            Registration {
                avatar_url: Some("not a url".into()),
                ..base()
            },
        ),
        (
            "prompt",
            Registration {
                prompt: Some(long(6001)),
                ..base()
            },
        ),
        (
            "prompt",
            Registration {
                prompt: Some("esc\u{1b}[2J".into()),
                ..base()
            },
        ),
        (
            "model",
            Registration {
                model: Some(long(101)),
                ..base()
            },
        ),
        (
            "model",
            Registration {
                model: Some("gpt 4".into()),
                ..base()
            },
        ),
        (
            "model",
            Registration {
                model: Some("m;rm -rf".into()),
                ..base()
            },
        ),
        (
            "name",
            Registration {
                name: "existing".into(),
                ..base()
            },
        ),
        (
            "name",
            Registration {
                name: "EX".into(),
                ..base()
            },
        ),
    ];
    for (field, registration) in cases {
        let result = t.app.service.register(&ctx, registration.clone()).await;
        assert_refused(&t, field, result, &before);
    }
}

#[tokio::test]
async fn valid_values_at_the_limits_are_stored_exactly() {
    let t = spawn_app().await;
    let ctx = t.as_user(alice());
    let prompt = format!(
        "Line one\nLine two\t'; DROP TABLE personalities; --\n{}",
        "p".repeat(5900)
    );
    let avatar = format!("https://cdn.example.com/{}", "a".repeat(2048 - 24));
    let registration = Registration {
        name: format!("  Élodie_{}  ", "n".repeat(55)),
        display_name: Some(format!("🦀 Zoë — {}", "d".repeat(71))),
        avatar_url: Some(avatar.clone()),
        prompt: Some(prompt.clone()),
        model: Some("openai/gpt-4o-mini:2024.07_x".into()),
        aliases: vec!["  The   BARD ".into(), "ＡＲＩＡ".into(), "x".repeat(50)],
        ..Default::default()
    };
    let created = t.app.service.register(&ctx, registration).await.unwrap();
    let stored = t
        .app
        .service
        .get(Some(personae_testkit::home()), created.name().as_str())
        .await
        .unwrap();
    assert_eq!(stored.name().as_str(), format!("Élodie_{}", "n".repeat(55)));
    assert_eq!(
        stored.profile().display_name.as_str(),
        format!("🦀 Zoë — {}", "d".repeat(71))
    );
    assert_eq!(stored.profile().prompt.as_str(), prompt);
    assert_eq!(
        stored.profile().avatar_url.as_ref().unwrap().as_str(),
        avatar
    );
    assert_eq!(
        stored.profile().model.as_ref().unwrap().as_str(),
        "openai/gpt-4o-mini:2024.07_x"
    );
    let aliases: Vec<_> = stored
        .aliases()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect();
    assert_eq!(
        aliases,
        vec!["aria".to_owned(), "the bard".to_owned(), "x".repeat(50)]
    );
    assert_eq!(
        stored, created,
        "what the service returned is what was stored"
    );
}

#[tokio::test]
async fn invalid_updates_and_aliases_change_nothing() {
    let t = spawn_app().await;
    t.create("Aria", alice(), &["bard"]).await;
    let before = t.snapshot();
    let ctx = t.as_user(alice());
    let service = &t.app.service;
    let update = |u: ProfileUpdate| service.update_profile(&ctx, "Aria", u);
    assert_refused(
        &t,
        "display_name",
        update(ProfileUpdate {
            display_name: Some("Clyde".into()),
            ..Default::default()
        })
        .await,
        &before,
    );
    assert_refused(
        &t,
        "avatar_url",
        update(ProfileUpdate {
            avatar_url: Some("javascript:x".into()),
            ..Default::default()
        })
        .await,
        &before,
    );
    assert_refused(
        &t,
        "prompt",
        update(ProfileUpdate {
            prompt: Some("x".repeat(6001)),
            ..Default::default()
        })
        .await,
        &before,
    );
    assert_refused(
        &t,
        "model",
        update(ProfileUpdate {
            model: Some("no spaces".into()),
            ..Default::default()
        })
        .await,
        &before,
    );
    // A mix of a valid and an invalid field changes neither.
    let mixed = ProfileUpdate {
        display_name: Some("Fine Name".into()),
        model: Some("bad model".into()),
        ..Default::default()
    };
    assert_refused(&t, "model", update(mixed).await, &before);
    let err = update(ProfileUpdate {
        display_name: Some("Aria".into()),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().starts_with("Nothing to update"), "{err}");
    assert_eq!(t.snapshot(), before);
    assert_refused(
        &t,
        "alias",
        service.add_alias(&ctx, "Aria", "bard").await,
        &before,
    );
    assert_refused(
        &t,
        "alias",
        service.add_alias(&ctx, "Aria", "aria").await,
        &before,
    );
    assert_refused(
        &t,
        "alias",
        service.add_alias(&ctx, "Aria", "🦀").await,
        &before,
    );
    assert_refused(
        &t,
        "alias",
        service.remove_alias(&ctx, "Aria", "unknown").await,
        &before,
    );
    let err = service.remove(&ctx, "nobody").await.unwrap_err();
    assert_eq!(err.to_string(), "No personality is called \"nobody\".");
    assert_eq!(t.snapshot(), before);
}

#[tokio::test]
async fn optional_fields_can_be_cleared_with_an_empty_value() {
    let t = spawn_app().await;
    let ctx = t.as_user(alice());
    let service = &t.app.service;
    service
        .register(
            &ctx,
            Registration {
                name: "Aria".into(),
                model: Some("gpt-4o".into()),
                avatar_url: Some("https://x.example/a.png".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let p = service
        .update_profile(
            &ctx,
            "Aria",
            ProfileUpdate {
                model: Some(String::new()),
                avatar_url: Some(" ".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(p.profile().model.is_none() && p.profile().avatar_url.is_none());
}
