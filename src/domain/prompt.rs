use serde::{Deserialize, Serialize};

use super::text::{check_max_length, is_invisible_or_bidi, string_value_object};
use super::DomainError;

const FIELD: &str = "prompt";
/// The longest prompt a personality may have (a slash-command option holds 6000 characters).
pub const MAX_LEN: usize = 6000;

/// The system prompt that gives a personality its voice. May be empty; kept exactly as typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Prompt(String);

impl Prompt {
    /// Checks length (at most 6000 characters) and rejects control characters other than
    /// line breaks and tabs, and bidi overrides that would hide what the prompt says.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        check_max_length(FIELD, input, MAX_LEN)?;
        // Zero-width (non-)joiners are kept: emoji sequences and several scripts need them.
        let hidden = |c: char| {
            (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
                || (is_invisible_or_bidi(c) && !matches!(c, '\u{200C}' | '\u{200D}'))
        };
        // Most prompts are ASCII, where only the C0 controls and DEL can hide anything.
        let hidden_ascii = |b: u8| (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t')) || b == 0x7f;
        let found = if input.is_ascii() {
            input.bytes().any(hidden_ascii)
        } else {
            input.chars().any(hidden)
        };
        if found {
            return Err(DomainError::invalid(
                FIELD,
                "must not contain control or text-direction characters (line breaks and tabs are fine)",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// True when the personality has no prompt.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

string_value_object!(Prompt);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_prompts_are_kept_exactly() {
        let text = "You are Aria.\n\n\tSpeak in verse; 🦀 ok.\r\n'; DROP TABLE personalities; --";
        assert_eq!(Prompt::parse(text).unwrap().as_str(), text);
        assert!(Prompt::parse("").unwrap().is_empty());
    }

    proptest::proptest! {
        #[test]
        fn ascii_prompts_are_checked_as_any_other_text(input in "[\\x00-\\x7f]{0,80}") {
            let hidden = input
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
            proptest::prop_assert_eq!(Prompt::parse(&input).is_err(), hidden);
        }
    }

    #[test]
    fn emoji_zero_width_joiners_are_allowed() {
        // Family emoji are built with U+200D.
        assert!(Prompt::parse("👨\u{200D}👩\u{200D}👧").is_ok());
    }

    #[test]
    fn long_prompts_and_hidden_characters_are_rejected() {
        assert!(Prompt::parse(&"x".repeat(6000)).is_ok());
        for bad in [
            &"x".repeat(6001) as &str,
            "a\u{0000}b",
            "a\u{001B}[31m",
            "a\u{202E}b",
        ] {
            let err = Prompt::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("prompt: "), "{bad:?}: {err}");
        }
    }
}
