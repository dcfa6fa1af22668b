//! Tests over the network against the fake Discord and fake LLM (`personae-fakes`): the real
//! `personae` binary as users and hosts meet it (slash commands, conversations, faults,
//! authorization, the admin command line), and the LLM client.
//!
//! One binary for all of them, so they link once.

mod attachments;
mod authorization;
mod cli;
mod commands;
mod context;
mod conversations;
mod faults;
mod history;
mod host;
mod llm_client;
mod message_actions;
mod operations;
mod reasoning;
mod reconnect;
mod restore;
mod sampling;
mod servers;
mod settings;
mod several;
mod start_up;
mod streaming;
mod transfer_cli;
mod transfer_discord;
