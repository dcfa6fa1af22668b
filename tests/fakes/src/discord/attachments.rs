//! Files attached to members' messages, served as Discord's CDN serves them (`GET
//! /attachments/{channel}/{id}/{filename}` on the fake's own address), with a record of
//! every download.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::state::{Shared, State as FakeState};

/// A file attached to a message a test sends.
#[derive(Debug, Clone)]
pub struct AttachmentSpec {
    pub filename: String,
    pub content_type: String,
    /// The bytes the fake's CDN serves.
    pub bytes: Vec<u8>,
    /// The size the message announces; the bytes' length unless set otherwise.
    pub size: Option<usize>,
    /// Where the message says the file is; the fake's CDN unless set otherwise.
    pub url: Option<String>,
}

impl AttachmentSpec {
    /// A file served by the fake's CDN.
    pub fn new(filename: &str, content_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            filename: filename.to_owned(),
            content_type: content_type.to_owned(),
            bytes: bytes.into(),
            size: None,
            url: None,
        }
    }
}

/// The attachment object of a message, its file stored for the CDN route.
pub(crate) fn store(
    shared: &Shared,
    state: &mut FakeState,
    channel_id: &str,
    spec: &AttachmentSpec,
) -> Value {
    let id = state.ids.next();
    let path = format!("{channel_id}/{id}/{}", spec.filename);
    let url = spec
        .url
        .clone()
        .unwrap_or_else(|| format!("{}/attachments/{path}", shared.base_url));
    state
        .files
        .insert(path, (spec.content_type.clone(), spec.bytes.clone()));
    json!({
        "id": id,
        "filename": spec.filename,
        "size": spec.size.unwrap_or(spec.bytes.len()),
        "url": url,
        "proxy_url": url,
        "content_type": spec.content_type,
    })
}

/// `GET /attachments/{channel}/{id}/{filename}`.
pub(crate) async fn serve(
    State(shared): State<Arc<Shared>>,
    Path((channel, id, filename)): Path<(String, String, String)>,
) -> Response {
    let path = format!("{channel}/{id}/{filename}");
    let file = shared.update(|s| {
        s.downloads.push(path.clone());
        s.files.get(&path).cloned()
    });
    match file {
        Some((content_type, bytes)) => ([(CONTENT_TYPE, content_type)], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl super::FakeDiscord {
    /// The base of the fake's attachment URLs, for DISCORD_ATTACHMENT_URLS.
    pub fn attachment_base(&self) -> String {
        format!("{}/attachments/", self.shared.base_url)
    }

    /// The attachments downloaded from the fake's CDN (`channel/id/filename`), oldest first.
    pub fn attachment_downloads(&self) -> Vec<String> {
        self.shared.read(|s| s.downloads.clone())
    }
}
