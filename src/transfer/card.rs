//! Character cards (V2 `chara_card_v2`, V3 `chara_card_v3`): how their fields become a
//! personality, and a personality as a V2 card.
//!
//! Import: the name is the card's `name` with what a personality name can't hold left out
//! (the display name keeps it whole, or takes V3's `nickname`); the prompt joins, in this
//! order and each only when given, `system_prompt`, `description`, `personality`,
//! `scenario`, `mes_example` and `first_mes` as titled sections. `{{char}}` (and `<BOT>`)
//! becomes the display name, `{{user}}` (and `<USER>`) "the user", `{{original}}` nothing.
//! `extensions` are kept with the personality; the `personae` entry among them, which
//! an export writes, restores the name, aliases, model, NSFW flag and avatar.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{parse_json, FileError, Portable};
use crate::domain::{CardExtensions, Personality};

/// The key of the extensions entry that carries what a card has no field for.
pub const CARD_EXTENSION_KEY: &str = "personae";

/// The most characters of a card's name a personality name keeps.
const MAX_NAME_CHARS: usize = 64;
/// The most characters of a card's name the display name keeps.
const MAX_DISPLAY_NAME_CHARS: usize = 80;

#[derive(Deserialize)]
struct Card {
    spec: String,
    data: CardData,
}

/// The card fields personae reads; the others are skipped.
#[derive(Deserialize)]
struct CardData {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    personality: Option<String>,
    #[serde(default)]
    scenario: Option<String>,
    #[serde(default)]
    first_mes: Option<String>,
    #[serde(default)]
    mes_example: Option<String>,
    #[serde(default)]
    system_prompt: Option<String>,
    #[serde(default)]
    extensions: Option<Map<String, Value>>,
}

/// What a personae export puts in the card's extensions.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PersonaeExtension {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    nsfw: bool,
    #[serde(default)]
    avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
}

/// The personality a card (JSON) describes.
pub(super) fn read(bytes: &[u8]) -> Result<Portable, FileError> {
    let card: Card = parse_json(bytes)?;
    if card.spec != "chara_card_v2" && card.spec != "chara_card_v3" {
        return Err(FileError::UnknownSpec(card.spec));
    }
    let data = card.data;
    let card_name = data.name.as_deref().unwrap_or("").trim().to_owned();
    if card_name.is_empty() {
        return Err(FileError::NamelessCard);
    }
    let mut extensions = data.extensions.clone().unwrap_or_default();
    let ours: PersonaeExtension = match extensions.remove(CARD_EXTENSION_KEY) {
        Some(value) => serde_json::from_value(value)
            .map_err(|e| FileError::Json(format!("extensions.{CARD_EXTENSION_KEY}: {e}")))?,
        None => PersonaeExtension::default(),
    };
    let display_name = shortened(
        data.nickname
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(&card_name),
        MAX_DISPLAY_NAME_CHARS,
    );
    let name = match ours.name {
        Some(name) => name,
        None => name_from(&card_name).ok_or_else(|| FileError::UnusableName(card_name.clone()))?,
    };
    let card_extensions = if extensions.is_empty() {
        None
    } else {
        Some(CardExtensions::parse(extensions).map_err(|e| FileError::Extensions(e.to_string()))?)
    };
    Ok(Portable {
        prompt: prompt_from(&data, &display_name),
        name,
        display_name: Some(display_name),
        avatar_url: ours.avatar_url,
        model: ours.model,
        nsfw: ours.nsfw,
        temperature: ours.temperature,
        max_tokens: ours.max_tokens,
        aliases: ours.aliases,
        owner_id: None,
        home: None,
        card_extensions,
    })
}

