//! Raw input of the commands, as typed by a user, and its parsing into value objects.

use crate::domain::{
    Alias, AvatarUrl, CardExtensions, DisplayName, DomainError, MaxTokens, ModelName,
    PersonalityName, Profile, ProfileChanges, Prompt, Temperature, UserId,
};

/// What `/personality create` and `personae personality create` give.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub name: String,
    /// The owner; `None` means the acting user.
    pub owner_id: Option<UserId>,
    /// Usable in every server (bot admins only); otherwise it belongs to the request's
    /// server.
    pub global: bool,
    /// Defaults to the name.
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub aliases: Vec<String>,
    /// Answers only in age-restricted channels.
    pub nsfw: bool,
    /// The sampling temperature (0–2); `None` leaves it to the endpoint.
    pub temperature: Option<f64>,
    /// The longest answer in tokens; `None` is the host's cap.
    pub max_tokens: Option<u32>,
    /// The extensions of the character card it is imported from.
    pub card_extensions: Option<CardExtensions>,
}

/// What `update` gives: `None` leaves a field alone; an empty avatar URL or model clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub prompt: Option<String>,
    pub model: Option<String>,
    /// Answers only in age-restricted channels.
    pub nsfw: Option<bool>,
    /// 0 to 2; empty (or `default`) leaves it to the endpoint.
    pub temperature: Option<String>,
    /// A positive whole number; empty (or `default`) is the host's cap.
    pub max_tokens: Option<String>,
}

pub(crate) struct ParsedRegistration {
    pub name: PersonalityName,
    pub profile: Profile,
    pub aliases: Vec<Alias>,
    pub card_extensions: Option<CardExtensions>,
}

impl Registration {
    pub(crate) fn parse(&self) -> Result<ParsedRegistration, DomainError> {
        let name = PersonalityName::parse(&self.name)?;
        let display_name = match &self.display_name {
            Some(d) => DisplayName::parse(d)?,
            // The name doubles as the display name: say which option fixes it.
            None => DisplayName::parse(name.as_str()).map_err(|e| match e {
                DomainError::Invalid { field, reason } => DomainError::Invalid {
                    field,
                    reason: format!(
                        "the name \"{name}\" can't be shown on messages ({reason}); give a display_name"
                    ),
                },
                other => other,
            })?,
        };
        let avatar_url = non_empty(self.avatar_url.as_deref())
            .map(AvatarUrl::parse)
            .transpose()?;
        let prompt = Prompt::parse(self.prompt.as_deref().unwrap_or(""))?;
        let model = non_empty(self.model.as_deref())
            .map(ModelName::parse)
            .transpose()?;
        let aliases = self
            .aliases
            .iter()
            .map(|a| Alias::parse(a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ParsedRegistration {
            name,
            profile: Profile {
                display_name,
                avatar_url,
                prompt,
                model,
                nsfw: self.nsfw,
                temperature: self.temperature.map(Temperature::try_from).transpose()?,
                max_tokens: self.max_tokens.map(MaxTokens::try_from).transpose()?,
            },
            aliases,
            card_extensions: self.card_extensions.clone(),
        })
    }
}

impl ProfileUpdate {
    pub(crate) fn parse(&self) -> Result<ProfileChanges, DomainError> {
        Ok(ProfileChanges {
            display_name: self
                .display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()?,
            avatar_url: self
                .avatar_url
                .as_deref()
                .map(optional(AvatarUrl::parse))
                .transpose()?,
            prompt: self.prompt.as_deref().map(Prompt::parse).transpose()?,
            model: self
                .model
                .as_deref()
                .map(optional(ModelName::parse))
                .transpose()?,
            nsfw: self.nsfw,
            temperature: self
                .temperature
                .as_deref()
                .map(setting(Temperature::parse))
                .transpose()?,
            max_tokens: self
                .max_tokens
                .as_deref()
                .map(setting(MaxTokens::parse))
                .transpose()?,
        })
    }

    /// True when no field is given.
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none()
            && self.avatar_url.is_none()
            && self.prompt.is_none()
            && self.model.is_none()
            && self.nsfw.is_none()
            && self.temperature.is_none()
            && self.max_tokens.is_none()
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// An empty value or `default` clears a sampling setting; anything else must parse.
fn setting<T>(
    parse: fn(&str) -> Result<T, DomainError>,
) -> impl Fn(&str) -> Result<Option<T>, DomainError> {
    move |text| {
        if text.trim().eq_ignore_ascii_case("default") {
            Ok(None)
        } else {
            optional(parse)(text)
        }
    }
}

/// An empty value clears an optional field; anything else must parse.
fn optional<T>(
    parse: fn(&str) -> Result<T, DomainError>,
) -> impl Fn(&str) -> Result<Option<T>, DomainError> {
    move |text| {
        if text.trim().is_empty() {
            Ok(None)
        } else {
            parse(text).map(Some)
        }
    }
}
