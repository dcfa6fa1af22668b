//! A plain map of normalized keys, the reference the bot's cache is compared with.

use std::collections::HashMap;

use personae::routing::mention::{AliasLookup, Found};

/// Normalized keys and their targets. It can't tell whether a longer key starts with a
/// given one, so the parser tries every span after an '@'.
pub struct PlainIndex<T>(pub HashMap<String, T>);

impl<T: Clone> AliasLookup for PlainIndex<T> {
    type Target = T;

    fn lookup_prefix(&self, key: &str) -> Found<T> {
        Found {
            target: self.0.get(key).cloned(),
            longer: true,
        }
    }

    fn max_words(&self) -> usize {
        self.0
            .keys()
            .map(|k| k.split(' ').count())
            .max()
            .unwrap_or(0)
    }

    fn max_chars(&self) -> usize {
        self.0.keys().map(|k| k.chars().count()).max().unwrap_or(0)
    }
}

impl<K: Into<String>, T> FromIterator<(K, T)> for PlainIndex<T> {
    fn from_iter<I: IntoIterator<Item = (K, T)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }
}