/// The prompt a card's fields make (see the module's documentation).
fn prompt_from(data: &CardData, char_name: &str) -> String {
    let field = |value: &Option<String>| {
        value
            .as_deref()
            .map(|text| placeholders(text, char_name))
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    let sections = [
        field(&data.system_prompt),
        field(&data.description),
        field(&data.personality).map(|t| format!("{char_name}'s personality: {t}")),
        field(&data.scenario).map(|t| format!("Scenario: {t}")),
        field(&data.mes_example).map(|t| format!("Example dialogue:\n{t}")),
        field(&data.first_mes).map(|t| format!("{char_name} opens a conversation with:\n{t}")),
    ];
    sections
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// `text` with the card placeholders filled in, matched without regard to case.
fn placeholders(text: &str, char_name: &str) -> String {
    let replacements = [
        ("{{char}}", char_name),
        ("<bot>", char_name),
        ("{{user}}", "the user"),
        ("<user>", "the user"),
        ("{{original}}", ""),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for (placeholder, value) in replacements {
            if rest
                .get(..placeholder.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(placeholder))
            {
                out.push_str(value);
                rest = &rest[placeholder.len()..];
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// A personality name from a card's name: letters, digits, spaces, '-' and '_' kept, runs
/// of spaces made one, at most 64 characters. `None` when nothing is left.
fn name_from(card_name: &str) -> Option<String> {
    let kept: String = card_name
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .collect();
    let joined = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    let name = shortened(&joined, MAX_NAME_CHARS);
    name.chars().any(char::is_alphanumeric).then_some(name)
}

fn shortened(text: &str, max_chars: usize) -> String {
    text.chars()
        .take(max_chars)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The personality as a Character Card V2: the prompt as the description, the card's
/// kept extensions, and a `personae` entry with what a card has no field for.
pub fn export_card(p: &Personality, card_extensions: Option<&CardExtensions>) -> Value {
    let profile = p.profile();
    let mut extensions = card_extensions
        .map(|e| e.as_map().clone())
        .unwrap_or_default();
    let ours = PersonaeExtension {
        name: Some(p.name().to_string()),
        aliases: p.aliases().iter().map(ToString::to_string).collect(),
        model: profile.model.as_ref().map(ToString::to_string),
        nsfw: profile.nsfw,
        avatar_url: profile.avatar_url.as_ref().map(ToString::to_string),
        temperature: profile.temperature.map(f64::from),
        max_tokens: profile.max_tokens.map(u32::from),
    };
    extensions.insert(CARD_EXTENSION_KEY.to_owned(), json!(ours));
    json!({
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": profile.display_name.as_str(),
            "description": profile.prompt.as_str(),
            "personality": "",
            "scenario": "",
            "first_mes": "",
            "mes_example": "",
            "creator_notes": "",
            "system_prompt": "",
            "post_history_instructions": "",
            "alternate_greetings": [],
            "tags": [],
            "creator": "",
            "character_version": "",
            "extensions": extensions,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(data: &Value) -> Vec<u8> {
        json!({"spec": "chara_card_v2", "spec_version": "2.0", "data": data})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn the_card_fields_become_titled_sections_of_the_prompt() {
        let p = read(&card(&json!({
            "name": "Seraphina",
            "system_prompt": "{{original}}Stay in character.",
            "description": "{{char}} is a guardian of the forest.",
            "personality": "kind, protective",
            "scenario": "{{user}} wakes up in {{Char}}'s glade.",
            "mes_example": "<START>\n{{user}}: hi\n{{char}}: Hello.",
            "first_mes": "*You wake up.*",
            "extensions": {"talkativeness": "0.5"}
        })))
        .unwrap();
        assert_eq!(p.name, "Seraphina");
        assert_eq!(p.display_name.as_deref(), Some("Seraphina"));
        assert_eq!(
            p.prompt,
            "Stay in character.\n\nSeraphina is a guardian of the forest.\n\n\
             Seraphina's personality: kind, protective\n\n\
             Scenario: the user wakes up in Seraphina's glade.\n\n\
             Example dialogue:\n<START>\nthe user: hi\nSeraphina: Hello.\n\n\
             Seraphina opens a conversation with:\n*You wake up.*"
        );
        assert_eq!(
            p.card_extensions.unwrap().as_map(),
            json!({"talkativeness": "0.5"}).as_object().unwrap()
        );
        assert_eq!((p.owner_id, p.home), (None, None));
    }

    #[test]
    fn a_name_keeps_what_a_personality_name_can_hold() {
        assert_eq!(name_from("Dr. Who ✨ (v2)").as_deref(), Some("Dr Who v2"));
        assert_eq!(name_from("✨✨"), None);
        let p = read(&card(&json!({"name": "Dr. Who ✨"}))).unwrap();
        assert_eq!(
            (p.name.as_str(), p.display_name.as_deref()),
            ("Dr Who", Some("Dr. Who ✨"))
        );
    }

    #[test]
    fn v3_cards_are_read_and_their_nickname_is_the_display_name() {
        let bytes = json!({"spec": "chara_card_v3", "spec_version": "3.0",
            "data": {"name": "Aria", "nickname": "Ari the Bard", "description": "A bard.",
                     "assets": [], "group_only_greetings": []}})
        .to_string();
        let p = read(bytes.as_bytes()).unwrap();
        assert_eq!(p.display_name.as_deref(), Some("Ari the Bard"));
        assert_eq!(p.prompt, "A bard.");
    }

    #[test]
    fn cards_without_a_name_or_of_another_spec_or_with_wrong_types_are_refused() {
        assert_eq!(
            read(&card(&json!({"name": "  "}))),
            Err(FileError::NamelessCard)
        );
        assert_eq!(read(&card(&json!({}))), Err(FileError::NamelessCard));
        let v1 = json!({"spec": "chara_card_v1", "data": {"name": "A"}}).to_string();
        assert!(matches!(
            read(v1.as_bytes()),
            Err(FileError::UnknownSpec(_))
        ));
        let wrong = card(&json!({"name": "A", "description": 5}));
        assert!(matches!(read(&wrong), Err(FileError::Json(e)) if e.contains("invalid type")));
        let wrong = card(&json!({"name": "A", "extensions": []}));
        assert!(matches!(read(&wrong), Err(FileError::Json(_))));
    }

    #[test]
    fn placeholders_are_matched_without_regard_to_case_and_keep_other_text() {
        assert_eq!(
            placeholders("<BOT> and <user> — {{CHAR}}/{{User}} {{x}} é", "Aria"),
            "Aria and the user — Aria/the user {{x}} é"
        );
    }
}
