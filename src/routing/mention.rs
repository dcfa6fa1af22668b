//! Finds the `@alias` a message is addressed to. This runs on every message the bot sees,
//! so its cost depends only on the message and the longest alias, never on how many
//! aliases exist: after each '@' it looks the next words up as normalized keys, one word
//! more only while a longer alias can still match (one look-up for a one-word alias).

use std::cell::RefCell;
use std::ops::Range;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

use crate::domain::push_key;

/// Where the parser looks aliases up. Keys are given in the normal form of
/// [`crate::domain::lookup_key`].
pub trait AliasLookup {
    /// What an alias points at, e.g. a personality id.
    type Target;

    /// The target of this key, and whether a longer alias starts with the key and a space.
    /// The parser adds words after an '@' only while one does, so a one-word mention costs
    /// one look-up; an index that can't tell answers `longer: true`.
    fn lookup_prefix(&self, key: &str) -> Found<Self::Target>;

    /// The most words any alias has; the parser never tries longer spans.
    fn max_words(&self) -> usize;

    /// The most characters any alias has; longer spans are never looked up.
    fn max_chars(&self) -> usize;
}

/// What one look-up of [`AliasLookup::lookup_prefix`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found<T> {
    /// The key's target, when the key is an alias.
    pub target: Option<T>,
    /// Whether some longer alias starts with the key and a space.
    pub longer: bool,
}

/// An `@alias` found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention<T> {
    /// Whom the alias points at.
    pub target: T,
    /// The bytes of the message from the '@' to the end of the alias.
    pub range: Range<usize>,
}

impl<T> Mention<T> {
    /// The message without the mention (see [`text_without_mention`]).
    pub fn text_without(&self, content: &str) -> String {
        text_without_mention(content, &self.range)
    }
}

/// `content` without the mention at `range` (the bytes from the '@' to the end of the
/// alias), tidied so the model doesn't see a dangling comma or doubled spaces ("@aria, hi"
/// → "hi", "hey @aria how" → "hey how"). A free function, so that a caller that kept only
/// the range (a `Route`) needs no `Mention` to call it.
pub fn text_without_mention(content: &str, range: &Range<usize>) -> String {
    // A range that doesn't fit the text (never one the parser returned) strips nothing.
    let (Some(before), Some(after)) = (content.get(..range.start), content.get(range.end..)) else {
        return content.trim().to_owned();
    };
    let before = before.trim_end();
    let mut after = after.trim_start();
    if before.is_empty() {
        // A mention used as a salutation is usually followed by one of these.
        after = after.trim_start_matches([',', ':', ';']).trim_start();
        return after.trim_end().to_owned();
    }
    if after.is_empty() {
        return before.to_owned();
    }
    let glue = if after.starts_with(|c: char| c.is_alphanumeric()) {
        " "
    } else {
        ""
    };
    format!("{before}{glue}{}", after.trim_end())
}

/// Finds the first `@alias` in `content` that `lookup` knows. At the first '@' that
/// matches, the longest alias wins; at most one mention is returned.
///
/// An '@' only starts a mention at the start of the text or after whitespace or
/// punctuation, so e-mail addresses, URLs like `…/@user` and Discord's own `<@123>`
/// mentions are skipped. The alias must end at a word boundary: "@aria, hi" and
/// "@aria!" mention "aria", "@arianna" doesn't.
pub fn find_mention<L>(content: &str, lookup: &L) -> Option<Mention<L::Target>>
where
    L: AliasLookup + ?Sized,
{
    // Most messages mention nobody: a memchr, no allocation.
    if !content.contains('@') {
        return None;
    }
    let max_words = lookup.max_words();
    if max_words == 0 {
        return None;
    }
    KEY.with(|cell| match cell.try_borrow_mut() {
        Ok(mut key) => scan(content, lookup, &mut key),
        // Only reachable if a lookup itself parses mentions; correct, just not reused.
        Err(_) => scan(content, lookup, &mut String::new()),
    })
}

