//! The application service: the one way anything changes a personality.

mod actor;
mod error;
mod inputs;
mod publication;
mod service;
mod verify;

pub use actor::{Actor, RequestContext};
pub use error::ServiceError;
pub use inputs::{ProfileUpdate, Registration};
pub use service::{PersonalityService, ServiceConfig};
pub use verify::{verify, VerifyReport};
