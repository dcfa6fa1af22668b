//! Autocomplete of personality names and aliases. Answers come from the profile cache, never
//! the database: Discord asks on every keystroke and wants an answer within 3 s.

use crate::domain::Alias;
use poise::serenity_prelude as serenity;

use super::request;
use crate::cache::ProfileInfo;
use crate::discord::Context;

/// Discord shows at most 25 choices.
const MAX_CHOICES: usize = 25;
/// A choice's name holds at most 100 characters.
const MAX_LABEL_CHARS: usize = 100;

/// One choice: what Discord shows, and what it fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    pub label: String,
    pub value: String,
}

/// How well a personality matches what was typed; lower is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    NameStarts,
    AliasStarts,
    NameContains,
    AliasContains,
}

/// The personalities whose name or an alias starts with or contains `typed` (in any case,
/// with or without '@'), best first: names before aliases, prefixes before substrings, then
/// by name. At most 25; the value filled in is the personality's name.
pub fn suggest<'a>(
    profiles: impl IntoIterator<Item = &'a ProfileInfo>,
    typed: &str,
) -> Vec<Suggestion> {
    let wanted = normalized(typed);
    let mut ranked: Vec<(Rank, String, Suggestion)> = profiles
        .into_iter()
        .filter_map(|p| {
            let (rank, alias) = best_match(p, &wanted)?;
            let label = match alias {
                Some(alias) => format!("{} (@{alias})", p.name),
                None if p.display_name.as_str() != p.name.as_str() => {
                    format!("{} · {}", p.name, p.display_name)
                }
                None => p.name.to_string(),
            };
            let suggestion = Suggestion {
                label: truncate(&label, MAX_LABEL_CHARS),
                value: p.name.to_string(),
            };
            Some((rank, p.name.key(), suggestion))
        })
        .collect();
    ranked.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    ranked
        .into_iter()
        .take(MAX_CHOICES)
        .map(|(_, _, s)| s)
        .collect()
}

/// The aliases of one personality that start with or contain `typed`, prefixes first.
pub fn suggest_aliases(profile: &ProfileInfo, typed: &str) -> Vec<Suggestion> {
    let wanted = normalized(typed);
    let mut matching: Vec<(bool, &str)> = profile
        .aliases
        .iter()
        .map(Alias::as_str)
        .filter(|a| a.contains(wanted.as_str()))
        .map(|a| (!a.starts_with(wanted.as_str()), a))
        .collect();
    matching.sort_unstable();
    matching
        .into_iter()
        .take(MAX_CHOICES)
        .map(|(_, a)| Suggestion {
            label: a.to_owned(),
            value: a.to_owned(),
        })
        .collect()
}

fn normalized(typed: &str) -> String {
    let trimmed = typed.trim();
    crate::domain::lookup_key(trimmed.strip_prefix('@').unwrap_or(trimmed))
}

