//! `personae server show|set`: a server's settings, as its managers see and change them.

use serde::Serialize;

use super::personality::print_json;
use super::{CliError, ServerCommand};
use crate::app::App;
use crate::application::{Actor, RequestContext};
use crate::domain::{
    ChannelId, ChannelMode, MemberLimit, ServerId, ServerSettings, SettingChange, Settings,
};

pub(super) async fn execute(app: &App, command: ServerCommand) -> Result<(), CliError> {
    let host = RequestContext::new(Actor::CommandLine);
    match command {
        ServerCommand::Show { server, json } => {
            let stored = app.service.server_settings(&host, parse(&server)?).await?;
            if json {
                print_json(&SettingsView::from(&stored))?;
            } else {
                print_settings(&stored);
            }
        }
        ServerCommand::Set {
            server,
            channels,
            list_channels,
            unlist_channels,
            globals,
            member_limit,
            members_may_create,
        } => {
            let mut changes = Vec::new();
            if let Some(mode) = channels {
                changes.push(SettingChange::Channels(user_error(
                    mode.parse::<ChannelMode>(),
                )?));
            }
            for channel in list_channels {
                changes.push(SettingChange::ListChannel(parse(&channel)?));
            }
            for channel in unlist_channels {
                changes.push(SettingChange::UnlistChannel(parse(&channel)?));
            }
            if let Some(on) = globals {
                changes.push(SettingChange::Globals(on));
            }
            if let Some(limit) = member_limit {
                changes.push(SettingChange::MemberLimit(user_error(MemberLimit::new(
                    limit,
                ))?));
            }
            if let Some(may) = members_may_create {
                changes.push(SettingChange::MembersMayCreate(may));
            }
            if changes.is_empty() {
                return Err(CliError::User(
                    "Nothing to change: give --channels, --list-channel, --unlist-channel, \
                     --globals, --member-limit or --members-may-create."
                        .into(),
                ));
            }
            let stored = app
                .service
                .change_settings(&host, parse(&server)?, changes)
                .await?;
            println!(
                "Saved the settings of server {} (version {}).",
                stored.server, stored.version
            );
            print_settings(&stored);
        }
    }
    Ok(())
}

fn parse<T: std::str::FromStr<Err = crate::domain::DomainError>>(
    text: &str,
) -> Result<T, CliError> {
    user_error(text.parse())
}

fn user_error<T>(parsed: Result<T, crate::domain::DomainError>) -> Result<T, CliError> {
    parsed.map_err(|e| CliError::User(e.to_string()))
}

fn print_settings(stored: &ServerSettings) {
    let s = &stored.settings;
    let listed = |channels: &std::collections::BTreeSet<ChannelId>| {
        if channels.is_empty() {
            "(none)".to_owned()
        } else {
            channels
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    println!("server:             {}", stored.server);
    println!("channels:           {}", s.channels);
    println!("listed channels:    {}", listed(&s.listed_channels));
    println!(
        "globals:            {}",
        if s.globals { "on" } else { "off" }
    );
    println!("member limit:       {}", s.member_limit);
    println!(
        "members may create: {}",
        if s.members_may_create { "yes" } else { "no" }
    );
    match stored.updated_at {
        Some(at) => println!("version:            {} (changed {at})", stored.version),
        None => println!("version:            0 (the defaults, never changed)"),
    }
}

/// A server's settings as `server show --json` prints them.
#[derive(Serialize)]
struct SettingsView<'a> {
    server: ServerId,
    version: i64,
    #[serde(flatten)]
    settings: &'a Settings,
}

impl<'a> From<&'a ServerSettings> for SettingsView<'a> {
    fn from(stored: &'a ServerSettings) -> Self {
        Self {
            server: stored.server,
            version: stored.version,
            settings: &stored.settings,
        }
    }
}
