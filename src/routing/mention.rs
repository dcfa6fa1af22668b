//! Finds the `@alias` a message is addressed to. This runs on every message the bot sees,
//! so its cost depends only on the message and the longest alias, never on how many
//! aliases exist: after each '@' it looks the next words up as keys of a hash map, one word
//! more only while a longer alias can still match (one look-up for a one-word alias).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use unicode_normalization::char::{decompose_compatible, is_combining_mark};
use unicode_normalization::UnicodeNormalization;

/// The longest alias in characters, as `Alias::parse` allows.
pub const MAX_ALIAS_CHARS: usize = 50;

/// Where the parser looks aliases up. Keys are given normalized like `Alias::parse`
/// does: NFKC, lowercase, words separated by one space.
pub trait AliasLookup {
    /// What an alias points at, e.g. a personality id.
    type Target;

    /// The target of this normalized alias, if any.
    fn lookup(&self, key: &str) -> Option<Self::Target>;

    /// The target of this normalized key, and whether a longer alias starts with the key and
    /// a space. The parser adds words after an '@' only while one does, so an index that
    /// knows answers a one-word mention in one look-up; this default says "maybe" and lets
    /// the parser try every span up to [`AliasLookup::max_words`].
    fn lookup_prefix(&self, key: &str) -> Found<Self::Target> {
        Found {
            target: self.lookup(key),
            longer: true,
        }
    }

    /// The most words any alias has; the parser never tries longer spans.
    fn max_words(&self) -> usize;

    /// The most characters any alias has; longer spans are never looked up.
    fn max_chars(&self) -> usize {
        MAX_ALIAS_CHARS
    }
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
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => scan(content, lookup, &mut scratch),
        // Only reachable if a lookup itself parses mentions; correct, just not reused.
        Err(_) => scan(content, lookup, &mut Scratch::default()),
    })
}

/// A `HashMap`-backed [`AliasLookup`] that normalizes aliases on insert.
#[derive(Debug, Clone)]
pub struct AliasIndex<T> {
    map: HashMap<String, T>,
    max_words: usize,
    max_chars: usize,
}

impl<T> Default for AliasIndex<T> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            max_words: 0,
            max_chars: 0,
        }
    }
}

impl<T> AliasIndex<T> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Points `alias` (normalized like `Alias::parse`, a leading '@' dropped) at
    /// `target`; returns the target it pointed at before, if any.
    pub fn insert(&mut self, alias: &str, target: T) -> Option<T> {
        let key = normalize_key(alias);
        // Removals never shrink these: an over-estimate only costs a few lookups.
        self.max_words = self.max_words.max(key.split(' ').count());
        self.max_chars = self.max_chars.max(key.chars().count());
        self.map.insert(key, target)
    }

    /// Forgets `alias`; returns what it pointed at.
    pub fn remove(&mut self, alias: &str) -> Option<T> {
        self.map.remove(&normalize_key(alias))
    }

    /// How many aliases the index holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the index holds no alias.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<T: Clone> AliasLookup for AliasIndex<T> {
    type Target = T;

    fn lookup(&self, key: &str) -> Option<T> {
        self.map.get(key).cloned()
    }

    fn max_words(&self) -> usize {
        self.max_words
    }

    fn max_chars(&self) -> usize {
        self.max_chars
    }
}

impl<S: AsRef<str>, T> FromIterator<(S, T)> for AliasIndex<T> {
    fn from_iter<I: IntoIterator<Item = (S, T)>>(iter: I) -> Self {
        let mut index = Self::new();
        for (alias, target) in iter {
            index.insert(alias.as_ref(), target);
        }
        index
    }
}

/// The same normal form as `Alias::parse`: NFKC, lowercase, whitespace collapsed, a
/// leading '@' dropped.
fn normalize_key(input: &str) -> String {
    let trimmed = input.trim();
    let without_at = trimmed.strip_prefix('@').unwrap_or(trimmed);
    let mut key = String::with_capacity(without_at.len());
    push_normalized(without_at, &mut key);
    key
}

