//! The CDN Discord serves attachments from: files a test attaches to a slash
//! command are uploaded here first, dispatched in the command's
//! `resolved.attachments`, and downloaded by the bot from
//! `/ephemeral-attachments/{application}/{id}/{filename}`, as on
//! cdn.discordapp.com.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::state::Shared;
use super::FakeDiscord;

/// A file on the fake CDN.
#[derive(Clone, Debug)]
pub(crate) struct CdnFile {
    /// The attachment object Discord gives for it.
    pub attachment: Value,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl FakeDiscord {
    /// Puts a file on the fake CDN as a member attaching it to a slash
    /// command would, and returns its attachment object. Give its `id` as the
    /// value of an attachment option (type 11): the command then carries it
    /// in `resolved.attachments`.
    pub fn upload_attachment(&self, filename: &str, content_type: &str, bytes: &[u8]) -> Value {
        let base_url = self.shared.base_url.clone();
        let application = self.shared.config.application_id.clone();
        self.shared.update(|state| {
            let id = state.ids.next();
            let path = format!("/ephemeral-attachments/{application}/{id}/{filename}");
            // Signed like Discord's CDN links; the bot must keep the query.
            let query = format!("?ex={id}&is={id}&hm=signature{id}");
            let attachment = json!({
                "id": id,
                "filename": filename,
                "size": bytes.len(),
                "url": format!("{base_url}{path}{query}"),
                "proxy_url": format!("{base_url}{path}{query}"),
                "content_type": content_type,
                "ephemeral": true,
            });
            state.cdn.insert(
                path,
                CdnFile {
                    attachment: attachment.clone(),
                    content_type: content_type.to_owned(),
                    bytes: bytes.to_vec(),
                },
            );
            attachment
        })
    }

    /// The paths of the CDN files downloaded so far, in order.
    pub fn cdn_downloads(&self) -> Vec<String> {
        self.shared.read(|s| s.cdn_downloads.clone())
    }
}

/// `GET /ephemeral-attachments/…`: the file, or 404 as the CDN answers.
pub(crate) async fn serve(
    AxumState(shared): AxumState<Arc<Shared>>,
    request: Request<Body>,
) -> Response {
    let path = request.uri().path().to_owned();
    let signed = request
        .uri()
        .query()
        .is_some_and(|q| q.contains("hm=signature"));
    let file = shared.update(|state| {
        state.cdn_downloads.push(path.clone());
        state.cdn.get(&path).cloned()
    });
    match file {
        // Discord's CDN refuses attachment links without their signature.
        Some(file) if signed => (
            StatusCode::OK,
            [("content-type", file.content_type)],
            file.bytes,
        )
            .into_response(),
        Some(_) => (
            StatusCode::NOT_FOUND,
            "This content is no longer available.",
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `resolved.attachments` for the attachment options (type 11) among
/// `options`, at any depth of subcommands; `None` without any.
pub(crate) fn resolved_attachments(
    cdn: &std::collections::HashMap<String, CdnFile>,
    options: &[Value],
) -> Option<Value> {
    let mut ids = Vec::new();
    collect_attachment_ids(options, &mut ids);
    let resolved: Map<String, Value> = ids
        .into_iter()
        .filter_map(|id| {
            let file = cdn.values().find(|f| f.attachment["id"] == id)?;
            Some((id, file.attachment.clone()))
        })
        .collect();
    (!resolved.is_empty()).then(|| json!({ "attachments": resolved }))
}

fn collect_attachment_ids(options: &[Value], ids: &mut Vec<String>) {
    for option in options {
        if option["type"] == 11 {
            if let Some(id) = option["value"].as_str() {
                ids.push(id.to_owned());
            }
        }
        if let Some(nested) = option["options"].as_array() {
            collect_attachment_ids(nested, ids);
        }
    }
}
