//! What the personality commands say: confirmations and embeds, without Discord I/O so that
//! they can be tested beside the code.

use poise::serenity_prelude as serenity;

use crate::application::ProfileUpdate;
use crate::discord::reply::escape_markdown;
use crate::domain::Personality;

/// How much of the prompt `/personality info` shows.
pub const PROMPT_PREVIEW_CHARS: usize = 300;
/// Discord's limit for an embed field's value.
const FIELD_VALUE_CHARS: usize = 1024;
/// The most one line of `/personality list` takes.
const LIST_LINE_CHARS: usize = 300;
/// The colour of personae's embeds.
const COLOUR: u32 = 0x7B_61FF;

/// `**Aria**`, escaped.
fn bold(text: &str) -> String {
    format!("**{}**", escape_markdown(text))
}

/// How to talk to a personality: `@aria` (or `@aria` / `@bard` with aliases).
fn mentions(p: &Personality) -> String {
    let mut names = vec![format!("@{}", p.name().key())];
    names.extend(p.aliases().iter().map(|a| format!("@{a}")));
    escape_markdown(&names.join(" or "))
}

/// `/personality create` succeeded.
pub fn created(p: &Personality) -> String {
    format!(
        "Created {} — talk to it with {}.",
        bold(p.name().as_str()),
        mentions(p)
    )
}

/// `/personality update` succeeded: what the given fields are now.
pub fn updated(p: &Personality, update: &ProfileUpdate) -> String {
    let mut changes = Vec::new();
    if update.display_name.is_some() {
        changes.push(format!(
            "display name {}",
            bold(p.profile().display_name.as_str())
        ));
    }
    if update.prompt.is_some() {
        changes.push(prompt_size(p));
    }
    if update.model.is_some() {
        changes.push(match &p.profile().model {
            Some(model) => format!("model `{model}`"),
            None => "model back to the default".to_owned(),
        });
    }
    if update.avatar_url.is_some() {
        changes.push(match &p.profile().avatar_url {
            Some(_) => "new avatar".to_owned(),
            None => "avatar removed".to_owned(),
        });
    }
    if update.nsfw.is_some() {
        changes.push(if p.profile().nsfw {
            "NSFW: answers only in age-restricted channels".to_owned()
        } else {
            "not NSFW".to_owned()
        });
    }
    if update.temperature.is_some() {
        changes.push(match p.profile().temperature {
            Some(t) => format!("temperature {t}"),
            None => "temperature back to the model's".to_owned(),
        });
    }
    if update.max_tokens.is_some() {
        changes.push(match p.profile().max_tokens {
            Some(n) => format!("answers of at most {n} tokens"),
            None => "answer length back to the bot's limit".to_owned(),
        });
    }
    format!(
        "Updated {}: {}.",
        bold(p.name().as_str()),
        changes.join(", ")
    )
}

/// `/personality global` succeeded.
pub fn made_global(p: &Personality) -> String {
    format!(
        "{} is now global: every server that allows global personalities can talk to it.",
        bold(p.name().as_str())
    )
}

/// `/personality prompt` succeeded.
pub fn prompt_updated(p: &Personality) -> String {
    format!("Updated {}: {}.", bold(p.name().as_str()), prompt_size(p))
}

fn prompt_size(p: &Personality) -> String {
    match p.profile().prompt.as_str().chars().count() {
        0 => "prompt cleared".to_owned(),
        n => format!("prompt of {n} characters"),
    }
}

/// `/personality alias` succeeded.
pub fn alias_added(p: &Personality, alias: &str) -> String {
    format!(
        "{} now also answers to @{}.",
        bold(p.name().as_str()),
        normalized_alias(alias)
    )
}

/// `/personality unalias` succeeded.
pub fn alias_removed(p: &Personality, alias: &str) -> String {
    format!(
        "{} no longer answers to @{}.",
        bold(p.name().as_str()),
        normalized_alias(alias)
    )
}

