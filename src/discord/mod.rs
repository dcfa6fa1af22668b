//! The Discord layer: poise commands, the message path, webhooks. Thin: parse input, call
//! the service, format the reply.

mod answer_messages;
mod attached;
pub mod attachments;
mod bot;
mod buckets;
mod channels;
mod commands;
mod costs;
mod data;
mod error;
mod idle_map;
mod inflight;
mod limiter;
mod messages;
mod reply;
mod split;
mod streaming;
mod webhooks;

pub use attachments::{AttachmentError, AttachmentHosts};
pub use bot::{serve, shutdown_signal};
pub use data::{Context, Data, Error};
pub use error::{BotError, DiscordError};
pub use idle_map::IdleMap;
pub use limiter::CallLimiter;
pub use split::split_message;
