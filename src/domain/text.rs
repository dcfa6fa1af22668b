//! Character rules shared by the value objects.

use super::DomainError;

/// Characters that are invisible or reorder text: zero-width and bidirectional overrides.
pub(crate) fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}' // zero-width no-break space
            | '\u{00AD}' // soft hyphen
            | '\u{034F}' // combining grapheme joiner
            | '\u{061C}' // Arabic letter mark
            | '\u{180E}' // Mongolian vowel separator
    )
}

/// A character a user can't see or that changes how the text around it is shown.
pub(crate) fn is_hidden(c: char) -> bool {
    c.is_control() || is_invisible_or_bidi(c)
}

/// Counts characters (Unicode scalar values), the unit Discord's limits use.
pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Letters, digits, spaces, '-' and '_' (Unicode letters and digits allowed).
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || c == '-' || c == '_'
}

/// Discord's own mentions: a name or alias `everyone` would answer every `@everyone`.
pub(crate) fn refuse_reserved_key(field: &'static str, key: &str) -> Result<(), DomainError> {
    if key == "everyone" || key == "here" {
        return Err(DomainError::invalid(
            field,
            format!("\"{key}\" is Discord's own mention (@{key}); pick another"),
        ));
    }
    Ok(())
}

/// Checks that `text` holds 1 to `max` characters, with the field's user-facing message.
pub(crate) fn require_length(
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<(), DomainError> {
    if text.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    check_max_length(field, text, max)
}

/// Checks that `text` holds at most `max` characters.
pub(crate) fn check_max_length(
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<(), DomainError> {
    let len = char_len(text);
    if len > max {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters (got {len})"),
        ));
    }
    Ok(())
}

/// Gives a validated string newtype its read access, `Display` and serde support that
/// re-validates on the way in (so stored events can never smuggle in an invalid value).
macro_rules! string_value_object {
    ($ty:ident) => {
        impl $ty {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = $crate::domain::DomainError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> Self {
                value.0
            }
        }
    };
}
pub(crate) use string_value_object;
