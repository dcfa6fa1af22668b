use serde::{Deserialize, Serialize};

use super::key::normalize_key;
use super::text::{is_name_char, refuse_reserved_key, require_length, string_value_object};
use super::DomainError;

const FIELD: &str = "alias";
const MAX_LEN: usize = 50;
/// How many aliases one personality may have.
pub const MAX_ALIASES: usize = 10;

/// Another name a personality answers to (`@alias`), stored normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Alias(String);

impl Alias {
    /// Normalizes the text (a leading '@' is dropped), then checks it: 1–50 letters,
    /// digits, spaces, '-' or '_'.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = input.trim();
        let without_at = trimmed.strip_prefix('@').unwrap_or(trimmed);
        let alias = normalize_key(without_at);
        require_length(FIELD, &alias, MAX_LEN)?;
        if let Some(bad) = alias.chars().find(|c| !is_name_char(*c)) {
            return Err(DomainError::invalid(
                FIELD,
                format!("may only contain letters, digits, spaces, '-' and '_' (found {bad:?})"),
            ));
        }
        refuse_reserved_key(FIELD, &alias)?;
        Ok(Self(alias))
    }
}

string_value_object!(Alias);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_normalized() {
        assert_eq!(Alias::parse("  The   BARD ").unwrap().as_str(), "the bard");
        assert_eq!(Alias::parse("@Aria").unwrap().as_str(), "aria");
        // NFKC folds compatibility forms: fullwidth letters and the "ﬁ" ligature.
        assert_eq!(Alias::parse("ＡＲＩＡ").unwrap().as_str(), "aria");
        assert_eq!(Alias::parse("ﬁdo").unwrap().as_str(), "fido");
        // A combining accent composes into a letter.
        assert_eq!(Alias::parse("Zoe\u{0308}").unwrap().as_str(), "zoë");
    }

    #[test]
    fn normalization_is_idempotent() {
        for input in ["  The   BARD ", "ＡＲＩＡ", "Zoe\u{0308}", "x y"] {
            let once = Alias::parse(input).unwrap();
            assert_eq!(Alias::parse(once.as_str()).unwrap(), once);
        }
    }

    #[test]
    fn empty_long_emoji_and_punctuation_aliases_are_rejected() {
        for bad in [
            "",
            "  ",
            "@",
            &"x".repeat(51),
            "🦀",
            "a.b",
            "a\u{200B}b",
            "\u{0301}",
            "a,b",
        ] {
            let err = Alias::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("alias: "), "{bad:?}: {err}");
        }
    }

    #[test]
    fn discords_own_mentions_are_refused() {
        for bad in ["everyone", "@here", "@Everyone"] {
            let err = Alias::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("Discord's own mention"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn fifty_characters_after_normalization_are_accepted() {
        let long = format!("  {}  ", "A".repeat(50));
        assert_eq!(Alias::parse(&long).unwrap().as_str(), "a".repeat(50));
    }
}