/// The alias as stored (the service accepted it, so it parses), escaped.
fn normalized_alias(alias: &str) -> String {
    let alias =
        crate::domain::Alias::parse(alias).map_or_else(|_| alias.trim().to_owned(), String::from);
    escape_markdown(&alias)
}

/// The question `/personality remove` asks before removing.
pub fn remove_question(p: &Personality) -> String {
    format!(
        "Remove {}? Its name and aliases become free, and it stops answering everywhere. /personality restore brings it back within 30 days.",
        bold(p.name().as_str())
    )
}

/// `/personality remove` was confirmed and done.
pub fn removed(p: &Personality) -> String {
    format!(
        "Removed {}. /personality restore brings it back within 30 days.",
        bold(p.name().as_str())
    )
}

/// `/personality remove` was cancelled.
pub fn remove_cancelled(p: &Personality) -> String {
    format!("Cancelled: {} was not removed.", bold(p.name().as_str()))
}

/// Nobody answered the question of `/personality remove` in time.
pub fn remove_timed_out(p: &Personality) -> String {
    format!(
        "No answer in time: {} was not removed. Run /personality remove again to remove it.",
        bold(p.name().as_str())
    )
}

/// The start of a prompt, at most `max_chars` characters and an ellipsis.
pub fn preview(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars).collect();
    out.push('…');
    out
}

