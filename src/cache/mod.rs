//! In-memory read models the message path uses, kept fresh by event handlers.

mod huge_pages;
mod key_table;
mod profiles;

pub use profiles::{ProfileCache, ProfileInfo};
