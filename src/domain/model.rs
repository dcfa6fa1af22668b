use serde::{Deserialize, Serialize};

use super::text::{require_length, string_value_object};
use super::DomainError;

const FIELD: &str = "model";
const MAX_LEN: usize = 100;

/// The name of an LLM model at the configured endpoint, e.g. `llama3.1:8b` or `openai/gpt-4o`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelName(String);

impl ModelName {
    /// Trims the text and checks it: 1–100 characters of A–Z, a–z, 0–9, '.', '_', ':', '/', '-'.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let model = input.trim();
        require_length(FIELD, model, MAX_LEN)?;
        let allowed =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-');
        if let Some(bad) = model.chars().find(|c| !allowed(*c)) {
            return Err(DomainError::invalid(
                FIELD,
                format!("may only contain A-Z, a-z, 0-9 and . _ : / - (found {bad:?})"),
            ));
        }
        Ok(Self(model.to_owned()))
    }
}

string_value_object!(ModelName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_of_common_providers_are_accepted() {
        for ok in [
            "gpt-4o-mini",
            "llama3.1:8b",
            "openai/gpt-4o",
            "mistral_7b.Q4",
            &"m".repeat(100),
        ] {
            assert_eq!(ModelName::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn empty_long_and_other_characters_are_rejected() {
        for bad in [
            "",
            " ",
            &"m".repeat(101),
            "gpt 4",
            "ünicode",
            "a;b",
            "$(rm)",
        ] {
            let err = ModelName::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("model: "), "{bad}: {err}");
        }
    }
}
