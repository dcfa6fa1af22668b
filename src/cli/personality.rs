use super::{CliError, PersonalityCommand, PersonalityView};
use crate::app::App;
use crate::application::{Actor, ProfileUpdate, Registration, RequestContext};
use crate::domain::{Personality, UserId};

pub(super) async fn execute(app: &App, command: PersonalityCommand) -> Result<(), CliError> {
    let service = &app.service;
    let ctx = RequestContext::new(Actor::CommandLine);
    match command {
        PersonalityCommand::Create {
            name,
            owner,
            display_name,
            prompt,
            model,
            avatar_url,
            aliases,
        } => {
            let registration = Registration {
                name,
                owner_id: Some(parse_user(&owner)?),
                display_name,
                avatar_url,
                prompt,
                model,
                aliases,
            };
            let p = service.register(&ctx, registration).await?;
            println!("Created {} ({}).", p.name(), p.id());
        }
        PersonalityCommand::Update {
            personality,
            display_name,
            prompt,
            model,
            avatar_url,
        } => {
            let update = ProfileUpdate {
                display_name,
                avatar_url,
                prompt,
                model,
            };
            if update.is_empty() {
                return Err(CliError::User(
                    "Nothing to update: give --display-name, --prompt, --model or --avatar-url."
                        .into(),
                ));
            }
            let p = service.update_profile(&ctx, &personality, update).await?;
            println!("Updated {} (version {}).", p.name(), p.version());
        }
        PersonalityCommand::Alias { personality, alias } => {
            let p = service.add_alias(&ctx, &personality, &alias).await?;
            println!("{} now answers to: {}.", p.name(), aliases(&p));
        }
        PersonalityCommand::Unalias { personality, alias } => {
            let p = service.remove_alias(&ctx, &personality, &alias).await?;
            println!(
                "Removed the alias; {} answers to: {}.",
                p.name(),
                aliases(&p)
            );
        }
        PersonalityCommand::Remove { personality } => {
            let p = service.remove(&ctx, &personality).await?;
            println!("Removed {}.", p.name());
        }
        PersonalityCommand::List { owner, json } => {
            let owner = owner.as_deref().map(parse_user).transpose()?;
            let list = service.list(owner).await?;
            if json {
                let views: Vec<PersonalityView> = list.iter().map(PersonalityView::from).collect();
                print_json(&views)?;
            } else if list.is_empty() {
                println!("No personalities yet. Create one with: personae personality create NAME --owner USER_ID");
            } else {
                for p in &list {
                    println!(
                        "{:<24} {:<24} owner {:<20} aliases: {}",
                        p.name().as_str(),
                        p.profile().display_name.as_str(),
                        p.owner_id(),
                        aliases(p)
                    );
                }
            }
        }
        PersonalityCommand::Info { personality, json } => {
            let p = service.get(&personality).await?;
            if json {
                print_json(&PersonalityView::from(&p))?;
            } else {
                print_info(&p);
            }
        }
    }
    Ok(())
}

fn parse_user(text: &str) -> Result<UserId, CliError> {
    text.parse::<UserId>()
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
    println!("aliases:      {}", aliases(p));
    println!(
        "model:        {}",
        view.model.as_deref().unwrap_or("(default)")
    );
    println!(
        "avatar:       {}",
        view.avatar_url.as_deref().unwrap_or("(none)")
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
