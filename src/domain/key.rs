//! The normal form in which names and aliases are unique and matched: NFKC, lowercase, NFKC
//! again, words separated by one space. The store, the commands and the mention parser all
//! use these two functions, so a key is the same wherever it is computed.

use unicode_normalization::UnicodeNormalization;

/// `input` in normal form, trimmed.
pub fn normalize_key(input: &str) -> String {
    let mut key = String::with_capacity(input.len());
    push_key(input, &mut key);
    key
}

/// Appends `text` in normal form to `out`, without a space at either end of what it
/// appends; returns how many characters it appended.
pub fn push_key(text: &str, out: &mut String) -> usize {
    if text.is_ascii() {
        // ASCII is its own NFKC form and stays ASCII when lowercased.
        push_words(
            text.bytes().map(|b| char::from(b.to_ascii_lowercase())),
            out,
        )
    } else {
        push_unicode_key(text, out)
    }
}

fn push_unicode_key(text: &str, out: &mut String) -> usize {
    // NFKC again after lowercasing: lowercase can leave text NFKC would still change
    // ("Ω\u{345}\u{301}"), and a key must normalize to itself.
    push_words(text.nfkc().flat_map(char::to_lowercase).nfkc(), out)
}

/// Appends `chars` with every run of whitespace between two words made one space.
fn push_words(chars: impl Iterator<Item = char>, out: &mut String) -> usize {
    let mut appended = 0;
    let mut space_owed = false;
    for c in chars {
        if c.is_whitespace() {
            space_owed = appended > 0;
            continue;
        }
        if space_owed {
            out.push(' ');
            appended += 1;
            space_owed = false;
        }
        out.push(c);
        appended += 1;
    }
    appended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_lowercase_nfkc_with_single_spaces() {
        assert_eq!(normalize_key("  The \t BARD\n"), "the bard");
        assert_eq!(normalize_key("ＡＲＩＡ"), "aria");
        assert_eq!(normalize_key("Zoe\u{0308}"), "zoë");
        assert_eq!(normalize_key(" \u{3000} "), "");
    }

    #[test]
    fn push_key_appends_and_counts_characters() {
        let mut out = String::from("the");
        out.push(' ');
        assert_eq!(push_key(" Bärd ", &mut out), 4);
        assert_eq!(out, "the bärd");
        assert_eq!(push_key("  ", &mut out), 0);
        assert_eq!(out, "the bärd");
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_fast_path_folds_as_the_unicode_path_does(input in "[\\x00-\\x7f]{0,40}") {
            let (mut fast, mut unicode) = (String::new(), String::new());
            let fast_count = push_key(&input, &mut fast);
            let unicode_count = push_unicode_key(&input, &mut unicode);
            proptest::prop_assert_eq!((fast, fast_count), (unicode, unicode_count));
        }
    }
}
