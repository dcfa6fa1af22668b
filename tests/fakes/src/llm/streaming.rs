//! The fake's streamed answers (`"stream": true`): server-sent events in OpenAI's
//! `chat.completion.chunk` shape, paced as a test asks, optionally broken off midway.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Shared;

/// How streamed answers are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Characters per event (at least one).
    pub chars_per_event: usize,
    /// The pause before each event after the first.
    pub interval: Duration,
    /// The pause before the first event (the model "thinking").
    pub first_token_after: Duration,
}

impl Default for Pacing {
    /// The whole answer in one event, at once.
    fn default() -> Self {
        Self {
            chars_per_event: usize::MAX,
            interval: Duration::ZERO,
            first_token_after: Duration::ZERO,
        }
    }
}

/// One streamed answer.
pub(super) struct StreamPlan {
    pub request_index: usize,
    pub id: u64,
    pub model: String,
    pub text: String,
    pub pacing: Pacing,
    /// Drop the connection after this many characters, without finishing.
    pub break_after: Option<usize>,
}

/// The SSE response for `plan`.
pub(super) fn response(shared: Arc<Shared>, plan: StreamPlan) -> Response {
    let pieces = pieces(&plan.text, plan.pacing.chars_per_event, plan.break_after);
    let broken = plan
        .break_after
        .is_some_and(|n| n < plan.text.chars().count());
    let state = State {
        shared,
        plan,
        pieces: pieces.into_iter(),
        sent_any: false,
        finished: false,
        broken,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        let event = state.next_event().await?;
        Some((event, state))
    });
    (
        [
            (CONTENT_TYPE, "text/event-stream"),
            (CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

struct State {
    shared: Arc<Shared>,
    plan: StreamPlan,
    pieces: std::vec::IntoIter<String>,
    sent_any: bool,
    finished: bool,
    broken: bool,
}

impl State {
    async fn next_event(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.finished {
            return None;
        }
        let pause = if self.sent_any {
            self.plan.pacing.interval
        } else {
            self.plan.pacing.first_token_after
        };
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let Some(piece) = self.pieces.next() else {
            self.finished = true;
            if self.broken {
                // An error in the body makes hyper abort the connection mid-answer.
                return Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "FakeLlm broke the stream off as told",
                )));
            }
            let last = self.chunk(json!({}), Some("stop"));
            return Some(Ok(Bytes::from(format!("{last}data: [DONE]\n\n"))));
        };
        if !self.sent_any {
            self.sent_any = true;
            self.shared
                .first_tokens()
                .push((self.plan.request_index, Instant::now()));
        }
        Some(Ok(Bytes::from(self.chunk(
            json!({"role": "assistant", "content": piece}),
            None,
        ))))
    }

    fn chunk(&self, delta: serde_json::Value, finish_reason: Option<&str>) -> String {
        let chunk = json!({
            "id": format!("chatcmpl-fake-{}", self.plan.id),
            "object": "chat.completion.chunk",
            "created": super::unix_now(),
            "model": self.plan.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason }],
        });
        format!("data: {chunk}\n\n")
    }
}

/// `text` in pieces of `size` characters, up to `limit` characters in all.
fn pieces(text: &str, size: usize, limit: Option<usize>) -> Vec<String> {
    let size = size.max(1);
    let chars: Vec<char> = text.chars().take(limit.unwrap_or(usize::MAX)).collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text_up_to_the_break() {
        assert_eq!(pieces("abcdefg", 3, None), ["abc", "def", "g"]);
        assert_eq!(pieces("abcdefg", 3, Some(4)), ["abc", "d"]);
        assert_eq!(pieces("héllo", usize::MAX, None), ["héllo"]);
    }
}
