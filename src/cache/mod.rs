//! In-memory read models the message path uses, kept fresh by event handlers.

mod profiles;
mod settings;

pub(crate) use profiles::KeyEntry;
pub use profiles::{ProfileCache, ProfileInfo};
pub use settings::SettingsCache;
