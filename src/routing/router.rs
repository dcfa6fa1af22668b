//! Decides whether a message addresses a personality, and which one. Runs on every message
//! the bot sees: reads only in-memory state, never the database.

use std::ops::Range;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::mention::{find_mention, text_without_mention, AliasLookup, Found};
use crate::cache::ProfileCache;
use crate::conversation::{ConversationTracker, DM_CONVERSATION_TTL, GUILD_CONVERSATION_TTL};
use crate::domain::PersonalityId;

/// The facts about a message that routing needs.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub author_id: u64,
    /// Bots and webhooks (our own personalities included) never trigger a reply.
    pub from_bot_or_webhook: bool,
    pub channel_id: u64,
    /// False in direct messages.
    pub in_guild: bool,
    pub content: &'a str,
    /// The message this one replies to, if any.
    pub replied_to: Option<u64>,
}

/// Why a personality answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `@alias` in the text.
    Mention,
    /// A reply to one of the personality's messages.
    Reply,
    /// The author is in auto-response mode with an active conversation here.
    AutoResponse,
    /// The personality is activated in this channel.
    Activation,
}

/// A message that a personality should answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub personality: PersonalityId,
    pub trigger: Trigger,
    /// Where the `@alias` is, to leave it out of what the model reads.
    pub mention: Option<Range<usize>>,
}

impl AliasLookup for ProfileCache {
    type Target = PersonalityId;

    fn lookup_prefix(&self, key: &str) -> Found<PersonalityId> {
        let entry = self.key_entry(key);
        Found {
            target: entry.id,
            longer: entry.longer > 0,
        }
    }

    fn max_words(&self) -> usize {
        ProfileCache::max_words(self)
    }

    fn max_chars(&self) -> usize {
        ProfileCache::max_chars(self)
    }
}

impl Route {
    /// The message as the personality should read it: without the `@alias` that called it.
    pub fn text_for_model(&self, content: &str) -> String {
        match &self.mention {
            Some(range) => text_without_mention(content, range),
            None => content.trim().to_owned(),
        }
    }
}

/// The personality the message is for, if any. An explicit `@alias` wins over a reply, a
/// reply over a running conversation, a conversation over a channel activation.
pub fn route(
    message: &Incoming<'_>,
    cache: &ProfileCache,
    tracker: &ConversationTracker,
    now: DateTime<Utc>,
) -> Option<Route> {
    if message.from_bot_or_webhook {
        return None;
    }
    if let Some(mention) = find_mention(message.content, cache) {
        return Some(Route {
            personality: mention.target,
            trigger: Trigger::Mention,
            mention: Some(mention.range),
        });
    }
    let known = |id: PersonalityId| cache.contains(id);
    if let Some(id) = message
        .replied_to
        .and_then(|m| tracker.personality_for_message(m))
        .filter(|id| known(*id))
    {
        return Some(Route {
            personality: id,
            trigger: Trigger::Reply,
            mention: None,
        });
    }
    if tracker.auto_response(message.author_id) {
        let ttl = conversation_ttl(message.in_guild);
        if let Some(id) = tracker
            .active_conversation(message.author_id, message.channel_id, now, ttl)
            .filter(|id| known(*id))
        {
            return Some(Route {
                personality: id,
                trigger: Trigger::AutoResponse,
                mention: None,
            });
        }
    }
    tracker
        .activation(message.channel_id)
        .filter(|id| known(*id))
        .map(|id| Route {
            personality: id,
            trigger: Trigger::Activation,
            mention: None,
        })
}

/// How long a conversation stays active: 30 minutes in servers, 2 hours in DMs.
pub fn conversation_ttl(in_guild: bool) -> Duration {
    if in_guild {
        GUILD_CONVERSATION_TTL
    } else {
        DM_CONVERSATION_TTL
    }
}
