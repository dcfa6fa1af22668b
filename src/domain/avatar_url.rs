use serde::{Deserialize, Serialize};
use url::Url;

use super::text::{require_length, string_value_object};
use super::DomainError;

const FIELD: &str = "avatar_url";
const MAX_LEN: usize = 2048;

/// The picture a personality's webhook messages show: an http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AvatarUrl(String);

impl AvatarUrl {
    /// Checks that the trimmed text is an absolute http or https URL of at most 2048
    /// characters. The URL is stored as typed, not re-serialized.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let text = input.trim();
        require_length(FIELD, text, MAX_LEN)?;
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::invalid(
                FIELD,
                "must not contain spaces or control characters",
            ));
        }
        let url = Url::parse(text)
            .map_err(|e| DomainError::invalid(FIELD, format!("is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DomainError::invalid(
                FIELD,
                format!(
                    "must start with http:// or https:// (not {}:)",
                    url.scheme()
                ),
            ));
        }
        if url.host_str().map_or(true, str::is_empty) {
            return Err(DomainError::invalid(FIELD, "must name a host"));
        }
        Ok(Self(text.to_owned()))
    }
}

string_value_object!(AvatarUrl);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_https_urls_are_accepted_as_typed() {
        for ok in [
            "https://cdn.example.com/a.png",
            "http://example.com/x?y=1#z",
            "https://EXAMPLE.com/A",
        ] {
            assert_eq!(AvatarUrl::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn other_schemes_and_non_urls_are_rejected() {
        for bad in [
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "ftp://example.com/a.png",
            "file:///etc/passwd",
            "example.com/a.png",
            "https://",
            "",
            "https://exa mple.com",
        ] {
            let err = AvatarUrl::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("avatar_url: "), "{bad}: {err}");
        }
    }

    #[test]
    fn urls_longer_than_2048_characters_are_rejected() {
        let base = "https://example.com/";
        let ok = format!("{base}{}", "a".repeat(2048 - base.len()));
        assert!(AvatarUrl::parse(&ok).is_ok());
        let err = AvatarUrl::parse(&format!("{ok}a")).unwrap_err();
        assert!(err.to_string().contains("at most 2048"));
    }
}
