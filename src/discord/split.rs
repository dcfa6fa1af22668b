//! Splits a long reply into Discord-sized messages at the most natural boundary
//! available, keeping code blocks intact across the split.

/// Discord's limit on a message's length, in characters.
pub const DISCORD_MESSAGE_LIMIT: usize = 2000;

const FENCE: &str = "```";
/// Closes a code block a split left open; its length in characters is its length in bytes.
const CLOSE: &str = "\n```";
/// Longer "languages" after a fence are more likely text than a language tag.
const MAX_LANG_CHARS: usize = 20;

/// Ends the last message of an answer cut to the host's message limit.
pub const CUT_MARKER: &str = "\n*(The rest of this answer was cut: it was too long.)*";

/// At most `max` of `chunks` (at least one): past that the answer is cut, and the last kept
/// message ends with [`CUT_MARKER`], still within `limit` characters.
pub fn at_most(mut chunks: Vec<String>, max: usize, limit: usize) -> Vec<String> {
    let max = max.max(1);
    if chunks.len() <= max {
        return chunks;
    }
    chunks.truncate(max);
    if let Some(last) = chunks.last_mut() {
        let room = limit.saturating_sub(CUT_MARKER.chars().count());
        if last.chars().count() > room {
            *last = last.chars().take(room).collect();
        }
        last.push_str(CUT_MARKER);
    }
    chunks
}

/// Splits `text` into messages of at most `limit` characters (not bytes), trimmed and
/// never empty: at a blank line if one is in the second half of the room, else at a line
/// break there, else at the last whitespace, and only inside a word when a single word
/// is longer than the limit. A split inside a ```` ``` ```` block closes the block and
/// reopens it (with its language) in the next message. A `limit` of 0 counts as 1.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(1);
    let mut chunks = Vec::new();
    let mut rest = text.trim();
    // The language of the code block the previous message left open, if any.
    let mut open: Option<&str> = None;
    while !rest.is_empty() {
        if open.is_some() {
            if let Some(after) = rest.strip_prefix(FENCE) {
                // The block closes right here: reopening it would only show an empty block.
                open = None;
                rest = after.trim_start();
                continue;
            }
        }
        let mut prefix = open.map_or_else(String::new, |lang| format!("{FENCE}{lang}\n"));
        // With a tiny limit there is no room for fences: plain splitting still works.
        let balance = char_len(&prefix) + CLOSE.len() < limit;
        if !balance {
            prefix.clear();
            open = None;
        }
        let room = limit - char_len(&prefix);
        if char_len(rest) <= room {
            chunks.push(prefix + rest);
            break;
        }

        let mut cut = choose_cut(rest, room);
        let mut state = fences_until(open, rest, cut.end);
        if balance && state.open.is_some() {
            cut = choose_cut(rest, room - CLOSE.len());
            state = fences_until(open, rest, cut.end);
            if let Some(start) = state.empty_block_at(rest, cut.end) {
                // Don't end a message with a block that has nothing in it yet.
                cut = Cut {
                    end: start,
                    next: start,
                };
                state = fences_until(open, rest, start);
            }
        }

        let body = rest[..cut.end].trim_end();
        if !body.trim().is_empty() {
            let mut chunk = prefix + body;
            if balance && state.open.is_some() {
                chunk.push_str(CLOSE);
            }
            chunks.push(chunk);
        }
        open = if balance { state.open } else { None };
        rest = if open.is_some() {
            // Indentation inside a code block matters; only the line break goes.
            rest[cut.next..].trim_start_matches(['\r', '\n'])
        } else {
            rest[cut.next..].trim_start()
        };
    }
    chunks
}

/// Where a message ends (`end`, exclusive) and the next one starts (`next`), in bytes.
#[derive(Debug, Clone, Copy)]
struct Cut {
    end: usize,
    next: usize,
}

