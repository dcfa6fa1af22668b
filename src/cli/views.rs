//! The JSON documents `--json` prints.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::application::{Restoration, Revision};
use crate::domain::{Personality, Profile, ProfileField};
use crate::events::EventEnvelope;

/// A personality as the command line prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PersonalityView {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub prompt: String,
    pub model: Option<String>,
    pub nsfw: bool,
    /// `null`: left to the model.
    pub temperature: Option<f64>,
    /// `null`: LLM_MAX_TOKENS.
    pub max_tokens: Option<u32>,
    pub owner_id: String,
    /// The home server's id; `null` for a global personality.
    pub home_server: Option<String>,
    pub aliases: Vec<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Personality> for PersonalityView {
    fn from(p: &Personality) -> Self {
        Self {
            id: p.id().to_string(),
            name: p.name().to_string(),
            display_name: p.profile().display_name.to_string(),
            avatar_url: p.profile().avatar_url.as_ref().map(ToString::to_string),
            prompt: p.profile().prompt.to_string(),
            model: p.profile().model.as_ref().map(ToString::to_string),
            nsfw: p.profile().nsfw,
            temperature: p.profile().temperature.map(f64::from),
            max_tokens: p.profile().max_tokens.map(u32::from),
            owner_id: p.owner_id().to_string(),
            home_server: p.scope().server().map(|s| s.to_string()),
            aliases: p.aliases().iter().map(ToString::to_string).collect(),
            version: p.version(),
            created_at: time(p.created_at()),
            updated_at: time(p.updated_at()),
        }
    }
}

/// A profile revision as `personality history --json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RevisionView {
    pub revision: i64,
    pub at: String,
    pub actor: String,
    pub changed: Vec<ProfileField>,
    pub profile: Profile,
}

impl From<&Revision> for RevisionView {
    fn from(r: &Revision) -> Self {
        Self {
            revision: r.number,
            at: time(r.at),
            actor: r.actor.clone(),
            changed: r.changed.clone(),
            profile: r.profile.clone(),
        }
    }
}

/// A restored personality as `personality restore --json` prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RestorationView {
    pub personality: PersonalityView,
    /// Its aliases that other personalities took meanwhile: not restored.
    pub left_out: Vec<String>,
}

impl From<&Restoration> for RestorationView {
    fn from(r: &Restoration) -> Self {
        Self {
            personality: PersonalityView::from(&r.personality),
            left_out: r.left_out.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A stored event as the command line prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventView {
    pub sequence: i64,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    pub occurred_at: String,
    pub actor: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub payload: serde_json::Value,
}

impl From<&EventEnvelope> for EventView {
    fn from(e: &EventEnvelope) -> Self {
        // The payload is the event's own fields, without the serde tag.
        let payload = serde_json::to_value(&e.event)
            .ok()
            .and_then(|mut v| v.get_mut("payload").map(serde_json::Value::take))
            .unwrap_or(serde_json::Value::Null);
        Self {
            sequence: e.sequence,
            event_id: e.event_id.to_string(),
            event_type: e.event_type().as_str().to_owned(),
            aggregate_id: e.aggregate_id.to_string(),
            aggregate_version: e.aggregate_version,
            occurred_at: time(e.occurred_at),
            actor: e.actor.clone(),
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id.clone(),
            payload,
        }
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
