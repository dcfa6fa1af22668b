//! tokio-tungstenite 0.24 under the version serenity 0.12 asks for.

pub use upstream::*;
