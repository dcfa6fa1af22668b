use serde::{Deserialize, Serialize};

use super::key::normalize_key;
use super::text::{is_name_char, refuse_reserved_key, require_length, string_value_object};
use super::DomainError;

const FIELD: &str = "name";
const MAX_LEN: usize = 64;

/// A personality's unique name, as typed by its creator (trimmed). Unique case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonalityName(String);

impl PersonalityName {
    /// Trims the text and checks it: 1–64 letters, digits, spaces, '-' or '_'.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let name = input.trim();
        require_length(FIELD, name, MAX_LEN)?;
        if let Some(bad) = name.chars().find(|c| !is_name_char(*c)) {
            return Err(DomainError::invalid(
                FIELD,
                format!("may only contain letters, digits, spaces, '-' and '_' (found {bad:?})"),
            ));
        }
        refuse_reserved_key(FIELD, &normalize_key(name))?;
        Ok(Self(name.to_owned()))
    }

    /// The form under which names and aliases are unique (NFKC, lowercase, one space).
    pub fn key(&self) -> String {
        normalize_key(&self.0)
    }
}

string_value_object!(PersonalityName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_kept_as_typed() {
        let name = PersonalityName::parse("  Aria the Bard ").unwrap();
        assert_eq!(name.as_str(), "Aria the Bard");
        assert_eq!(name.key(), "aria the bard");
    }

    #[test]
    fn unicode_letters_digits_dashes_and_underscores_are_accepted() {
        for ok in ["Élodie", "株式会社", "r2-d2_x", "a", &"x".repeat(64)] {
            assert!(PersonalityName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn empty_whitespace_only_and_long_names_are_rejected() {
        for bad in ["", "   ", "\t\n", &"x".repeat(65)] {
            let err = PersonalityName::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("name: "), "{err}");
        }
    }

    #[test]
    fn discords_own_mentions_are_refused_in_any_case() {
        for bad in ["everyone", "Here", "EVERYONE", "ｅｖｅｒｙｏｎｅ"] {
            let err = PersonalityName::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("Discord's own mention"),
                "{bad}: {err}"
            );
        }
        assert!(PersonalityName::parse("everyone else").is_ok());
    }

    #[test]
    fn punctuation_and_control_characters_are_rejected() {
        for bad in [
            "a.b",
            "@aria",
            "a\u{0007}b",
            "a\u{200B}b",
            "rm -rf /",
            "x'; DROP TABLE--",
        ] {
            let err = PersonalityName::parse(bad).unwrap_err();
            assert!(err.to_string().contains("may only contain"), "{bad}: {err}");
        }
    }
}
