//! What can go wrong when asking the language model, in words a Discord user understands.

use std::time::Duration;

use thiserror::Error;

/// Asking the language model failed. No variant ever holds the API key.
#[derive(Debug, Error)]
pub enum LlmError {
    /// The model did not answer in time: try again, or raise the time-out for slow models.
    #[error("the AI model did not answer within {} seconds; try again in a moment", .after.as_secs())]
    Timeout {
        /// The configured time-out.
        after: Duration,
    },
    /// The endpoint could not be reached or the connection broke: check that it is running.
    #[error("could not reach the AI model endpoint at {endpoint}")]
    Connect {
        /// The endpoint, without credentials.
        endpoint: String,
        /// What the HTTP client reported, without the URL.
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint refused the request (e.g. 401 bad key, 404 unknown model, 429, 5xx).
    #[error("the AI model endpoint answered {status}: {body}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, whitespace collapsed, the key redacted.
        body: String,
    },
    /// The endpoint answered something that is not a chat completion: check the base URL.
    #[error("the AI model endpoint sent a response that could not be read: {reason}")]
    BadResponse {
        /// What was wrong with it.
        reason: String,
    },
    /// The model answered with no text.
    #[error("the AI model sent an empty reply")]
    Empty,
    /// A streamed answer stopped midway: what was shown so far stays, with a note.
    #[error("the AI model's answer broke off: {reason}")]
    Broken {
        /// Why, in a few words.
        reason: String,
    },
    /// The client could not be built from its configuration (a start-up problem).
    #[error("the AI model client could not be set up: {0}")]
    Setup(String),
}

impl LlmError {
    /// A short label for the metrics: timeout, connect, http_4xx, http_5xx, bad_response,
    /// empty or setup.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::Http { status, .. } if *status >= 500 => "http_5xx",
            Self::Http { .. } => "http_4xx",
            Self::BadResponse { .. } => "bad_response",
            Self::Empty => "empty",
            Self::Broken { .. } => "broken",
            Self::Setup(_) => "setup",
        }
    }

    /// True when trying again later may work: time-outs, connection problems, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Connect { .. } | Self::Broken { .. } => true,
            Self::Http { status, .. } => *status == 429 || *status >= 500,
            Self::BadResponse { .. } | Self::Empty | Self::Setup(_) => false,
        }
    }
}