/// The best cut in `text`, whose first `room` characters fit (`text` is longer).
fn choose_cut(text: &str, room: usize) -> Cut {
    let window_end = text.char_indices().nth(room).map_or(text.len(), |(i, _)| i);
    // A boundary right after the window still leaves the whole window in this message.
    let boundary_end = match text[window_end..].chars().next() {
        Some(c) if c.is_whitespace() => window_end + c.len_utf8(),
        _ => window_end,
    };
    let search = &text[..boundary_end];
    let half = window_end / 2;

    if let Some(i) = search
        .rfind("\n\n")
        .filter(|&i| i >= half && i <= window_end)
    {
        return Cut { end: i, next: i };
    }
    if let Some(i) = search.rfind('\n').filter(|&i| i >= half && i > 0) {
        return Cut { end: i, next: i };
    }
    if let Some((i, c)) = search
        .char_indices()
        .rev()
        .find(|&(i, c)| i > 0 && c.is_whitespace())
    {
        return Cut {
            end: i,
            next: i + c.len_utf8(),
        };
    }
    // One word longer than the room: cut it, but not through a ``` fence.
    let mut end = window_end;
    if text[end..].starts_with('`') {
        let run_start = text[..end].trim_end_matches('`').len();
        if run_start > 0 {
            end = run_start;
        }
    }
    Cut { end, next: end }
}

/// Whether a code block is open at byte `end` of `text`, given the one open at its start.
struct FenceState<'a> {
    /// The language of the open block ("" when it has none).
    open: Option<&'a str>,
    /// Where the open block's fence starts, if it was opened in `text[..end]`.
    opened_at: Option<usize>,
}

impl FenceState<'_> {
    /// The start of the open block's fence when nothing but whitespace follows its
    /// language line before `end`.
    fn empty_block_at(&self, text: &str, end: usize) -> Option<usize> {
        let start = self.opened_at.filter(|&start| start > 0)?;
        let after_fence = &text[start + FENCE.len()..end];
        let content = after_fence.split_once('\n').map_or("", |(_, code)| code);
        content.trim().is_empty().then_some(start)
    }
}

fn fences_until<'a>(open: Option<&'a str>, text: &'a str, end: usize) -> FenceState<'a> {
    let mut state = FenceState {
        open,
        opened_at: None,
    };
    for (i, _) in text[..end].match_indices(FENCE) {
        if state.open.is_some() {
            state.open = None;
            state.opened_at = None;
        } else {
            // Read from the whole text: the cut may fall inside the language tag.
            state.open = Some(language(&text[i + FENCE.len()..]));
            state.opened_at = Some(i);
        }
    }
    state
}

