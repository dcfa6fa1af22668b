use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::DomainError;

const FIELD: &str = "extensions";
/// The most bytes the extensions take as JSON.
pub const MAX_EXTENSIONS_BYTES: usize = 64 * 1024;
/// The deepest nesting kept. Stored events must read back within serde_json's own limit
/// of 128 levels, with the event's own levels around the extensions.
pub const MAX_EXTENSIONS_DEPTH: usize = 32;

/// The `extensions` object of a character card a personality was imported from: data of
/// other programs, kept as it came so that exporting the personality as a card again
/// hands it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "Map<String, Value>")]
pub struct CardExtensions(Map<String, Value>);

impl CardExtensions {
    /// Checks the object's size and depth.
    pub fn parse(object: Map<String, Value>) -> Result<Self, DomainError> {
        let deepest = object.values().map(|v| depth(v, 1)).max().unwrap_or(1);
        if deepest > MAX_EXTENSIONS_DEPTH {
            return Err(DomainError::invalid(
                FIELD,
                format!("nested deeper than {MAX_EXTENSIONS_DEPTH} levels"),
            ));
        }
        // A map of JSON values always serializes; a failure would count as too large.
        let bytes = serde_json::to_string(&object).map_or(usize::MAX, |text| text.len());
        if bytes > MAX_EXTENSIONS_BYTES {
            return Err(DomainError::invalid(
                FIELD,
                format!("larger than {MAX_EXTENSIONS_BYTES} bytes"),
            ));
        }
        Ok(Self(object))
    }

    /// The extensions as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// How deep `value` nests below `level`, stopping as soon as it passes the limit: the
/// value came from serde_json, whose own limit of 128 levels bounds the recursion.
fn depth(value: &Value, level: usize) -> usize {
    if level > MAX_EXTENSIONS_DEPTH {
        return level;
    }
    let children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(fields) => Box::new(fields.values()),
        _ => return level,
    };
    children
        .map(|child| depth(child, level + 1))
        .max()
        .unwrap_or(level + 1)
}

impl TryFrom<Map<String, Value>> for CardExtensions {
    type Error = DomainError;

    fn try_from(object: Map<String, Value>) -> Result<Self, Self::Error> {
        Self::parse(object)
    }
}

impl From<CardExtensions> for Map<String, Value> {
    fn from(extensions: CardExtensions) -> Self {
        extensions.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("an object"),
        }
    }

    #[test]
    fn extensions_are_kept_as_they_came() {
        let map = object(json!({"talkativeness": "0.5", "depth_prompt": {"depth": 4}}));
        let extensions = CardExtensions::parse(map.clone()).unwrap();
        assert_eq!(extensions.as_map(), &map);
    }

    #[test]
    fn deeply_nested_extensions_are_refused() {
        let mut value = json!(1);
        for _ in 0..MAX_EXTENSIONS_DEPTH {
            value = json!([value]);
        }
        assert!(CardExtensions::parse(object(json!({ "a": value.clone() }))).is_err());
        assert!(CardExtensions::parse(object(json!({ "a": value[0].clone() }))).is_ok());
    }

    #[test]
    fn large_extensions_are_refused() {
        let map = object(json!({"blob": "x".repeat(MAX_EXTENSIONS_BYTES)}));
        let err = CardExtensions::parse(map).unwrap_err();
        assert!(err.to_string().starts_with("extensions: "), "{err}");
    }
}
