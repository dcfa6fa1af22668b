//! A streamed chat completion (`stream: true`): server-sent events, each `data:` line a
//! JSON chunk with the next piece of the answer, until `data: [DONE]`.

use serde::Deserialize;

use super::LlmError;

/// The pieces of the answer as the model writes them.
pub struct DeltaStream {
    response: reqwest::Response,
    decoder: SseDecoder,
    /// Set once the server said the answer is complete.
    finished: bool,
    /// Turns a transport error into an [`LlmError`] (time-out, connection).
    transport_error: Box<dyn Fn(reqwest::Error) -> LlmError + Send + Sync>,
}

impl DeltaStream {
    pub(super) fn new(
        response: reqwest::Response,
        transport_error: Box<dyn Fn(reqwest::Error) -> LlmError + Send + Sync>,
    ) -> Self {
        Self {
            response,
            decoder: SseDecoder::default(),
            finished: false,
            transport_error,
        }
    }

    /// The next piece of text; `None` once the answer is complete. A stream that stops
    /// before the server said it is complete ends with [`LlmError::Broken`].
    pub async fn next(&mut self) -> Option<Result<String, LlmError>> {
        loop {
            if let Some(event) = self.decoder.next_event() {
                match parse_event(&event) {
                    Ok(Event::Text(text)) if text.is_empty() => continue,
                    Ok(Event::Text(text)) => return Some(Ok(text)),
                    Ok(Event::Finished(text)) => {
                        self.finished = true;
                        if text.is_empty() {
                            continue;
                        }
                        return Some(Ok(text));
                    }
                    Ok(Event::Done) => {
                        self.finished = true;
                        return None;
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.decoder.push(&bytes),
                Ok(None) if self.finished => return None,
                Ok(None) => {
                    return Some(Err(LlmError::Broken {
                        reason: "the stream ended before the answer was complete".to_owned(),
                    }))
                }
                Err(e) if self.finished => {
                    tracing::debug!(error = %e.without_url(), "the stream closed untidily after the answer");
                    return None;
                }
                Err(e) => return Some(Err((self.transport_error)(e))),
            }
        }
    }
}

/// What one event said.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// More of the answer.
    Text(String),
    /// The last of the answer (the chunk carries a `finish_reason`).
    Finished(String),
    /// `[DONE]`.
    Done,
}

fn parse_event(data: &str) -> Result<Event, LlmError> {
    if data == "[DONE]" {
        return Ok(Event::Done);
    }
    let chunk: WireChunk = serde_json::from_str(data).map_err(|e| LlmError::BadResponse {
        reason: format!("a streamed chunk is not JSON ({e})"),
    })?;
    if let Some(error) = chunk.error {
        return Err(LlmError::Broken {
            reason: format!(
                "the endpoint reported an error mid-answer: {}",
                error.message
            ),
        });
    }
    let Some(choice) = chunk.choices.into_iter().next() else {
        // Usage-only chunks carry no choice.
        return Ok(Event::Text(String::new()));
    };
    let text = choice.delta.and_then(|d| d.content).unwrap_or_default();
    Ok(if choice.finish_reason.is_some() {
        Event::Finished(text)
    } else {
        Event::Text(text)
    })
}

/// Splits a byte stream into the `data` of server-sent events.
#[derive(Default)]
struct SseDecoder {
    buffer: Vec<u8>,
    /// The data lines of the event being read.
    data: Option<String>,
    ready: std::collections::VecDeque<String>,
}

impl SseDecoder {
    fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    self.ready.push_back(data);
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                let value = value.strip_prefix(' ').unwrap_or(value);
                match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                }
            }
            // Comments (`:`), `event:`, `id:` and `retry:` lines say nothing we use.
        }
    }

    fn next_event(&mut self) -> Option<String> {
        self.ready.pop_front()
    }
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&str]) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk.as_bytes());
            while let Some(event) = decoder.next_event() {
                out.push(event);
            }
        }
        out
    }

    #[test]
    fn events_split_across_chunks_are_put_back_together() {
        assert_eq!(
            events(&["data: {\"a\"", ":1}\n\ndata: [DO", "NE]\r\n\r\n"]),
            ["{\"a\":1}", "[DONE]"]
        );
    }

    #[test]
    fn comments_and_other_fields_are_ignored() {
        assert_eq!(events(&[": keep-alive\n\nevent: x\ndata: 1\n\n"]), ["1"]);
    }

    #[test]
    fn chunks_become_text_finish_or_done() {
        let text = r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#;
        assert_eq!(parse_event(text).unwrap(), Event::Text("Hel".into()));
        let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(parse_event(last).unwrap(), Event::Finished(String::new()));
        assert_eq!(parse_event("[DONE]").unwrap(), Event::Done);
        assert!(matches!(
            parse_event(r#"{"error":{"message":"overloaded"}}"#),
            Err(LlmError::Broken { .. })
        ));
        assert!(matches!(
            parse_event("nope"),
            Err(LlmError::BadResponse { .. })
        ));
    }
}
