//! The REST pipeline every `/api/v10/...` request goes through: read and
//! record it, apply an injected fault, validate its JSON body against the
//! OpenAPI description, route it, and check the answer against the spec.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::multipart::{self, UploadedFile};
use super::openapi;
use super::record::{RecordedRequest, API_PREFIX, HEADERS_OF_INTEREST};
use super::routes;
use super::state::{Shared, State};

/// Bodies above this size are refused (Discord's own limit for JSON is far lower).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The answer to a REST request.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
    /// The fake does not implement the route.
    pub unhandled: bool,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
            unhandled: false,
        }
    }

    pub(crate) fn ok(body: Value) -> Self {
        Self::json(200, body)
    }

    pub(crate) fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
            headers: Vec::new(),
            unhandled: false,
        }
    }

    /// A Discord JSON error: `{"code": code, "message": message}`.
    pub(crate) fn error(status: u16, code: u32, message: &str) -> Self {
        Self::json(status, json!({"code": code, "message": message}))
    }

    pub(crate) fn unknown_message() -> Self {
        Self::error(404, 10008, "Unknown Message")
    }

    pub(crate) fn unknown_webhook() -> Self {
        Self::error(404, 10015, "Unknown Webhook")
    }

    pub(crate) fn unknown_interaction() -> Self {
        Self::error(404, 10062, "Unknown interaction")
    }

    /// 404 for a route the fake does not implement.
    pub(crate) fn unhandled() -> Self {
        Self {
            unhandled: true,
            ..Self::error(404, 0, "404: Not Found")
        }
    }

    /// 400 Invalid Form Body with Discord's nested `errors` for one field.
    pub(crate) fn invalid_field(field: &str, code: &str, message: &str) -> Self {
        Self::json(
            400,
            json!({"code": 50035, "message": "Invalid Form Body",
                   "errors": {field: {"_errors": [{"code": code, "message": message}]}}}),
        )
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match self.body {
            Some(body) => (
                status,
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response(),
            None => status.into_response(),
        };
        for (name, value) in self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// Records a request Discord would reject beyond the schema (see
/// [`FakeDiscord::validation_errors`](super::FakeDiscord::validation_errors))
/// and passes the rejection through.
pub(crate) fn reject(
    state: &mut State,
    request: &RecordedRequest,
    reason: &str,
    reply: Reply,
) -> Reply {
    let body = request
        .body
        .as_ref()
        .map_or_else(String::new, Value::to_string);
    state.validation_errors.push(format!(
        "{} {}: {reason}; body: {body}",
        request.method,
        request.api_path()
    ));
    reply
}

/// Axum handler for every path except `/ws`.
pub(crate) async fn handle(
    AxumState(shared): AxumState<Arc<Shared>>,
    request: Request<Body>,
) -> Response {
    let at = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return Reply::error(413, 40005, "Request entity too large").into_response(),
    };
    let headers = interesting_headers(&parts.headers);
    let content_type = headers.get("content-type").cloned().unwrap_or_default();
    let (parsed, files, form_problems) = parse_body(&content_type, &bytes);
    let record = RecordedRequest {
        method: parts.method.as_str().to_ascii_uppercase(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body: parsed.as_ref().ok().cloned().flatten(),
        files,
        status: 0,
        at,
    };
    let api_path = record
        .path
        .strip_prefix(API_PREFIX)
        .filter(|p| p.starts_with('/'))
        .map(str::to_owned);
    let invalid = match (&api_path, &record.body) {
        (Some(path), Some(body)) => openapi::validate_request(&record.method, path, body).err(),
        _ => None,
    };
    let reply = shared.update(|state| {
        if !form_problems.is_empty() {
            let problems = form_problems.join("; ");
            let reply = Reply::invalid_field("attachments", "BASE_TYPE_BAD_FORM", &problems);
            let reply = reject(state, &record, &problems, reply);
            let mut record = record;
            record.status = reply.status;
            state.requests.push(record);
            return reply;
        }
        respond(
            &shared,
            state,
            record,
            api_path.as_deref(),
            invalid,
            parsed.is_err(),
        )
    });
    if let (Some(path), Some(body)) = (
        &api_path,
        reply
            .body
            .as_ref()
            .filter(|_| (200..300).contains(&reply.status)),
    ) {
        let method = parts.method.as_str().to_ascii_uppercase();
        if let Err(failure) = openapi::validate_response(&method, path, reply.status, body) {
            shared.update(|s| {
                s.response_errors
                    .push(format!("{failure}; response: {body}"))
            });
        }
    }
    if reply.status == DROP_CONNECTION {
        return dropped_connection();
    }
    reply.into_response()
}

/// The status a [`Fault`](super::record::Fault) uses to mean "drop the connection".
pub(crate) const DROP_CONNECTION: u16 = 0;

/// A response whose body fails at once: hyper aborts the connection, so the client sees it
/// drop before a complete answer arrives.
fn dropped_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection dropped by the fake",
        ))
    });
    Response::new(Body::from_stream(failing))
}