/// The buffers one scan needs, kept per thread so a scan allocates nothing once warm.
#[derive(Default)]
struct Scratch {
    /// The normalized words after the current '@', separated by single spaces.
    key: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch { key: String::new() })
    };
}

fn scan<L>(content: &str, lookup: &L, scratch: &mut Scratch) -> Option<Mention<L::Target>>
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
        scratch.key.clear();
        let mut words = Words::new(content, at + 1, max_words, max_chars);
        let mut found = None;
        while let Some(end) = words.next(&mut scratch.key) {
            let step = lookup.lookup_prefix(&scratch.key);
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
    max_words: usize,
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
            max_words,
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
        if self.done || self.taken >= self.max_words {
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
        self.key_chars += push_normalized(&rest[..word_len], key);
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

/// Appends `text` NFKC-normalized, lowercased, with whitespace runs collapsed to one
/// space and no trailing space; returns how many characters it appended.
fn push_normalized(text: &str, out: &mut String) -> usize {
    let mut added = 0;
    if text.is_ascii() && !text.bytes().any(|b| char::from(b).is_whitespace()) {
        // ASCII is already NFKC: the common case skips the normalizer entirely.
        for b in text.bytes() {
            out.push(char::from(b.to_ascii_lowercase()));
        }
        return text.len();
    }
    // The same folding as `Alias::parse`: NFKC, lowercase, NFKC again.
    for c in text.nfkc().flat_map(char::to_lowercase).nfkc() {
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
                added += 1;
            }
        } else {
            out.push(c);
            added += 1;
        }
    }
    if out.ends_with(' ') {
        out.pop();
        added -= 1;
    }
    added
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
    use super::*;
    use crate::domain::Alias;
    use proptest::prelude::*;

    fn index(aliases: &[&str]) -> AliasIndex<String> {
        aliases
            .iter()
            .map(|a| (*a, normalize_key(a)))
            .collect::<AliasIndex<String>>()
    }

    fn found(content: &str, aliases: &[&str]) -> Option<(String, String)> {
        find_mention(content, &index(aliases)).map(|m| (m.target, content[m.range].to_owned()))
    }

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
    fn index_keys_are_normalized_like_alias_parse() {
        for input in [
            "  The   BARD ",
            "@Aria",
            "ＡＲＩＡ",
            "ﬁdo",
            "Zoe\u{0308}",
            "x_y-z 9",
        ] {
            let parsed = Alias::parse(input).unwrap();
            assert_eq!(normalize_key(input), parsed.as_str(), "{input:?}");
        }
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
        struct Nested(AliasIndex<String>);
        impl AliasLookup for Nested {
            type Target = String;
            fn lookup(&self, key: &str) -> Option<String> {
                // Re-entrant use of the thread's scratch buffer.
                let _ = find_mention("@inner", &self.0);
                self.0.lookup(key)
            }
            fn max_words(&self) -> usize {
                self.0.max_words()
            }
        }
        let nested = Nested(index(&["aria", "inner"]));
        assert_eq!(find_mention("@aria", &nested).unwrap().target, "aria");
    }

    /// Prints the median time per call; run with
    /// `cargo test --release --lib mention -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not correctness"]
    fn median_time_stays_flat_as_aliases_grow() {
        use std::time::Instant;
        let text = format!(
            "{} @the bard of avon tell me more {}",
            "x".repeat(80),
            "y ".repeat(40)
        );
        for count in [10usize, 1_000, 100_000] {
            let mut idx: AliasIndex<usize> =
                (0..count).map(|i| (format!("alias {i}"), i)).collect();
            idx.insert("the bard of avon", usize::MAX);
            let mut samples = Vec::new();
            for _ in 0..200 {
                let start = Instant::now();
                for _ in 0..100 {
                    std::hint::black_box(find_mention(std::hint::black_box(&text), &idx));
                }
                samples.push(start.elapsed() / 100);
            }
            samples.sort();
            println!("{count} aliases: median {:?}", samples[samples.len() / 2]);
        }
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