/// `/personality info`: for those who manage it (`full`), everything but the whole prompt;
/// for everyone else, only what its messages show anyway: names, avatar and aliases.
pub fn info_embed(p: &Personality, full: bool) -> serenity::CreateEmbed {
    let prompt = p.profile().prompt.as_str();
    let description = if !full {
        "*Its prompt, owner and model are shown to those who manage it.*".to_owned()
    } else if p.profile().prompt.is_empty() {
        "*No prompt yet: set one with /personality prompt.*".to_owned()
    } else {
        preview(prompt, PROMPT_PREVIEW_CHARS)
    };
    let aliases = if p.aliases().is_empty() {
        "none".to_owned()
    } else {
        p.aliases()
            .iter()
            .map(|a| format!("@{a}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let model = p
        .profile()
        .model
        .as_ref()
        .map_or_else(|| "default".to_owned(), |m| format!("`{m}`"));
    let mut embed = serenity::CreateEmbed::new()
        .title(p.profile().display_name.as_str())
        .description(description)
        .colour(COLOUR)
        .field("Name", escape_markdown(p.name().as_str()), true)
        .field(
            "Aliases",
            preview(&escape_markdown(&aliases), FIELD_VALUE_CHARS - 1),
            true,
        )
        .field("Where", where_usable(p), true);
    if full {
        embed = embed
            .field("Owner", format!("<@{}>", p.owner_id()), true)
            .field("Model", model, true)
            .field("Sampling", sampling(p), true)
            .footer(serenity::CreateEmbedFooter::new(format!(
                "Prompt: {} characters",
                prompt.chars().count()
            )));
    }
    if let Some(avatar) = &p.profile().avatar_url {
        embed = embed.thumbnail(avatar.as_str());
    }
    embed
}

/// Its temperature and longest answer, or the defaults.
fn sampling(p: &Personality) -> String {
    let temperature = p
        .profile()
        .temperature
        .map_or_else(|| "model's".to_owned(), |t| t.to_string());
    let max_tokens = p
        .profile()
        .max_tokens
        .map_or_else(|| "bot's limit".to_owned(), |n| n.to_string());
    format!("temperature {temperature}, max tokens {max_tokens}")
}

/// "Every server" for a global personality, "This server" for the server's own.
fn where_usable(p: &Personality) -> &'static str {
    if p.scope().is_global() {
        "Every server"
    } else {
        "This server"
    }
}

/// One line of `/personality list`; the owner only where `shows_owner`.
fn list_line(p: &Personality, shows_owner: bool) -> String {
    let mut line = bold(p.name().as_str());
    if p.profile().display_name.as_str() != p.name().as_str() {
        line.push_str(" · ");
        line.push_str(&escape_markdown(p.profile().display_name.as_str()));
    }
    if !p.aliases().is_empty() {
        let aliases: Vec<String> = p.aliases().iter().map(|a| format!("@{a}")).collect();
        line.push_str(" — ");
        line.push_str(&escape_markdown(&aliases.join(", ")));
    }
    let mut tail = String::new();
    if p.scope().is_global() {
        tail.push_str(" · global");
    }
    if shows_owner {
        tail.push_str(" — <@");
        tail.push_str(&p.owner_id().to_string());
        tail.push('>');
    }
    // The tail always shows: cut the aliases, never the owner.
    let room = LIST_LINE_CHARS.saturating_sub(tail.chars().count());
    let mut line = preview(&line, room);
    line.push_str(&tail);
    line
}

/// How many pages `count` personalities fill.
pub fn page_count(count: usize, per_page: usize) -> usize {
    count.div_ceil(per_page).max(1)
}

/// Page `page` (from 0) of `/personality list`.
pub fn list_embed(
    personalities: &[Personality],
    page: usize,
    per_page: usize,
    mine: bool,
    shows_owner: impl Fn(&Personality) -> bool,
) -> serenity::CreateEmbed {
    let pages = page_count(personalities.len(), per_page);
    let page = page.min(pages - 1);
    let lines: Vec<String> = personalities
        .iter()
        .skip(page * per_page)
        .take(per_page)
        .map(|p| list_line(p, shows_owner(p)))
        .collect();
    let title = if mine {
        "Your personalities"
    } else {
        "Personalities"
    };
    let count = personalities.len();
    let noun = if count == 1 {
        "personality"
    } else {
        "personalities"
    };
    serenity::CreateEmbed::new()
        .title(title)
        .description(lines.join("\n"))
        .colour(COLOUR)
        .footer(serenity::CreateEmbedFooter::new(format!(
            "Page {} of {pages} · {count} {noun}",
            page + 1
        )))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::Value;

    use super::*;
    use crate::domain::{
        Alias, AvatarUrl, DisplayName, ModelName, NewPersonality, PersonalityId, PersonalityName,
        Profile, ProfileChanges, Prompt, Scope, ServerId, UserId,
    };

    fn personality(name: &str, display: &str, prompt: &str, aliases: &[&str]) -> Personality {
        let new = NewPersonality {
            card_extensions: None,
            name: PersonalityName::parse(name).unwrap(),
            owner_id: UserId::new(7001).unwrap(),
            scope: Scope::Server(ServerId::new(8001).unwrap()),
            profile: Profile {
                display_name: DisplayName::parse(display).unwrap(),
                avatar_url: None,
                prompt: Prompt::parse(prompt).unwrap(),
                model: None,
                nsfw: false,
                temperature: None,
                max_tokens: None,
            },
            aliases: aliases.iter().map(|a| Alias::parse(a).unwrap()).collect(),
        };
        Personality::register(PersonalityId::new(), new, Utc::now()).unwrap()
    }

    fn json(embed: serenity::CreateEmbed) -> Value {
        serde_json::to_value(embed).unwrap()
    }

    #[test]
    fn a_creation_says_how_to_talk_to_it() {
        let p = personality("Aria", "Aria", "", &["bard"]);
        assert_eq!(
            created(&p),
            "Created **Aria** — talk to it with @aria or @bard."
        );
        let p = personality("my_bot", "x", "", &[]);
        assert_eq!(
            created(&p),
            "Created **my\\_bot** — talk to it with @my\\_bot."
        );
    }

    #[test]
    fn an_update_names_each_given_field() {
        let mut p = personality("Aria", "Aria the Bard", "You sing.", &[]);
        let model = ProfileChanges {
            model: Some(Some(ModelName::parse("gpt-4o").unwrap())),
            ..Default::default()
        };
        p.update_profile(model, chrono::Utc::now()).unwrap();
        let update = ProfileUpdate {
            display_name: Some("Aria the Bard".into()),
            model: Some("gpt-4o".into()),
            avatar_url: Some(String::new()),
            prompt: Some("You sing.".into()),
            ..ProfileUpdate::default()
        };
        assert_eq!(
            updated(&p, &update),
            "Updated **Aria**: display name **Aria the Bard**, prompt of 9 characters, model `gpt-4o`, avatar removed."
        );
    }

    #[test]
    fn info_shows_the_start_of_the_prompt_and_every_detail() {
        let mut p = personality(
            "Aria",
            "Aria the Bard",
            &"x".repeat(500),
            &["bard", "singer"],
        );
        let avatar = ProfileChanges {
            avatar_url: Some(Some(AvatarUrl::parse("https://example.com/a.png").unwrap())),
            ..Default::default()
        };
        p.update_profile(avatar, chrono::Utc::now()).unwrap();
        let embed = json(info_embed(&p, true));
        assert_eq!(embed["title"], "Aria the Bard");
        assert_eq!(
            embed["description"].as_str().unwrap().chars().count(),
            PROMPT_PREVIEW_CHARS + 1
        );
        assert_eq!(embed["thumbnail"]["url"], "https://example.com/a.png");
        let fields = embed["fields"].as_array().unwrap();
        let field =
            |name: &str| fields.iter().find(|f| f["name"] == name).unwrap()["value"].clone();
        assert_eq!(field("Aliases"), "@bard, @singer");
        assert_eq!(field("Owner"), "<@7001>");
        assert_eq!(field("Model"), "default");
        assert_eq!(embed["footer"]["text"], "Prompt: 500 characters");
        assert_eq!(field("Where"), "This server");
    }

    #[test]
    fn info_for_those_who_do_not_manage_it_shows_no_prompt_owner_or_model() {
        let p = personality("Aria", "Aria the Bard", "Secret plans.", &["bard"]);
        let embed = json(info_embed(&p, false));
        let text = embed.to_string();
        assert!(!text.contains("Secret"), "{text}");
        assert!(!text.contains("7001"), "{text}");
        let fields = embed["fields"].as_array().unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Name", "Aliases", "Where"]);
        assert!(embed.get("footer").is_none());
    }

    #[test]
    fn info_without_a_prompt_or_avatar_says_so() {
        let p = personality("Aria", "Aria", "", &[]);
        let embed = json(info_embed(&p, true));
        assert!(embed["description"]
            .as_str()
            .unwrap()
            .contains("No prompt yet"));
        assert!(embed.get("thumbnail").is_none());
    }

    #[test]
    fn a_list_page_holds_its_share_and_counts_pages() {
        let all: Vec<_> = (0..23)
            .map(|i| personality(&format!("p{i:02}"), "D", "", &[]))
            .collect();
        assert_eq!(page_count(23, 10), 3);
        assert_eq!(page_count(0, 10), 1);
        let last = json(list_embed(&all, 2, 10, false, |_| true));
        let description = last["description"].as_str().unwrap();
        assert_eq!(description.lines().count(), 3);
        assert!(
            description.starts_with("**p20** · D — <@7001>"),
            "{description}"
        );
        assert_eq!(last["footer"]["text"], "Page 3 of 3 · 23 personalities");
        let without_owners = json(list_embed(&all, 0, 10, false, |_| false));
        assert!(
            !without_owners.to_string().contains("<@"),
            "{without_owners}"
        );
    }

    #[test]
    fn list_lines_stay_short_and_keep_the_owner() {
        let aliases: Vec<String> = (0..10).map(|i| format!("{}{i}", "a".repeat(45))).collect();
        let aliases: Vec<&str> = aliases.iter().map(String::as_str).collect();
        let p = personality("Aria", "Aria", "", &aliases);
        let line = list_line(&p, true);
        assert!(
            line.chars().count() <= LIST_LINE_CHARS + 1,
            "{}",
            line.chars().count()
        );
        assert!(line.ends_with(" — <@7001>"));
    }
}