/// The language tag right after an opening fence ("rust" in "```rust\n"), or "".
fn language(after_fence: &str) -> &str {
    let line = after_fence.split('\n').next().unwrap_or("").trim_end();
    let is_tag = !line.is_empty()
        && line.chars().count() <= MAX_LANG_CHARS
        && line
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '+' | '-' | '#' | '_' | '.'));
    if is_tag {
        line
    } else {
        ""
    }
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_past_the_message_limit_is_cut_with_a_marker_within_the_length_limit() {
        let chunks: Vec<String> = (0..5).map(|i| format!("{i}").repeat(2000)).collect();
        let kept = at_most(chunks.clone(), 3, 2000);
        assert_eq!(kept.len(), 3);
        assert_eq!(kept[..2], chunks[..2]);
        assert!(kept[2].ends_with(CUT_MARKER));
        assert_eq!(kept[2].chars().count(), 2000);
        assert_eq!(at_most(chunks[..3].to_vec(), 3, 2000), chunks[..3]);
        assert_eq!(at_most(chunks, 0, 2000).len(), 1, "at least one message");
    }

    fn non_whitespace(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    fn is_subsequence(needle: &str, haystack: &str) -> bool {
        let mut rest = haystack.chars();
        needle.chars().all(|c| rest.any(|h| h == c))
    }

    fn assert_well_formed(chunks: &[String], limit: usize) {
        for chunk in chunks {
            assert!(!chunk.trim().is_empty(), "empty chunk in {chunks:?}");
            assert!(
                char_len(chunk) <= limit,
                "{} > {limit}: {chunk:?}",
                char_len(chunk)
            );
        }
    }

    /// Sentences of ordinary prose, `n` characters or a little more.
    fn prose(n: usize) -> String {
        let sentence = "The quick brown fox jumps over the lazy dog near the river bank. ";
        let mut text = String::new();
        let mut i = 0;
        while text.len() < n {
            text.push_str(sentence);
            i += 1;
            if i % 6 == 0 {
                text.push_str("\n\n");
            }
        }
        text
    }

    #[test]
    fn short_text_is_one_trimmed_message() {
        assert_eq!(split_message("  hello world \n", 2000), ["hello world"]);
        assert_eq!(split_message(&"x".repeat(2000), 2000), ["x".repeat(2000)]);
    }

    #[test]
    fn empty_or_blank_text_gives_no_message() {
        assert!(split_message("", 2000).is_empty());
        assert!(split_message(" \n\t ", 2000).is_empty());
    }

    #[test]
    fn a_2500_character_answer_is_two_messages_keeping_every_word() {
        let text = prose(2500);
        assert!(char_len(&text) >= 2500);
        let chunks = split_message(&text, DISCORD_MESSAGE_LIMIT);
        assert_eq!(chunks.len(), 2);
        assert_well_formed(&chunks, DISCORD_MESSAGE_LIMIT);
        assert_eq!(non_whitespace(&chunks.concat()), non_whitespace(&text));
    }

    #[test]
    fn a_blank_line_is_preferred_over_a_line_break_or_a_space() {
        let text = format!(
            "{}\n\n{}\n{}",
            "a ".repeat(30),
            "b ".repeat(10),
            "c ".repeat(30)
        );
        let chunks = split_message(&text, 100);
        assert_eq!(chunks[0], "a ".repeat(30).trim_end());
        assert_well_formed(&chunks, 100);
    }

    #[test]
    fn a_line_break_is_preferred_over_a_space() {
        let text = format!("{}\n{}", "a ".repeat(30), "b ".repeat(30));
        let chunks = split_message(&text, 80);
        assert_eq!(chunks[0], "a ".repeat(30).trim_end());
        assert_eq!(chunks[1], "b ".repeat(30).trim_end());
    }

    #[test]
    fn a_break_too_early_in_the_room_is_passed_over_for_a_later_space() {
        let text = format!("hi\n\n{}", "word ".repeat(40));
        let chunks = split_message(&text, 100);
        assert!(char_len(&chunks[0]) > 50, "{chunks:?}");
        assert_well_formed(&chunks, 100);
    }

    #[test]
    fn a_single_line_splits_at_word_boundaries() {
        let text = "lorem ipsum dolor sit amet ".repeat(10);
        let chunks = split_message(&text, 50);
        assert_well_formed(&chunks, 50);
        for chunk in &chunks {
            for word in chunk.split(' ') {
                assert!(
                    ["lorem", "ipsum", "dolor", "sit", "amet"].contains(&word),
                    "{word:?}"
                );
            }
        }
    }

    #[test]
    fn only_an_over_long_word_is_cut_inside() {
        let word = "x".repeat(45);
        let chunks = split_message(&format!("short {word} end"), 20);
        assert_eq!(
            chunks,
            [
                "short",
                &word[..20],
                &word[20..40],
                &format!("{} end", &word[40..])
            ]
        );
    }

    #[test]
    fn the_limit_counts_characters_and_never_cuts_inside_one() {
        for text in [
            "é".repeat(5000),
            "🦀".repeat(4001),
            format!("a{}", "日本語".repeat(900)),
        ] {
            let chunks = split_message(&text, DISCORD_MESSAGE_LIMIT);
            assert_well_formed(&chunks, DISCORD_MESSAGE_LIMIT);
            assert_eq!(chunks.concat(), text);
            assert_eq!(char_len(&chunks[0]), DISCORD_MESSAGE_LIMIT);
        }
    }

    #[test]
    fn a_split_inside_a_code_block_closes_and_reopens_it() {
        let code = (0..200).fold(String::new(), |code, i| {
            code + &format!("    let x{i} = {i};\n")
        });
        let text = format!("Here you go:\n\n```rust\n{code}```\n\nHope that helps!");
        let chunks = split_message(&text, 1000);
        assert!(chunks.len() >= 4, "{}", chunks.len());
        assert_well_formed(&chunks, 1000);
        for chunk in &chunks {
            assert_eq!(chunk.matches(FENCE).count() % 2, 0, "unbalanced: {chunk:?}");
        }
        assert!(
            chunks[1].starts_with("```rust\n    let"),
            "{:?}",
            &chunks[1][..20]
        );
        assert!(chunks[0].ends_with("\n```"));
        // Only fences were added; the code and its indentation are intact.
        let rejoined: String = chunks
            .iter()
            .map(|c| c.trim_start_matches("```rust\n").trim_end_matches("\n```"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(rejoined.contains("    let x150 = 150;\n    let x151 = 151;"));
        assert_eq!(
            non_whitespace(&rejoined)
                .replace(FENCE, "")
                .replace("rust", ""),
            non_whitespace(&text).replace(FENCE, "").replace("rust", "")
        );
    }

    #[test]
    fn a_block_without_language_is_reopened_plain() {
        let text = format!("```\n{}```", "line of text\n".repeat(20));
        let chunks = split_message(&text, 100);
        assert_well_formed(&chunks, 100);
        assert!(chunks[1].starts_with("```\nline"), "{chunks:?}");
        for chunk in &chunks {
            assert_eq!(chunk.matches(FENCE).count() % 2, 0, "unbalanced: {chunk:?}");
        }
    }

    #[test]
    fn a_message_never_ends_with_an_empty_block() {
        let text = format!(
            "{}\n```python\n{}```",
            "intro ".repeat(15),
            "print(1)\n".repeat(20)
        );
        let chunks = split_message(&text, 100);
        assert_well_formed(&chunks, 100);
        assert!(!chunks[0].contains(FENCE), "{chunks:?}");
        assert!(chunks[1].starts_with("```python\nprint(1)"), "{chunks:?}");
    }

    #[test]
    fn tiny_limits_still_make_progress() {
        let text = "```rust\nfn main() {}\n```\nsome words here 🦀🦀";
        for limit in 0..12 {
            let chunks = split_message(text, limit);
            assert_well_formed(&chunks, limit.max(1));
            let kept = non_whitespace(&chunks.concat());
            assert!(
                is_subsequence(&non_whitespace(text).replace('`', ""), &kept),
                "{chunks:?}"
            );
        }
    }

    #[test]
    fn arbitrary_text_is_split_into_bounded_non_empty_chunks() {
        // A small deterministic fuzz; no randomness needed to hit the edge cases.
        let pieces = [
            "a", " ", "\n", "\n\n", "```", "```js\n", "é", "🦀", "word", "\t", "`",
        ];
        let mut seed: u64 = 42;
        for _ in 0..500 {
            let mut text = String::new();
            for _ in 0..(seed % 60) {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            for limit in [1, 5, 9, 16, 30] {
                let chunks = split_message(&text, limit);
                assert_well_formed(&chunks, limit);
                let kept = non_whitespace(&chunks.concat());
                let original = non_whitespace(&text).replace('`', "");
                // Reopened fences add characters; every original one is still there, in order.
                assert!(
                    is_subsequence(&original, &kept),
                    "{text:?} / {limit}: {chunks:?}"
                );
            }
        }
    }
}
