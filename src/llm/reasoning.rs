//! Reasoning models write their thinking between `<think>` and `</think>` before the
//! answer. Members see only the answer, and the thinking is never sent back as context.

use std::borrow::Cow;

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// `text` without its thinking: every `<think>…</think>` block is removed, an unclosed
/// `<think>` hides everything after it (while streaming the block may close later), and
/// text before a `</think>` that was never opened is thinking too (some servers put the
/// opening tag in the prompt template). The answer itself is trimmed at the start.
pub fn visible_text(text: &str) -> Cow<'_, str> {
    if !text.contains("<think>") && !text.contains("</think>") {
        return Cow::Borrowed(text);
    }
    let mut rest = text;
    // A `</think>` before any `<think>` closes thinking that began before the text.
    if let Some(close) = rest.find(CLOSE) {
        if rest.find(OPEN).map_or(true, |open| close < open) {
            rest = &rest[close + CLOSE.len()..];
        }
    }
    let mut shown = String::with_capacity(rest.len());
    while let Some(open) = rest.find(OPEN) {
        shown.push_str(&rest[..open]);
        if let Some(close) = rest[open..].find(CLOSE) {
            rest = &rest[open + close + CLOSE.len()..];
        } else {
            rest = "";
            break;
        }
    }
    shown.push_str(rest);
    Cow::Owned(shown.trim_start().to_owned())
}

/// True while `text` ends inside a thinking block or could still be opening one, so a
/// streamed answer doesn't flash `<thi` before the tag is complete.
pub fn may_open_thinking(text: &str) -> bool {
    let tail_start = text.len().saturating_sub(OPEN.len() - 1);
    let tail = text.get(tail_start..).unwrap_or("");
    (1..OPEN.len()).any(|n| tail.ends_with(&OPEN[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_blocks_are_removed_wherever_they_are() {
        assert_eq!(visible_text("<think>hmm</think>\n\nHello!"), "Hello!");
        assert_eq!(
            visible_text("A <think>x</think>B<think>y</think> C"),
            "A B C"
        );
    }

    #[test]
    fn an_unclosed_block_hides_the_rest() {
        assert_eq!(visible_text("<think>still thinking"), "");
        assert_eq!(visible_text("Hi <think>more"), "Hi ");
    }

    #[test]
    fn a_close_without_an_open_ends_thinking_begun_in_the_template() {
        assert_eq!(visible_text("the user wants x</think>Answer"), "Answer");
    }

    #[test]
    fn text_without_tags_is_not_copied() {
        assert!(matches!(visible_text("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn a_half_written_tag_is_held_back() {
        assert!(may_open_thinking("Hello <thi"));
        assert!(may_open_thinking("<"));
        assert!(!may_open_thinking("Hello"));
        assert!(!may_open_thinking("a < b"));
    }
}
