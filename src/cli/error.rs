use thiserror::Error;

use crate::application::ServiceError;
use crate::application::StoreError;

/// How a command-line command failed; decides the exit code.
#[derive(Debug, Error)]
pub enum CliError {
    /// The user's mistake: one clear line, nothing changed, exit code 1.
    #[error("{0}")]
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
