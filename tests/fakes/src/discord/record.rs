//! What the fake remembers about each REST request, and how tests pick
//! requests out (for waiting and for fault injection).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

/// The prefix every REST path carries; [`RecordedRequest::api_path`] strips it.
pub const API_PREFIX: &str = "/api/v10";

/// The request headers the fake keeps (lower-case names).
pub(crate) const HEADERS_OF_INTEREST: [&str; 4] = [
    "authorization",
    "content-type",
    "user-agent",
    "x-audit-log-reason",
];

/// One REST request as the fake received it, with the status it answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Upper-case HTTP method, e.g. `POST`.
    pub method: String,
    /// The full request path, e.g. `/api/v10/channels/6001/messages`.
    pub path: String,
    /// The raw query string without `?`, if any, e.g. `wait=true`.
    pub query: Option<String>,
    /// Headers of interest (`authorization`, `content-type`, `user-agent`,
    /// `x-audit-log-reason`), by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; for multipart requests, the `payload_json` part.
    /// `None` when there was no JSON body.
    pub body: Option<Value>,
    /// The files a multipart request uploaded.
    pub files: Vec<super::UploadedFile>,
    /// The status the fake answered with.
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

impl RecordedRequest {
    /// The path without the `/api/v10` prefix, e.g. `/channels/6001/messages`.
    pub fn api_path(&self) -> &str {
        self.path.strip_prefix(API_PREFIX).unwrap_or(&self.path)
    }

    /// The decoded value of one query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// One kept header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The `Authorization` header, e.g. `Bot abc.def`.
    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// Whether the method matches (case-insensitively) and the path starts
    /// with `prefix`. A prefix without `/api/` is compared with
    /// [`api_path`](Self::api_path), e.g. `is("POST", "/webhooks/")`.
    pub fn is(&self, method: &str, prefix: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && self.path_starts_with(prefix)
    }

    fn path_starts_with(&self, prefix: &str) -> bool {
        if prefix.starts_with("/api/") {
            self.path.starts_with(prefix)
        } else {
            self.api_path().starts_with(prefix)
        }
    }
}

type Predicate = dyn Fn(&RecordedRequest) -> bool + Send + Sync;

/// Which requests a fault applies to.
#[derive(Clone)]
pub struct RequestMatcher {
    method: Option<String>,
    prefix: Option<String>,
    predicate: Option<Arc<Predicate>>,
}

impl RequestMatcher {
    /// Requests with this method whose path starts with `prefix`; the prefix
    /// may omit `/api/v10` (see [`RecordedRequest::is`]).
    pub fn route(method: &str, prefix: &str) -> Self {
        Self {
            method: Some(method.to_owned()),
            prefix: Some(prefix.to_owned()),
            predicate: None,
        }
    }

    /// Requests of any method whose path starts with `prefix`.
    pub fn path(prefix: &str) -> Self {
        Self {
            method: None,
            prefix: Some(prefix.to_owned()),
            predicate: None,
        }
    }

    /// Requests for which `predicate` holds. The request's `status` is not
    /// known yet when faults are matched and reads 0.
    pub fn custom(predicate: impl Fn(&RecordedRequest) -> bool + Send + Sync + 'static) -> Self {
        Self {
            method: None,
            prefix: None,
            predicate: Some(Arc::new(predicate)),
        }
    }

    /// Whether a request matches.
    pub fn matches(&self, request: &RecordedRequest) -> bool {
        let method_ok = self
            .method
            .as_deref()
            .is_none_or(|m| request.method.eq_ignore_ascii_case(m));
        let prefix_ok = self
            .prefix
            .as_deref()
            .is_none_or(|p| request.path_starts_with(p));
        let predicate_ok = self.predicate.as_ref().is_none_or(|p| p(request));
        method_ok && prefix_ok && predicate_ok
    }
}

impl fmt::Debug for RequestMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestMatcher")
            .field("method", &self.method)
            .field("prefix", &self.prefix)
            .field("custom", &self.predicate.is_some())
            .finish()
    }
}

/// `("POST", "/webhooks/")` is shorthand for [`RequestMatcher::route`].
impl From<(&str, &str)> for RequestMatcher {
    fn from((method, prefix): (&str, &str)) -> Self {
        Self::route(method, prefix)
    }
}

/// An injected failure: the next `remaining` matching requests get this answer.
#[derive(Debug)]
pub(crate) struct Fault {
    pub matcher: RequestMatcher,
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
    pub remaining: usize,
}

impl Fault {
    /// The headers Discord sends with a 429, derived from the body's
    /// `retry_after` (seconds) and `global`, unless the test set them.
    pub(crate) fn effective_headers(&self) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        let has = |headers: &[(String, String)], name: &str| {
            headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        if self.status == 429 {
            let retry_after = self
                .body
                .get("retry_after")
                .and_then(Value::as_f64)
                .unwrap_or(1.0);
            let global = self
                .body
                .get("global")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let defaults = [
                ("retry-after", format!("{}", retry_after.ceil().max(0.0))),
                ("x-ratelimit-global", global.to_string()),
                (
                    "x-ratelimit-scope",
                    if global { "global" } else { "user" }.to_owned(),
                ),
                ("x-ratelimit-limit", "1".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
            ];
            for (name, value) in defaults {
                if !has(&headers, name) {
                    headers.push((name.to_owned(), value));
                }
            }
        }
        headers
    }
}
