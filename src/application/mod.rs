//! The application service: the one way anything changes a personality, and the
//! repository it stores personalities and events through.

mod actor;
mod conversations;
mod error;
mod history;
mod import;
mod inputs;
mod publication;
mod repository;
mod restore;
mod service;
mod settings;
mod storage_error;
mod verify;

#[cfg(test)]
mod import_tests;
#[cfg(test)]
mod memory_repository;
#[cfg(test)]
pub(crate) mod repository_contract;
#[cfg(test)]
mod restore_tests;
#[cfg(test)]
mod service_tests;

pub use actor::{Actor, RequestContext};
pub use conversations::{Activation, ChannelFacts, ConversationService};
pub use error::ServiceError;
pub use history::Revision;
pub use import::{ImportItem, ImportMode, ImportOutcome};
pub use inputs::{ProfileUpdate, Registration};
pub use repository::{
    Change, ChangedSettings, Creator, Decide, DecideRestore, DecideSettings, EventFilter, Listing,
    NewEvent, PersonalityRepository, Removed, Saved, Snapshot, VisibleIn,
};
pub use restore::Restoration;
pub use service::{PersonalityService, ServiceConfig};
pub use storage_error::{KeyHolder, StoreError};
pub use verify::VerifyReport;
