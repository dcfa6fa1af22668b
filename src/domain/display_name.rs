use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use unicode_security::confusable_detection::skeleton;

use super::text::{is_hidden, require_length, string_value_object};
use super::DomainError;

const FIELD: &str = "display_name";
const MAX_LEN: usize = 80;
/// The words Discord refuses anywhere in a webhook's name, each with what it looks like,
/// folded as a name is (`folded`).
static BANNED: LazyLock<[(&str, String); 2]> =
    LazyLock::new(|| ["discord", "clyde"].map(|word| (word, folded(word))));

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
        if name.chars().all(looks_blank) {
            return Err(DomainError::invalid(
                FIELD,
                "must show something: it only holds characters that look blank",
            ));
        }
        // Folded to what the characters look like, so that "Сlyde" in Cyrillic or
        // full-width "Ｃｌｙｄｅ" count as what members read.
        let looks_like = folded(name);
        for (banned, banned_looks) in BANNED.iter() {
            if looks_like.contains(banned_looks.as_str()) {
                return Err(DomainError::invalid(
                    FIELD,
                    format!("Discord does not allow \"{banned}\" in a webhook name"),
                ));
            }
        }
        let lower = name.to_lowercase();
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

/// Characters that show as empty space: whitespace, and fillers that Unicode doesn't count
/// as whitespace (Hangul fillers, the blank Braille pattern, …).
fn looks_blank(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}' | '\u{180E}' | '\u{200B}'
                ..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
        )
}

/// The text as it looks: lower case, then each character replaced by the prototype it can
/// be confused with (UTS #39 skeleton), lower-cased again.
fn folded(text: &str) -> String {
    skeleton(&text.to_lowercase())
        .flat_map(char::to_lowercase)
        .collect()
}

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
    fn look_alike_letters_do_not_get_around_the_reserved_words() {
        for bad in [
            "\u{0421}lyde",                             // Cyrillic capital Es
            "\u{FF23}\u{FF4C}\u{FF59}\u{FF44}\u{FF45}", // full-width
            "D\u{0456}scord Staff",                     // Cyrillic i
            "c1yde",
        ] {
            let err = DisplayName::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("Discord does not allow"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn names_that_look_blank_are_rejected() {
        for bad in [
            "\u{3164}",
            "\u{2800}\u{2800}",
            "\u{3164} \u{FFA0}",
            "\u{115F}",
        ] {
            let err = DisplayName::parse(bad).unwrap_err();
            assert!(err.to_string().contains("look blank"), "{bad:?}: {err}");
        }
        assert!(DisplayName::parse("\u{3164}Aria").is_ok());
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
