use super::views::{RestorationView, RevisionView};
use super::{CliError, PersonalityCommand, PersonalityView, Where};
use crate::app::App;
use crate::application::{Actor, Listing, ProfileUpdate, Registration, RequestContext, VisibleIn};
use crate::domain::{Personality, ServerId, UserId};

pub(super) async fn execute(app: &App, command: PersonalityCommand) -> Result<(), CliError> {
    let looked_up_globally = command.place().is_some_and(|p| p.server.is_none());
    run(app, command).await.map_err(|e| match e {
        // Without --server only global personalities are found: say how to reach a server's.
        CliError::User(text) if looked_up_globally && text.starts_with("No personality") => {
            CliError::User(format!(
                "{} Without --server SERVER_ID only global personalities are looked up.",
                super::sentence(&text)
            ))
        }
        other => other,
    })
}

async fn run(app: &App, command: PersonalityCommand) -> Result<(), CliError> {
    let service = &app.service;
    let host = RequestContext::new(Actor::CommandLine);
    let at = |place: &Where| -> Result<RequestContext, CliError> {
        Ok(host
            .clone()
            .in_server(parse_server(place.server.as_deref())?))
    };
    match command {
        PersonalityCommand::Create {
            name,
            owner,
            server,
            global,
            display_name,
            prompt,
            model,
            avatar_url,
            aliases,
        } => {
            let ctx = host.clone().in_server(parse_server(server.as_deref())?);
            let registration = Registration {
                name,
                owner_id: Some(parse_user(&owner)?),
                global,
                display_name,
                avatar_url,
                prompt,
                model,
                aliases,
                ..Registration::default()
            };
            let p = service.register(&ctx, registration).await?;
            println!("Created {} ({}, {}).", p.name(), p.id(), p.scope());
        }
        PersonalityCommand::Update {
            personality,
            place,
            display_name,
            prompt,
            model,
            avatar_url,
            nsfw,
            temperature,
            max_tokens,
        } => {
            let update = ProfileUpdate {
                display_name,
                avatar_url,
                prompt,
                model,
                nsfw,
                temperature,
                max_tokens,
            };
            if update.is_empty() {
                return Err(CliError::User(
                    "Nothing to update: give --display-name, --prompt, --model, --avatar-url, --nsfw, --temperature or --max-tokens."
                        .into(),
                ));
            }
            let p = service
                .update_profile(&at(&place)?, &personality, update)
                .await?;
            println!("Updated {} (version {}).", p.name(), p.version());
        }
        PersonalityCommand::Alias {
            personality,
            alias,
            place,
        } => {
            let p = service
                .add_alias(&at(&place)?, &personality, &alias)
                .await?;
            println!("{} now answers to: {}.", p.name(), aliases(&p));
        }
        PersonalityCommand::Unalias {
            personality,
            alias,
            place,
        } => {
            let p = service
                .remove_alias(&at(&place)?, &personality, &alias)
                .await?;
            println!(
                "Removed the alias; {} answers to: {}.",
                p.name(),
                aliases(&p)
            );
        }
        PersonalityCommand::Remove { personality, place } => {
            let p = service.remove(&at(&place)?, &personality).await?;
            println!("Removed {}.", p.name());
        }
        PersonalityCommand::Global { personality, place } => {
            let p = service.make_global(&at(&place)?, &personality).await?;
            println!("{} is now global: usable in every server.", p.name());
        }
        PersonalityCommand::List {
            owner,
            server,
            json,
        } => {
            let listing = Listing {
                owner: owner.as_deref().map(parse_user).transpose()?,
                visible_in: match parse_server(server.as_deref())? {
                    Some(server) => Some(VisibleIn {
                        server,
                        with_globals: service
                            .server_settings(&host, server)
                            .await?
                            .settings
                            .globals,
                    }),
                    None => None,
                },
            };
            let list = service.list(listing).await?;
            if json {
                let views: Vec<PersonalityView> = list.iter().map(PersonalityView::from).collect();
                print_json(&views)?;
            } else if list.is_empty() {
                println!("No personalities yet. Create one with: personae personality create NAME --owner USER_ID --server SERVER_ID");
            } else {
                for p in &list {
                    println!(
                        "{:<24} {:<24} {:<20} owner {:<20} aliases: {}",
                        p.name().as_str(),
                        p.profile().display_name.as_str(),
                        p.scope().to_string(),
                        p.owner_id(),
                        aliases(p)
                    );
                }
            }
        }
        PersonalityCommand::History {
            personality,
            place,
            json,
        } => {
            let (p, revisions) = service.history(&at(&place)?, &personality).await?;
            if json {
                let views: Vec<RevisionView> = revisions.iter().map(RevisionView::from).collect();
                print_json(&views)?;
            } else {
                println!("{} has {} profile revisions:", p.name(), revisions.len());
                for r in &revisions {
                    let changed: Vec<&str> = r.changed.iter().map(|f| f.as_str()).collect();
                    println!(
                        "r{:<4} {}  {:<20} {}",
                        r.number,
                        r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        r.actor,
                        if r.is_creation() {
                            "created".to_owned()
                        } else {
                            changed.join(", ")
                        }
                    );
                }
            }
        }
        PersonalityCommand::Revert {
            personality,
            revision,
            place,
        } => {
            let p = service.revert(&at(&place)?, &personality, revision).await?;
            println!(
                "{} is back to revision {revision}, saved as revision {}.",
                p.name(),
                p.version()
            );
        }
        PersonalityCommand::Restore { name, place, json } => {
            let restored = service.restore(&at(&place)?, &name).await?;
            if json {
                print_json(&RestorationView::from(&restored))?;
            } else {
                let p = &restored.personality;
                println!(
                    "Restored {} ({}, {}, version {}); it answers to: {}.",
                    p.name(),
                    p.id(),
                    p.scope(),
                    p.version(),
                    aliases(p)
                );
                if !restored.left_out.is_empty() {
                    let taken: Vec<String> =
                        restored.left_out.iter().map(|a| format!("@{a}")).collect();
                    println!(
                        "Not restored, taken by other personalities meanwhile: {}.",
                        taken.join(", ")
                    );
                }
            }
        }
        PersonalityCommand::Info {
            personality,
            place,
            json,
        } => {
            let p = service
                .get(parse_server(place.server.as_deref())?, &personality)
                .await?;
            if json {
                print_json(&PersonalityView::from(&p))?;
            } else {
                print_info(&p);
            }
        }
    }
    Ok(())
}

