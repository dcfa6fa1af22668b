use thiserror::Error;

use crate::application::ServiceError;
use crate::application::StoreError;

/// How a command-line command failed; decides the exit code.
#[derive(Debug, Error)]
pub enum CliError {
    /// The user's mistake: one clear line, nothing changed, exit code 1.
    #[error("{}", sentence(.0))]
    User(String),
    /// Anything else: exit code 2.
    #[error("{0:#}")]
    Other(#[from] anyhow::Error),
}

impl CliError {
    /// 1 for the user's mistakes, 2 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::User(_) => 1,
            CliError::Other(_) => 2,
        }
    }
}

/// A message as a sentence: a capital first letter (unless it starts with the name of the
/// field or variable it is about, `alias: …`, `LOG_FORMAT: …`) and a full stop.
pub fn sentence(text: &str) -> String {
    let text = text.trim();
    let names_a_field = text.split_once(": ").is_some_and(|(head, _)| {
        !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    });
    let mut out = String::with_capacity(text.len() + 1);
    let mut chars = text.chars();
    if let Some(first) = chars.next() {
        if names_a_field {
            out.push(first);
        } else {
            out.extend(first.to_uppercase());
        }
        out.push_str(chars.as_str());
    }
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl From<ServiceError> for CliError {
    fn from(e: ServiceError) -> Self {
        if e.is_user_error() {
            CliError::User(e.to_string())
        } else {
            CliError::Other(e.into())
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Other(e.into())
    }
}