/// The best way `p` matches, and the alias that matched when it was an alias.
fn best_match<'p>(p: &'p ProfileInfo, wanted: &str) -> Option<(Rank, Option<&'p str>)> {
    let name = p.name.key();
    if name.starts_with(wanted) {
        return Some((Rank::NameStarts, None));
    }
    let aliases = || p.aliases.iter().map(Alias::as_str);
    if let Some(alias) = aliases().find(|a| a.starts_with(wanted)) {
        return Some((Rank::AliasStarts, Some(alias)));
    }
    if name.contains(wanted) {
        return Some((Rank::NameContains, None));
    }
    aliases()
        .find(|a| a.contains(wanted))
        .map(|alias| (Rank::AliasContains, Some(alias)))
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

fn respond(suggestions: Vec<Suggestion>) -> serenity::CreateAutocompleteResponse {
    let choices = suggestions
        .into_iter()
        .map(|s| serenity::AutocompleteChoice::new(s.label, s.value))
        .collect();
    serenity::CreateAutocompleteResponse::new().set_choices(choices)
}

/// Every personality usable here (global ones unless the server turned them off): for
/// commands that only read or use one (`info`, `activate`).
pub async fn any_personality(
    ctx: Context<'_>,
    partial: &str,
) -> serenity::CreateAutocompleteResponse {
    let Ok(request) = request(ctx) else {
        return respond(Vec::new());
    };
    let Some(member) = request.actor.user_id() else {
        return respond(Vec::new());
    };
    let globals = request
        .server
        .map_or(true, |server| ctx.data().app.settings.get(server).globals);
    let profiles = ctx.data().app.cache.all();
    let usable = profiles
        .iter()
        .map(|p| &**p)
        .filter(|p| p.is_usable(request.server, member))
        .filter(|p| globals || !p.scope.is_global());
    respond(suggest(usable, partial))
}

/// The personalities the user may change: their own, or all of them for bot admins.
pub async fn changeable_personality(
    ctx: Context<'_>,
    partial: &str,
) -> serenity::CreateAutocompleteResponse {
    let Ok(request) = request(ctx) else {
        return respond(Vec::new());
    };
    let profiles = ctx.data().app.cache.all();
    let changeable = profiles
        .iter()
        .map(|p| &**p)
        .filter(|p| p.scope == request.server.into() || p.scope.is_global())
        .filter(|p| request.may_manage(p.owner_id, p.scope));
    respond(suggest(changeable, partial))
}

/// The aliases of the personality chosen in the same command's `personality` option, when
/// the user may change it.
pub async fn alias_of_chosen_personality(
    ctx: Context<'_>,
    partial: &str,
) -> serenity::CreateAutocompleteResponse {
    let poise::Context::Application(app) = ctx else {
        return respond(Vec::new());
    };
    let chosen = string_option(&app.interaction.data.options, "personality");
    let Ok(request) = request(ctx) else {
        return respond(Vec::new());
    };
    let profile =
        chosen.and_then(|reference| ctx.data().app.cache.find(request.server, &reference));
    let suggestions = match profile {
        Some(p) if request.may_manage(p.owner_id, p.scope) => suggest_aliases(&p, partial),
        _ => Vec::new(),
    };
    respond(suggestions)
}

/// The value of a string option anywhere under the command (inside its subcommand).
fn string_option(options: &[serenity::CommandDataOption], name: &str) -> Option<String> {
    options.iter().find_map(|option| match &option.value {
        serenity::CommandDataOptionValue::String(value) if option.name == name => {
            Some(value.clone())
        }
        serenity::CommandDataOptionValue::Autocomplete { value, .. } if option.name == name => {
            Some(value.clone())
        }
        serenity::CommandDataOptionValue::SubCommand(inner)
        | serenity::CommandDataOptionValue::SubCommandGroup(inner) => string_option(inner, name),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Alias, DisplayName, PersonalityId, PersonalityName, Prompt, UserId};

    fn profile(name: &str, display: &str, aliases: &[&str]) -> ProfileInfo {
        ProfileInfo {
            id: PersonalityId::new(),
            name: PersonalityName::parse(name).unwrap(),
            owner_id: UserId::new(7).unwrap(),
            scope: crate::domain::Scope::Global,
            display_name: DisplayName::parse(display).unwrap(),
            avatar_url: None,
            prompt: Prompt::parse("").unwrap(),
            model: None,
            nsfw: false,
            temperature: None,
            max_tokens: None,
            aliases: aliases.iter().map(|a| Alias::parse(a).unwrap()).collect(),
            version: 1,
        }
    }

    fn values(suggestions: &[Suggestion]) -> Vec<&str> {
        suggestions.iter().map(|s| s.value.as_str()).collect()
    }

    #[test]
    fn names_come_before_aliases_and_prefixes_before_substrings() {
        let profiles = [
            profile("Zed", "Zed", &["arrow"]),
            profile("Maria", "Maria", &[]),
            profile("Aria", "Aria", &[]),
            profile("Cleo", "Cleo", &["ohara"]),
            profile("Ariadne", "Ariadne", &[]),
        ];
        let found = suggest(&profiles, "AR");
        assert_eq!(values(&found), ["Aria", "Ariadne", "Zed", "Maria", "Cleo"]);
        assert_eq!(found[2].label, "Zed (@arrow)");
    }

    #[test]
    fn a_leading_at_and_extra_spaces_are_ignored() {
        let profiles = [profile("The Bard", "The Bard", &[])];
        assert_eq!(values(&suggest(&profiles, " @the   ba")), ["The Bard"]);
    }

    #[test]
    fn nothing_typed_lists_everything_by_name_and_at_most_25() {
        let profiles: Vec<_> = (0..30)
            .rev()
            .map(|i| profile(&format!("p{i:02}"), "X", &[]))
            .collect();
        let found = suggest(&profiles, "");
        assert_eq!(found.len(), 25);
        assert_eq!(found[0].value, "p00");
        assert_eq!(found[0].label, "p00 · X");
    }

    #[test]
    fn labels_are_at_most_100_characters() {
        let long_display = "d".repeat(80);
        let profiles = [profile(&"n".repeat(64), &long_display, &[])];
        let found = suggest(&profiles, "n");
        assert_eq!(found[0].label.chars().count(), 100);
        assert_eq!(found[0].value, "n".repeat(64));
    }

    #[test]
    fn aliases_of_one_personality_are_suggested_prefixes_first() {
        let p = profile("Aria", "Aria", &["singer", "bard", "songbird"]);
        assert_eq!(values(&suggest_aliases(&p, "s")), ["singer", "songbird"]);
        assert_eq!(values(&suggest_aliases(&p, "in")), ["singer"]);
        assert_eq!(
            values(&suggest_aliases(&p, "")),
            ["bard", "singer", "songbird"]
        );
    }
}
