//! personae's own export document: a versioned JSON file of personalities. Its types are
//! its own, not the domain's, so the format changes only when [`VERSION`] does.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{parse_json, FileError, Portable};
use crate::domain::{CardExtensions, Personality, Scope, ServerId, UserId};

/// The `format` field of every export.
pub const FORMAT: &str = "personae-export";
/// The version of the document this personae writes and reads.
pub const VERSION: u32 = 1;

/// A personae export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDocument {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written by this personae.
    pub version: u32,
    /// When the export was made (RFC 3339).
    #[serde(default)]
    pub exported_at: String,
    pub personalities: Vec<ExportedPersonality>,
}

/// One personality of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedPersonality {
    pub name: String,
    pub display_name: String,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub prompt: String,
    /// `null`: the bot's default model.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub nsfw: bool,
    /// The sampling temperature; absent: left to the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The longest answer in tokens; absent: the host's cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The owner's Discord user id.
    pub owner_id: String,
    /// The home server's id; `null` (or absent) for a global personality.
    #[serde(default)]
    pub home_server: Option<String>,
    /// The extensions of the character card it was imported from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_extensions: Option<Map<String, Value>>,
}

impl ExportDocument {
    /// An export of these personalities, made `now`.
    pub fn new(personalities: Vec<ExportedPersonality>, now: DateTime<Utc>) -> Self {
        Self {
            format: FORMAT.to_owned(),
            version: VERSION,
            exported_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
            personalities,
        }
    }

    /// The document as pretty JSON, ending with a line break.
    pub fn to_json(&self) -> String {
        // Strings, numbers and maps with string keys only: serializing can't fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

impl ExportedPersonality {
    /// The personality as an export holds it, with the extensions of its card.
    pub fn new(p: &Personality, card_extensions: Option<&CardExtensions>) -> Self {
        let profile = p.profile();
        Self {
            name: p.name().to_string(),
            display_name: profile.display_name.to_string(),
            avatar_url: profile.avatar_url.as_ref().map(ToString::to_string),
            prompt: profile.prompt.to_string(),
            model: profile.model.as_ref().map(ToString::to_string),
            nsfw: profile.nsfw,
            temperature: profile.temperature.map(f64::from),
            max_tokens: profile.max_tokens.map(u32::from),
            aliases: p.aliases().iter().map(ToString::to_string).collect(),
            owner_id: p.owner_id().to_string(),
            home_server: p.scope().server().map(|s| s.to_string()),
            card_extensions: card_extensions.map(|e| e.as_map().clone()),
        }
    }
}

/// The version fields, read before the rest so that a newer document is named as such
/// rather than refused for fields this personae doesn't know.
#[derive(Deserialize)]
struct Header {
    format: Value,
    version: Value,
}

/// The personalities of an export document.
pub(super) fn read(bytes: &[u8]) -> Result<Vec<Portable>, FileError> {
    let header: Header = parse_json(bytes)?;
    if header.format != Value::String(FORMAT.to_owned()) {
        return Err(FileError::WrongFormat(match header.format {
            Value::String(s) => s,
            other => other.to_string(),
        }));
    }
    match header.version.as_u64() {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) if v > u64::from(VERSION) => {
            return Err(FileError::NewerVersion {
                found: u32::try_from(v).unwrap_or(u32::MAX),
                known: VERSION,
            })
        }
        _ => {
            return Err(FileError::Json(format!(
                "version {} is not a format version personae wrote",
                header.version
            )))
        }
    }
    let document: ExportDocument = parse_json(bytes)?;
    document.personalities.into_iter().map(portable).collect()
}

fn portable(p: ExportedPersonality) -> Result<Portable, FileError> {
    let owner_id = p
        .owner_id
        .parse::<UserId>()
        .map_err(|_| FileError::BadOwner(p.owner_id.clone()))?;
    let home = match &p.home_server {
        None => Scope::Global,
        Some(id) => Scope::Server(
            id.parse::<ServerId>()
                .map_err(|_| FileError::BadServer(id.clone()))?,
        ),
    };
    let card_extensions = p
        .card_extensions
        .map(CardExtensions::parse)
        .transpose()
        .map_err(|e| FileError::Extensions(e.to_string()))?;
    Ok(Portable {
        name: p.name,
        display_name: Some(p.display_name),
        avatar_url: p.avatar_url,
        prompt: p.prompt,
        model: p.model,
        nsfw: p.nsfw,
        temperature: p.temperature,
        max_tokens: p.max_tokens,
        aliases: p.aliases,
        owner_id: Some(owner_id),
        home: Some(home),
        card_extensions,
    })
}
