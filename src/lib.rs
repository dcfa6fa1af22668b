//! personae: a self-hosted Discord bot for AI personalities, on a durable domain-event core.
#![forbid(unsafe_code)]

pub mod domain;
pub mod events;
pub mod store;
pub mod conversation;
pub mod application;
pub mod cache;
pub mod config;
pub mod llm;
pub mod routing;
pub mod app;
pub mod cli;
pub mod handlers;
pub mod discord;
