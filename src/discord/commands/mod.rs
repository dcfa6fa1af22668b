//! Slash commands, one group per file. The first paragraph of each command's doc comment
//! is its description in Discord.

mod help;

use super::{Data, Error};

/// Every command the bot registers.
pub fn all() -> Vec<poise::Command<Data, Error>> {
    vec![help::help()]
}
