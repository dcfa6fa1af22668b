//! Files in both directions: attachments a user gives a slash command (served
//! by the fake CDN), and files the bot uploads (multipart bodies, checked and
//! kept). Their resolution in a command's interaction is shown end to end by
//! personae's `transfer_discord` tests.

use personae_fakes::discord::FakeDiscord;
use reqwest::multipart::{Form, Part};
use serde_json::json;

#[tokio::test]
async fn an_uploaded_attachment_is_served_only_with_its_signed_link() {
    let fake = FakeDiscord::start().await;
    let attachment = fake.upload_attachment("card.png", "image/png", b"\x89PNG...");
    let url = attachment["url"].as_str().unwrap();
    assert!(url.starts_with(&fake.base_url()), "{url}");
    let http = reqwest::Client::new();
    let got = http.get(url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"\x89PNG...");
    let unsigned = url.split('?').next().unwrap();
    assert_eq!(http.get(unsigned).send().await.unwrap().status(), 404);
    let unknown = format!(
        "{}/ephemeral-attachments/1/2/other.png?hm=signature2",
        fake.base_url()
    );
    assert_eq!(http.get(unknown).send().await.unwrap().status(), 404);
    assert_eq!(fake.cdn_downloads().len(), 3);
}

#[tokio::test]
async fn files_the_bot_uploads_are_kept_and_attachments_must_name_them() {
    let fake = FakeDiscord::start().await;
    let http = reqwest::Client::new();
    let channel = format!("{}/api/v10/channels/6001/messages", fake.base_url());
    let send = |payload: serde_json::Value, with_file: bool| {
        let mut form = Form::new().text("payload_json", payload.to_string());
        if with_file {
            form = form.part(
                "files[0]",
                Part::bytes(b"hello".to_vec()).file_name("a.txt"),
            );
        }
        http.post(&channel)
            .header("Authorization", "Bot test-token")
            .multipart(form)
            .send()
    };
    let ok = send(
        json!({"content": "a file", "attachments": [{"id": 0, "filename": "a.txt"}]}),
        true,
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let sent = fake
        .requests()
        .into_iter()
        .find(|r| r.is("POST", "/channels/6001/messages"))
        .unwrap();
    assert_eq!(sent.files[0].filename, "a.txt");
    assert_eq!(sent.files[0].bytes, b"hello");
    assert!(
        fake.validation_errors().is_empty(),
        "{:?}",
        fake.validation_errors()
    );

    let missing = send(
        json!({"content": "no file", "attachments": [{"id": 0, "filename": "a.txt"}]}),
        false,
    )
    .await
    .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        fake.validation_errors().len(),
        1,
        "{:?}",
        fake.validation_errors()
    );
}