/// Decides the answer and records the request, under the state lock so
/// that the request and its effects become visible together.
fn respond(
    shared: &Shared,
    state: &mut State,
    mut record: RecordedRequest,
    api_path: Option<&str>,
    invalid: Option<openapi::ValidationFailure>,
    body_unreadable: bool,
) -> Reply {
    if let Some(failure) = &invalid {
        let body = record
            .body
            .as_ref()
            .map_or_else(String::new, Value::to_string);
        state
            .validation_errors
            .push(format!("{failure}; body: {body}"));
    }
    let fault = state
        .faults
        .iter_mut()
        .find(|f| f.remaining > 0 && f.matcher.matches(&record))
        .map(|fault| {
            fault.remaining -= 1;
            Reply {
                status: fault.status,
                body: Some(fault.body.clone()),
                headers: fault.effective_headers(),
                unhandled: false,
            }
        });
    state.faults.retain(|f| f.remaining > 0);
    let reply = match (api_path, fault, invalid) {
        (None, _, _) => Reply::unhandled(),
        (_, Some(fault), _) => fault,
        (_, None, Some(failure)) => Reply::json(400, failure.discord_body()),
        (Some(_), None, None) if body_unreadable => {
            Reply::error(400, 50109, "The request body contains invalid JSON.")
        }
        (Some(path), None, None) => routes::route(shared, state, &record, path),
    };
    record.status = reply.status;
    if reply.unhandled {
        state.unhandled.push(record.clone());
    }
    state.requests.push(record);
    reply
}

fn interesting_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    HEADERS_OF_INTEREST
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// What a request carries: its JSON (the body itself, or for multipart
/// requests the `payload_json` part; `Ok(None)` when there is none, `Err` when
/// it does not parse), the files it uploads, and what Discord would refuse
/// about a multipart body's form.
fn parse_body(
    content_type: &str,
    bytes: &[u8],
) -> (Result<Option<Value>, ()>, Vec<UploadedFile>, Vec<String>) {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return (Ok(None), Vec::new(), Vec::new());
    }
    if content_type.starts_with("multipart/form-data") {
        let parts = multipart::parse(content_type, bytes);
        let json = match &parts.payload_json {
            Some(json) => serde_json::from_slice(json).map(Some).map_err(|_| ()),
            None => Ok(None),
        };
        let mut problems = parts.problems;
        if let Ok(Some(json)) = &json {
            problems.extend(multipart::attachment_problems(json, &parts.files));
        }
        return (json, parts.files, problems);
    }
    (
        serde_json::from_slice(bytes).map(Some).map_err(|_| ()),
        Vec::new(),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_json_is_taken_from_multipart_bodies() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{\"content\":\"hi\"}\r\n--XyZ--\r\n";
        let (json, files, problems) = parse_body("multipart/form-data; boundary=XyZ", body);
        assert_eq!(json, Ok(Some(json!({"content": "hi"}))));
        assert_eq!(files[0].bytes, b"hello");
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn empty_and_broken_bodies() {
        assert_eq!(parse_body("application/json", b"").0, Ok(None));
        assert_eq!(parse_body("application/json", b"{nope").0, Err(()));
    }
}