thread_local! {
    /// The normalized words after the current '@', kept per thread so that a scan
    /// allocates nothing once warm.
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

fn scan<L>(content: &str, lookup: &L, key: &mut String) -> Option<Mention<L::Target>>
where
    L: AliasLookup + ?Sized,
{
    let max_words = lookup.max_words();
    let max_chars = lookup.max_chars();
    for (at, _) in content.match_indices('@') {
        if !may_start_mention(&content[..at]) {
            continue;
        }
        // Shortest span first, one more word only while a longer alias may still match;
        // the longest span that is an alias wins.
        key.clear();
        let mut words = Words::new(content, at + 1, max_words, max_chars);
        let mut found = None;
        while let Some(end) = words.next(key) {
            let step = lookup.lookup_prefix(key);
            if let Some(target) = step.target {
                found = Some(Mention {
                    target,
                    range: at..end,
                });
            }
            if !step.longer {
                break;
            }
        }
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Whether an '@' preceded by `before` can start a mention: not inside a word (e-mail
/// addresses), a URL path (`…/@user`) or a Discord mention (`<@123>`).
fn may_start_mention(before: &str) -> bool {
    match before.chars().next_back() {
        None => true,
        Some(c) => !(is_word_char(c) || c == '<' || c == '/'),
    }
}

/// The words after an '@', normalized one at a time and only when asked for: most
/// mentions are settled by their first word.
struct Words<'a> {
    content: &'a str,
    /// Where the next word starts.
    pos: usize,
    taken: usize,
    word_limit: usize,
    max_chars: usize,
    /// Normalization can merge a letter and its accents, so the raw word may be longer
    /// than the alias it normalizes to; this bound still keeps the work per '@' small.
    max_raw_chars: usize,
    key_chars: usize,
    done: bool,
}

impl<'a> Words<'a> {
    /// Words from byte `from` on: at most `max_words`, at most `max_chars` characters once
    /// normalized.
    fn new(content: &'a str, from: usize, max_words: usize, max_chars: usize) -> Self {
        Self {
            content,
            pos: from,
            taken: 0,
            word_limit: max_words,
            max_chars,
            max_raw_chars: max_chars.saturating_mul(4).saturating_add(8),
            key_chars: 0,
            done: false,
        }
    }

    /// Appends the next word to `key` (after a space if `key` has words) and returns the
    /// byte in the message after it; `None` when the span can't grow. Words are separated
    /// by whitespace; any other character ends the span.
    fn next(&mut self, key: &mut String) -> Option<usize> {
        if self.done || self.taken >= self.word_limit {
            return None;
        }
        self.done = true;
        let rest = &self.content[self.pos..];
        let mut word_len = rest.len();
        for (count, (i, c)) in rest.char_indices().enumerate() {
            if !is_word_char(c) {
                word_len = i;
                break;
            }
            if count >= self.max_raw_chars {
                return None;
            }
        }
        if word_len == 0 {
            return None;
        }
        if !key.is_empty() {
            key.push(' ');
            self.key_chars += 1;
        }
        self.key_chars += push_key(&rest[..word_len], key);
        if self.key_chars > self.max_chars {
            return None;
        }
        let word_end = self.pos + word_len;
        self.taken += 1;
        let after = &self.content[word_end..];
        let spaces = after.len() - after.trim_start().len();
        // Punctuation or the end of the text: the alias can't go on.
        if spaces > 0 {
            self.pos = word_end + spaces;
            self.done = false;
        }
        Some(word_end)
    }
}

/// A character that can be part of an alias word, before normalization: letters, digits,
/// '-', '_', combining marks, and compatibility forms of those (e.g. "ﬁ").
fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '-' || c == '_';
    }
    if c.is_alphanumeric() || is_combining_mark(c) {
        return true;
    }
    let mut any = false;
    let mut all = true;
    decompose_compatible(c, |d| {
        any = true;
        all &= d != c && (d.is_alphanumeric() || d == '-' || d == '_' || is_combining_mark(d));
    });
    any && all
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::{lookup_key, Alias};
    use proptest::prelude::*;

    /// Normalized keys, each its own target.
    struct Keys(HashMap<String, String>);

    impl AliasLookup for Keys {
        type Target = String;

        fn lookup_prefix(&self, key: &str) -> Found<String> {
            let longer = self.0.keys().any(|k| {
                k.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with(' '))
            });
            Found {
                target: self.0.get(key).cloned(),
                longer,
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

    fn index(aliases: &[&str]) -> Keys {
        Keys(
            aliases
                .iter()
                .map(|a| (lookup_key(a), lookup_key(a)))
                .collect(),
        )
    }

    fn found(content: &str, aliases: &[&str]) -> Option<(String, String)> {
        find_mention(content, &index(aliases)).map(|m| (m.target, content[m.range].to_owned()))
    }

    #[allow(clippy::unnecessary_wraps)] // Compared with `found`, which may find nothing.
    fn pair(target: &str, text: &str) -> Option<(String, String)> {
        Some((target.to_owned(), text.to_owned()))
    }

    #[test]
    fn a_mention_at_the_start_is_found_with_its_byte_range() {
        let m = find_mention("@aria hello", &index(&["aria"])).unwrap();
        assert_eq!(m.target, "aria");
        assert_eq!(m.range, 0..5);
    }

    #[test]
    fn mentions_are_case_insensitive_and_nfkc_normalized() {
        assert_eq!(found("@ARIA hi", &["aria"]), pair("aria", "@ARIA"));
        assert_eq!(found("@ＡＲＩＡ hi", &["Aria"]), pair("aria", "@ＡＲＩＡ"));
        assert_eq!(found("@ﬁdo hi", &["fido"]), pair("fido", "@ﬁdo"));
        // A decomposed accent matches the composed alias.
        assert_eq!(
            found("@Zoe\u{0308} hi", &["zoë"]),
            pair("zoë", "@Zoe\u{0308}")
        );
    }

    #[test]
    fn multi_word_aliases_are_found_and_the_longest_wins() {
        let aliases = ["the", "the bard", "the bard of avon"];
        assert_eq!(
            found("@the bard hello", &aliases),
            pair("the bard", "@the bard")
        );
        assert_eq!(
            found("@The  Bard\tof Avon, speak", &aliases),
            pair("the bard of avon", "@The  Bard\tof Avon")
        );
        assert_eq!(found("@the bardic", &aliases), pair("the", "@the"));
        assert_eq!(
            found("@the bard of", &aliases),
            pair("the bard", "@the bard")
        );
    }

    #[test]
    fn punctuation_after_the_alias_ends_it() {
        for (text, mention) in [
            ("@aria, hi", "@aria"),
            ("@aria: hi", "@aria"),
            ("@aria! hi", "@aria"),
            ("@aria's idea", "@aria"),
            ("(@aria)", "@aria"),
            ("\"@aria\"", "@aria"),
            ("hi @aria.", "@aria"),
        ] {
            assert_eq!(found(text, &["aria"]), pair("aria", mention), "{text}");
        }
    }

    #[test]
    fn an_alias_must_end_at_a_word_boundary() {
        assert_eq!(found("@arianna hi", &["aria"]), None);
        assert_eq!(found("@aria-bot hi", &["aria"]), None);
        assert_eq!(
            found("@aria-bot hi", &["aria-bot"]),
            pair("aria-bot", "@aria-bot")
        );
    }

    #[test]
    fn an_alias_at_the_end_of_the_text_is_found() {
        assert_eq!(found("hello @aria", &["aria"]), pair("aria", "@aria"));
        assert_eq!(
            found("hello @the bard", &["the bard"]),
            pair("the bard", "@the bard")
        );
        assert_eq!(found("hello @aria\n", &["aria"]), pair("aria", "@aria"));
    }

    #[test]
    fn email_addresses_urls_and_discord_mentions_are_not_mentions() {
        let aliases = ["aria", "b", "123", "everyone"];
        assert_eq!(found("write to a@b.com", &aliases), None);
        assert_eq!(found("write to aria@aria.com", &aliases), None);
        assert_eq!(found("see https://mastodon.social/@aria", &aliases), None);
        assert_eq!(found("hey <@123> and <@!123>", &aliases), None);
        assert_eq!(found("@here look", &aliases), None);
        // Unless an alias literally is that word.
        assert_eq!(
            found("@everyone look", &aliases),
            pair("everyone", "@everyone")
        );
    }

    #[test]
    fn the_first_matching_at_wins() {
        let aliases = ["aria", "the bard"];
        assert_eq!(
            found("@nobody @the bard and @aria", &aliases),
            pair("the bard", "@the bard")
        );
        assert_eq!(found("@aria @the bard", &aliases), pair("aria", "@aria"));
        assert_eq!(found("@@aria", &aliases), pair("aria", "@aria"));
    }

    #[test]
    fn text_without_an_at_or_an_alias_finds_nothing() {
        let aliases = ["aria"];
        for text in [
            "", "hello", "@", "@ aria", "@,aria", "aria", "@ária", "x@aria",
        ] {
            assert_eq!(found(text, &aliases), None, "{text}");
        }
        assert_eq!(found("@aria", &[]), None);
    }

    #[test]
    fn unicode_text_around_a_mention_keeps_byte_ranges_on_char_boundaries() {
        let text = "héllo 🦀 @Ümlaut 日本 @日本語 ok";
        let m = find_mention(text, &index(&["日本語"])).unwrap();
        assert_eq!(&text[m.range.clone()], "@日本語");
        let m = find_mention(text, &index(&["ümlaut 日本"])).unwrap();
        assert_eq!(&text[m.range], "@Ümlaut 日本");
    }

    #[test]
    fn aliases_longer_than_the_longest_known_are_not_looked_up() {
        let long = "a".repeat(10_000);
        let text = format!("@{long} @aria");
        assert_eq!(found(&text, &["aria"]), pair("aria", "@aria"));
    }

    #[test]
    fn the_mention_is_stripped_tidily() {
        let aliases = index(&["aria"]);
        for (text, stripped) in [
            ("@aria, hi there", "hi there"),
            ("@aria hi", "hi"),
            ("hey @aria how are you", "hey how are you"),
            ("hey @aria, how are you", "hey, how are you"),
            ("thanks @aria", "thanks"),
            ("@aria", ""),
        ] {
            let m = find_mention(text, &aliases).unwrap();
            assert_eq!(m.text_without(text), stripped, "{text}");
        }
    }

    #[test]
    fn the_free_function_strips_like_the_method_and_ignores_a_range_that_does_not_fit() {
        let text = "hey @aria, how are you";
        let m = find_mention(text, &index(&["aria"])).unwrap();
        assert_eq!(text_without_mention(text, &m.range), m.text_without(text));
        assert_eq!(text_without_mention(" héllo ", &(2..3)), "héllo");
        assert_eq!(text_without_mention(" hi ", &(2..99)), "hi");
    }

    #[test]
    fn a_lookup_that_parses_mentions_itself_still_works() {
        struct Nested(Keys);
        impl AliasLookup for Nested {
            type Target = String;
            fn lookup_prefix(&self, key: &str) -> Found<String> {
                // Re-entrant use of the thread's key buffer.
                let _ = find_mention("@inner", &self.0);
                self.0.lookup_prefix(key)
            }
            fn max_words(&self) -> usize {
                self.0.max_words()
            }
            fn max_chars(&self) -> usize {
                self.0.max_chars()
            }
        }
        let nested = Nested(index(&["aria", "inner"]));
        assert_eq!(find_mention("@aria", &nested).unwrap().target, "aria");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics_and_ranges_are_valid(text in "\\PC*") {
            let aliases = index(&["aria", "the bard", "ü", "a"]);
            if let Some(m) = find_mention(&text, &aliases) {
                prop_assert!(text.is_char_boundary(m.range.start));
                prop_assert!(text.is_char_boundary(m.range.end));
                prop_assert!(text[m.range.clone()].starts_with('@'));
                let _ = m.text_without(&text);
            }
        }

        #[test]
        fn any_valid_alias_is_found_after_a_space(alias in "[a-zA-Z0-9_-]{1,10}( [a-zA-Z0-9]{1,8}){0,2}", tail in "[ ,.!?]?[a-z ]{0,10}") {
            let parsed = Alias::parse(&alias).unwrap();
            let idx = index(&[parsed.as_str()]);
            let text = format!("hey @{alias}{tail}");
            let m = find_mention(&text, &idx);
            // A tail starting with a letter extends the last word, so nothing matches then.
            if tail.starts_with(|c: char| c.is_alphanumeric()) {
                prop_assert!(m.is_none());
            } else {
                let m = m.unwrap();
                prop_assert_eq!(&text[m.range], format!("@{alias}"));
            }
        }
    }
}
