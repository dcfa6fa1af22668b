//! Fake servers for personae's end-to-end tests and benchmarks. They bind to 127.0.0.1 only.

pub mod discord;
pub mod llm;
