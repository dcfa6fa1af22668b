//! A streamed answer shown while the model writes it: the first webhook message goes out
//! at a first sentence (or ~100 characters), then is edited at most once a second; past
//! Discord's 2,000 characters the answer continues in a new message. The messages always
//! hold the answer so far split as a finished answer is split ([`split_message`] and the
//! host's message cap), so the last edit leaves exactly what the non-streamed path sends.

use std::time::Duration;

use poise::serenity_prelude as serenity;
use tokio::time::Instant;

use super::split::{at_most, split_message, DISCORD_MESSAGE_LIMIT};
use super::webhooks::{AllowedMentions, WebhookEdit, WebhookError, WebhookManager, WebhookMessage};
use crate::llm::{may_open_thinking, visible_text, DeltaStream, LlmError};

/// The shortest time between two edits of one message.
pub const EDIT_INTERVAL: Duration = Duration::from_secs(1);
/// Ends an answer whose stream broke off midway.
pub const BROKE_OFF: &str = "\n*(The answer broke off here.)*";
/// Shown before the first sentence ends once the answer is this long.
const FIRST_POST_CHARS: usize = 100;

/// How a streamed answer ended.
pub struct Streamed {
    /// The webhook messages holding it, in order (empty when nothing could be shown).
    pub ids: Vec<u64>,
    /// The visible answer (thinking removed, [`BROKE_OFF`] after a break), as the
    /// messages hold it before any cut.
    pub text: String,
    /// Why the stream broke off, if it did.
    pub broken: Option<LlmError>,
}

/// One message of the answer: its id, what it shows, and when it was last changed.
struct Shown {
    id: u64,
    text: String,
    changed_at: Instant,
}

/// The webhook messages of one answer as it grows.
pub struct LiveAnswer<'a> {
    webhooks: &'a WebhookManager,
    channel_id: u64,
    username: String,
    avatar_url: Option<String>,
    max_messages: usize,
    shown: Vec<Shown>,
    /// Stopped when the first message appears.
    typing: Option<serenity::Typing>,
}

impl<'a> LiveAnswer<'a> {
    /// An answer by the personality named `username` in `channel_id`, in at most
    /// `max_messages` messages.
    pub fn new(
        webhooks: &'a WebhookManager,
        channel_id: u64,
        username: String,
        avatar_url: Option<String>,
        max_messages: usize,
        typing: Option<serenity::Typing>,
    ) -> Self {
        Self {
            webhooks,
            channel_id,
            username,
            avatar_url,
            max_messages: max_messages.max(1),
            shown: Vec::new(),
            typing,
        }
    }

    /// Reads the model's answer from `deltas` and shows it as it grows.
    pub async fn stream(mut self, mut deltas: Box<DeltaStream>) -> Result<Streamed, WebhookError> {
        let mut raw = String::new();
        let mut due: Option<Instant> = None;
        let broken = loop {
            // `DeltaStream::next` keeps no state across an await, so losing the race to
            // the edit timer loses nothing.
            let next = match due {
                Some(at) => tokio::select! {
                    next = deltas.next() => Some(next),
                    () = tokio::time::sleep_until(at) => None,
                },
                None => Some(deltas.next().await),
            };
            match next {
                Some(None) => break None,
                Some(Some(Ok(piece))) => raw.push_str(&piece),
                Some(Some(Err(e))) => break Some(e),
                None => {}
            }
            if may_open_thinking(&raw) {
                continue;
            }
            let visible = visible_text(&raw);
            if split_message(&visible, DISCORD_MESSAGE_LIMIT).len() > self.max_messages {
                // The rest would be cut anyway: stop paying for it.
                break None;
            }
            if self.shown.is_empty() && !worth_showing(&visible) {
                continue;
            }
            due = self.show(&visible, false).await?;
        };
        let mut visible = visible_text(&raw).trim().to_owned();
        if visible.is_empty() {
            // Nothing to show: the caller sends its apology.
            return Ok(Streamed {
                ids: Vec::new(),
                text: visible,
                broken,
            });
        }
        if broken.is_some() {
            visible.push_str(BROKE_OFF);
        }
        self.show(&visible, true).await?;
        Ok(Streamed {
            ids: self.shown.iter().map(|m| m.id).collect(),
            text: visible,
            broken,
        })
    }

    /// Brings the messages up to `visible`: new messages are posted at once; a changed
    /// message is edited when its last change is [`EDIT_INTERVAL`] old (`last`: after
    /// waiting for that). Returns when the next held-back edit is due.
    async fn show(&mut self, visible: &str, last: bool) -> Result<Option<Instant>, WebhookError> {
        let chunks = at_most(
            split_message(visible, DISCORD_MESSAGE_LIMIT),
            self.max_messages,
            DISCORD_MESSAGE_LIMIT,
        );
        let mut due = None;
        for (i, chunk) in chunks.into_iter().enumerate() {
            if let Some(message) = self.shown.get_mut(i) {
                if message.text == chunk {
                    continue;
                }
                let allowed = message.changed_at + EDIT_INTERVAL;
                if Instant::now() < allowed {
                    if !last {
                        due = Some(due.map_or(allowed, |d: Instant| d.min(allowed)));
                        continue;
                    }
                    tokio::time::sleep_until(allowed).await;
                }
                let edit = WebhookEdit {
                    content: chunk.clone(),
                    allowed_mentions: AllowedMentions::default(),
                };
                self.webhooks
                    .edit(self.channel_id, message.id, &edit)
                    .await?;
                message.text = chunk;
                message.changed_at = Instant::now();
            } else {
                let post = WebhookMessage {
                    content: chunk.clone(),
                    username: self.username.clone(),
                    avatar_url: self.avatar_url.clone(),
                    allowed_mentions: AllowedMentions::default(),
                };
                let id = self.webhooks.send(self.channel_id, &post).await?;
                if let Some(typing) = self.typing.take() {
                    typing.stop();
                }
                self.shown.push(Shown {
                    id,
                    text: chunk,
                    changed_at: Instant::now(),
                });
            }
        }
        Ok(due)
    }
}

impl Drop for LiveAnswer<'_> {
    fn drop(&mut self) {
        if let Some(typing) = self.typing.take() {
            typing.stop();
        }
    }
}

/// A first sentence, or enough text to read while the rest comes.
fn worth_showing(visible: &str) -> bool {
    let visible = visible.trim_start();
    if visible.chars().count() >= FIRST_POST_CHARS {
        return true;
    }
    let mut chars = visible.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' && !visible.trim_end().is_empty() {
            return true;
        }
        if matches!(c, '.' | '!' | '?' | '…') && chars.peek().is_some_and(|n| n.is_whitespace()) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_sentence_or_a_hundred_characters_is_worth_showing() {
        assert!(!worth_showing("Hello"));
        assert!(!worth_showing("Hello."));
        assert!(worth_showing("Hello. "));
        assert!(worth_showing("Well!\nThen"));
        assert!(!worth_showing("version 1.2"));
        assert!(worth_showing(&"a".repeat(100)));
        assert!(!worth_showing("  \n"));
    }
}
