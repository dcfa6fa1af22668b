//! Discord's per-webhook rate limit: executions and message edits of one webhook share a
//! bucket (5 requests per 2 seconds on Discord). Every answer carries the bucket's
//! `X-RateLimit-*` headers; past the limit the fake answers 429 with `retry_after`, as
//! Discord does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::rest::Reply;
use super::state::{Shared, State};

/// A bucket's size: `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests a window allows.
    pub requests: u32,
    /// How long a window lasts, from its first request.
    pub per: Duration,
}

impl RateLimit {
    /// Discord's bucket for one webhook's executions and edits.
    pub const WEBHOOK: Self = Self {
        requests: 5,
        per: Duration::from_secs(2),
    };
}

/// One webhook's current window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    started: Instant,
    used: u32,
}

/// Answers a request to webhook `id` with `answer`, or with 429 when its bucket is empty.
pub(crate) fn limited(
    shared: &Shared,
    state: &mut State,
    id: &str,
    answer: impl FnOnce(&mut State) -> Reply,
) -> Reply {
    let Some(limit) = shared.config.webhook_rate_limit else {
        return answer(state);
    };
    match take(&mut state.webhook_windows, limit, id, Instant::now()) {
        Ok(headers) => {
            let mut reply = answer(state);
            reply.headers.extend(headers);
            reply
        }
        Err(reply) => reply,
    }
}

fn take(
    windows: &mut HashMap<String, Window>,
    limit: RateLimit,
    id: &str,
    now: Instant,
) -> Result<Vec<(String, String)>, Reply> {
    let window = windows.entry(id.to_owned()).or_insert(Window {
        started: now,
        used: 0,
    });
    if now.duration_since(window.started) >= limit.per {
        *window = Window {
            started: now,
            used: 0,
        };
    }
    let reset_after = limit.per.saturating_sub(now.duration_since(window.started));
    let bucket = format!("webhook-{id}");
    let mut headers = vec![
        ("x-ratelimit-limit".to_owned(), limit.requests.to_string()),
        (
            "x-ratelimit-reset-after".to_owned(),
            format!("{:.3}", reset_after.as_secs_f64()),
        ),
        ("x-ratelimit-bucket".to_owned(), bucket),
    ];
    if window.used >= limit.requests {
        headers.push(("x-ratelimit-remaining".to_owned(), "0".to_owned()));
        headers.push((
            "retry-after".to_owned(),
            reset_after.as_secs().max(1).to_string(),
        ));
        headers.push(("x-ratelimit-scope".to_owned(), "shared".to_owned()));
        let mut reply = Reply::json(
            429,
            json!({
                "message": "You are being rate limited.",
                "retry_after": (reset_after.as_secs_f64() * 1000.0).ceil() / 1000.0,
                "global": false,
            }),
        );
        reply.headers = headers;
        return Err(reply);
    }
    window.used += 1;
    headers.push((
        "x-ratelimit-remaining".to_owned(),
        (limit.requests - window.used).to_string(),
    ));
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_requests_then_refuses_until_it_resets() {
        let mut windows = HashMap::new();
        let limit = RateLimit::WEBHOOK;
        let start = Instant::now();
        for _ in 0..5 {
            assert!(take(&mut windows, limit, "1", start).is_ok());
        }
        let refused = take(&mut windows, limit, "1", start + Duration::from_millis(500))
            .expect_err("the sixth request in two seconds is refused");
        assert_eq!(refused.status, 429);
        assert_eq!(refused.body.as_ref().unwrap()["retry_after"], 1.5);
        // Another webhook has its own bucket; the window resets after two seconds.
        assert!(take(&mut windows, limit, "2", start).is_ok());
        assert!(take(&mut windows, limit, "1", start + Duration::from_secs(2)).is_ok());
    }
}
