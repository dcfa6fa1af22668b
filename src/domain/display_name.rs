use serde::{Deserialize, Serialize};

use super::text::{is_hidden, require_length, string_value_object};
use super::DomainError;

const FIELD: &str = "display_name";
const MAX_LEN: usize = 80;

/// The name a personality's webhook messages carry. Discord's webhook-username rules apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// Trims the text and checks Discord's rules for webhook usernames.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let name = input.trim();
        require_length(FIELD, name, MAX_LEN)?;
        if name.chars().any(is_hidden) {
            return Err(DomainError::invalid(
                FIELD,
                "must not contain control, zero-width or text-direction characters",
            ));
        }
        let lower = name.to_lowercase();
        for banned in ["discord", "clyde"] {
            if lower.contains(banned) {
                return Err(DomainError::invalid(
                    FIELD,
                    format!("Discord does not allow \"{banned}\" in a webhook name"),
                ));
            }
        }
        let bare = lower.trim_start_matches('@');
        if bare == "everyone" || bare == "here" {
            return Err(DomainError::invalid(
                FIELD,
                format!("Discord does not allow \"{name}\" as a webhook name"),
            ));
        }
        Ok(Self(name.to_owned()))
    }
}

string_value_object!(DisplayName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_emoji_and_punctuation_are_accepted() {
        for ok in [
            "Aria",
            "Dr. Who?",
            "🦀 Ferris",
            "Zoë — the Bard",
            &"x".repeat(80),
        ] {
            assert_eq!(DisplayName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn reserved_words_are_rejected_in_any_case() {
        for bad in [
            "Discord Bot",
            "my dIsCoRd",
            "Clyde",
            "xCLYDEx",
            "everyone",
            "HERE",
            " here ",
        ] {
            let err = DisplayName::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("Discord does not allow"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn names_that_merely_contain_here_or_everyone_are_fine() {
        assert!(DisplayName::parse("Everyone's friend").is_ok());
        assert!(DisplayName::parse("there").is_ok());
    }

    #[test]
    fn empty_long_and_invisible_characters_are_rejected() {
        for bad in [
            "",
            "  ",
            &"x".repeat(81),
            "a\u{200B}b",
            "a\u{202E}b",
            "a\nb",
            "\u{0000}",
        ] {
            let err = DisplayName::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("display_name: "),
                "{bad:?}: {err}"
            );
        }
    }
}
