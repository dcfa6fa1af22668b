//! From a Discord message to the personality it addresses.

pub mod mention;
mod router;

pub use router::{conversation_ttl, further_mentions, route, Incoming, Reachable, Route, Trigger};
