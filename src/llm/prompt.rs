//! Turns a personality's prompt and the conversation around a message into the messages
//! sent to the model, within a size budget.

use super::ChatMessage;

/// A message of the conversation so far (the reply chain or recent channel messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextMessage {
    /// Who wrote it, as Discord shows them.
    pub author_name: String,
    /// True when the personality itself wrote it: it becomes the model's own turn.
    pub is_personality: bool,
    /// What it says.
    pub content: String,
}

impl ContextMessage {
    /// A message written by a member (or by another personality).
    pub fn user(author_name: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            author_name: author_name.into(),
            is_personality: false,
            content: content.into(),
        }
    }

    /// A message the personality itself wrote.
    pub fn personality(author_name: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            author_name: author_name.into(),
            is_personality: true,
            content: content.into(),
        }
    }

    /// How many characters [`Self::to_chat`] produces, without building it.
    fn chat_len(&self) -> usize {
        let content = self.content.chars().count();
        if self.is_personality {
            content
        } else {
            self.author_name.chars().count() + 2 + content
        }
    }

    /// The personality's own words go back as they were; others' carry their name so
    /// the model can tell the speakers of a channel apart.
    fn to_chat(&self) -> ChatMessage {
        if self.is_personality {
            ChatMessage::assistant(self.content.clone())
        } else {
            ChatMessage::user(format!("{}: {}", self.author_name, self.content))
        }
    }
}

/// The messages for one completion: the personality's prompt as the system message (or
/// "You are {display name}." when it has none), then as much of `context` (oldest first)
/// as fits, then the user's message.
///
/// `budget_chars` bounds the characters of the conversation, system prompt excluded. The
/// user's message always goes in (cut short if it alone is over budget); context
/// messages are taken newest first until the next one doesn't fit, so the model sees
/// the most recent, unbroken part of the conversation.
pub fn build_messages(
    system_prompt: &str,
    personality_display_name: &str,
    context: &[ContextMessage],
    user_message: &ContextMessage,
    budget_chars: usize,
) -> Vec<ChatMessage> {
    let system = if system_prompt.trim().is_empty() {
        format!("You are {personality_display_name}.")
    } else {
        system_prompt.to_owned()
    };

    let mut user = user_message.to_chat();
    let user_len = user_message.chat_len();
    if user_len > budget_chars {
        user.content = truncate(&user.content, budget_chars);
    }
    let mut remaining = budget_chars.saturating_sub(user_len);

    let mut kept = Vec::new();
    for message in context.iter().rev() {
        if message.content.trim().is_empty() {
            // Attachments-only messages and the like say nothing to the model.
            continue;
        }
        let len = message.chat_len();
        if len > remaining {
            break;
        }
        remaining -= len;
        kept.push(message.to_chat());
    }

    let mut messages = Vec::with_capacity(kept.len() + 2);
    messages.push(ChatMessage::system(system));
    messages.extend(kept.into_iter().rev());
    messages.push(user);
    messages
}

/// The start of `text` in at most `max_chars` characters, '…' marking the cut; never
/// empty, since some endpoints refuse empty messages.
fn truncate(text: &str, max_chars: usize) -> String {
    let keep = max_chars.saturating_sub(1);
    let cut = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Role;

    fn contents(messages: &[ChatMessage]) -> Vec<(Role, &str)> {
        messages
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect()
    }

    #[test]
    fn the_prompt_context_and_message_come_in_order_with_roles() {
        let context = [
            ContextMessage::user("Ann", "hi Aria"),
            ContextMessage::personality("Aria", "Hello Ann!"),
            ContextMessage::user("Bob", "me too"),
        ];
        let messages = build_messages(
            "You are Aria.",
            "Aria",
            &context,
            &ContextMessage::user("Ann", "how are you?"),
            10_000,
        );
        assert_eq!(
            contents(&messages),
            [
                (Role::System, "You are Aria."),
                (Role::User, "Ann: hi Aria"),
                (Role::Assistant, "Hello Ann!"),
                (Role::User, "Bob: me too"),
                (Role::User, "Ann: how are you?"),
            ]
        );
    }

    #[test]
    fn an_empty_prompt_falls_back_to_the_display_name() {
        let messages = build_messages(" ", "Aria", &[], &ContextMessage::user("Ann", "hi"), 100);
        assert_eq!(messages[0].content, "You are Aria.");
    }

    #[test]
    fn the_newest_context_that_fits_is_kept_in_chronological_order() {
        // Each formatted message is 10 characters: "Ann: 12345".
        let context: Vec<_> = (1..=5)
            .map(|i| ContextMessage::user("Ann", format!("{i}{i}{i}{i}{i}")))
            .collect();
        let user = ContextMessage::user("Bob", "hello");
        // "Bob: hello" costs 10, leaving 25: two context messages fit, not three.
        let messages = build_messages("p", "Aria", &context, &user, 35);
        assert_eq!(
            contents(&messages),
            [
                (Role::System, "p"),
                (Role::User, "Ann: 44444"),
                (Role::User, "Ann: 55555"),
                (Role::User, "Bob: hello"),
            ]
        );
    }

    #[test]
    fn an_older_message_is_not_kept_once_a_newer_one_did_not_fit() {
        let context = [
            ContextMessage::user("A", "x"),
            ContextMessage::user("A", "a very long message that cannot fit"),
        ];
        let messages = build_messages("p", "Aria", &context, &ContextMessage::user("B", "y"), 10);
        assert_eq!(
            contents(&messages),
            [(Role::System, "p"), (Role::User, "B: y")]
        );
    }

    #[test]
    fn an_over_budget_user_message_is_cut_and_kept_alone() {
        let context = [ContextMessage::user("A", "earlier")];
        let long = "é".repeat(100);
        let messages = build_messages(
            "p",
            "Aria",
            &context,
            &ContextMessage::user("Bob", long),
            20,
        );
        assert_eq!(messages.len(), 2);
        let sent = &messages[1].content;
        assert_eq!(sent.chars().count(), 20);
        assert!(sent.starts_with("Bob: éé") && sent.ends_with('…'), "{sent}");
    }

    #[test]
    fn a_zero_budget_still_sends_a_non_empty_user_message() {
        let messages = build_messages("p", "Aria", &[], &ContextMessage::user("Bob", "hi"), 0);
        assert_eq!(messages[1].content, "…");
    }

    #[test]
    fn empty_context_messages_are_skipped() {
        let context = [
            ContextMessage::user("A", "first"),
            ContextMessage::user("A", "  "),
        ];
        let messages = build_messages("p", "Aria", &context, &ContextMessage::user("B", "y"), 100);
        assert_eq!(
            contents(&messages),
            [
                (Role::System, "p"),
                (Role::User, "A: first"),
                (Role::User, "B: y")
            ]
        );
    }
}