pub(super) fn parse_user(text: &str) -> Result<UserId, CliError> {
    text.parse::<UserId>()
        .map_err(|e| CliError::User(e.to_string()))
}

pub(super) fn parse_server(text: Option<&str>) -> Result<Option<ServerId>, CliError> {
    text.map(str::parse::<ServerId>)
        .transpose()
        .map_err(|e| CliError::User(e.to_string()))
}

fn aliases(p: &Personality) -> String {
    if p.aliases().is_empty() {
        "(no aliases)".to_owned()
    } else {
        p.aliases()
            .iter()
            .map(|a| format!("@{a}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn print_info(p: &Personality) {
    let view = PersonalityView::from(p);
    println!("name:         {}", view.name);
    println!("display name: {}", view.display_name);
    println!("id:           {}", view.id);
    println!("owner:        {}", view.owner_id);
    println!("scope:        {}", p.scope());
    println!("nsfw:         {}", if view.nsfw { "yes" } else { "no" });
    println!("aliases:      {}", aliases(p));
    println!(
        "model:        {}",
        view.model.as_deref().unwrap_or("(default)")
    );
    println!(
        "avatar:       {}",
        view.avatar_url.as_deref().unwrap_or("(none)")
    );
    println!(
        "temperature:  {}",
        view.temperature
            .map_or_else(|| "(the model's)".to_owned(), |t| t.to_string())
    );
    println!(
        "max tokens:   {}",
        view.max_tokens
            .map_or_else(|| "(LLM_MAX_TOKENS)".to_owned(), |n| n.to_string())
    );
    println!("version:      {}", view.version);
    println!("created:      {}", view.created_at);
    println!("updated:      {}", view.updated_at);
    println!(
        "prompt:\n{}",
        if view.prompt.is_empty() {
            "(none)"
        } else {
            &view.prompt
        }
    );
}

pub(super) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(anyhow::Error::from)?;
    println!("{text}");
    Ok(())
}
