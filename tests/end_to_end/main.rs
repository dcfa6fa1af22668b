//! Tests over the network against the fake Discord and fake LLM (`personae-fakes`): the real
//! `personae` binary as users and hosts meet it (slash commands, conversations, faults,
//! authorization, the admin command line), and the LLM client.
//!
//! One binary for all of them, so they link once.

mod authorization;
mod cli;
mod commands;
mod context;
mod conversations;
mod faults;
mod llm_client;
mod operations;
mod reconnect;
mod servers;
mod start_up;
mod transfer_cli;
mod transfer_discord;
