//! How a personality samples its answers: temperature and the longest answer in tokens.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// How random the model's word choice is: 0 (the likeliest words) to 2, in steps of 0.01.
/// Held in hundredths so two equal temperatures compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Temperature(u16);

impl Temperature {
    const MAX_HUNDREDTHS: u16 = 200;

    /// Reads a number from 0 to 2, e.g. `0.7`.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let value: f64 = input.trim().parse().map_err(|_| {
            DomainError::invalid(
                "temperature",
                format!("\"{}\" is not a number (use e.g. 0.7)", input.trim()),
            )
        })?;
        Self::try_from(value)
    }

    /// The temperature as the API takes it.
    pub fn value(self) -> f32 {
        f32::from(self.0) / 100.0
    }
}

impl TryFrom<f64> for Temperature {
    type Error = DomainError;

    fn try_from(value: f64) -> Result<Self, Self::Error> {
        let hundredths = (value * 100.0).round();
        if !value.is_finite() || !(0.0..=f64::from(Self::MAX_HUNDREDTHS)).contains(&hundredths) {
            return Err(DomainError::invalid(
                "temperature",
                format!("{value} is outside 0 to 2"),
            ));
        }
        // In 0..=200 (checked above), so the conversion is exact.
        Ok(Self(hundredths as u16))
    }
}

impl From<Temperature> for f64 {
    fn from(t: Temperature) -> f64 {
        f64::from(t.0) / 100.0
    }
}

impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", f64::from(*self))
    }
}

/// The longest answer a personality may give, in tokens: a positive whole number. The
/// host's own cap (LLM_MAX_TOKENS) is checked where the host's settings are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct MaxTokens(u32);

impl MaxTokens {
    /// Reads a whole number above zero.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let value: u32 = input.trim().parse().map_err(|_| {
            DomainError::invalid(
                "max_tokens",
                format!("\"{}\" is not a whole number of tokens", input.trim()),
            )
        })?;
        Self::try_from(value)
    }

    /// The number of tokens.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for MaxTokens {
    type Error = DomainError;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        if value == 0 {
            return Err(DomainError::invalid(
                "max_tokens",
                "must be at least 1 token",
            ));
        }
        Ok(Self(value))
    }
}

impl From<MaxTokens> for u32 {
    fn from(m: MaxTokens) -> u32 {
        m.0
    }
}

impl fmt::Display for MaxTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_from_zero_to_two_are_accepted() {
        for (input, value) in [("0", 0.0), ("0.7", 0.7), (" 2 ", 2.0), ("1.234", 1.23)] {
            let t = Temperature::parse(input).unwrap();
            assert!((t.value() - value).abs() < 1e-6, "{input}");
        }
    }

    #[test]
    fn temperatures_outside_the_range_or_not_numbers_are_refused() {
        for bad in ["-0.1", "2.01", "hot", "", "NaN", "inf"] {
            let err = Temperature::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("temperature"), "{bad}: {err}");
        }
    }

    #[test]
    fn max_tokens_must_be_a_positive_whole_number() {
        assert_eq!(MaxTokens::parse("256").unwrap().get(), 256);
        for bad in ["0", "-1", "1.5", "lots"] {
            assert!(MaxTokens::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_checks_again_on_the_way_in() {
        assert_eq!(
            serde_json::to_string(&Temperature::parse("0.7").unwrap()).unwrap(),
            "0.7"
        );
        assert!(serde_json::from_str::<Temperature>("3.5").is_err());
        assert!(serde_json::from_str::<MaxTokens>("0").is_err());
        assert_eq!(serde_json::from_str::<MaxTokens>("64").unwrap().get(), 64);
    }
}
