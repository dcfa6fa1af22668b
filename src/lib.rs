//! personae: a self-hosted Discord bot for AI personalities, on a durable domain-event core.
#![forbid(unsafe_code)]

pub mod app;
pub mod application;
pub mod cache;
pub mod cli;
pub mod config;
pub mod conversation;
pub mod discord;
pub mod domain;
pub mod events;
pub mod handlers;
pub mod llm;
pub mod metrics;
pub mod routing;
pub mod store;
pub mod transfer;
