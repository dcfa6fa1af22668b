//! Decides whether a message addresses a personality, and which one. Runs on every message
//! the bot sees: reads only in-memory state, never the database.

use std::ops::Range;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::mention::{find_mention, text_without_mention, AliasLookup, Found};
use crate::cache::{KeyEntry, ProfileCache};
use crate::conversation::{ConversationTracker, DM_CONVERSATION_TTL, GUILD_CONVERSATION_TTL};
use crate::domain::{PersonalityId, ServerId, UserId};

/// The facts about a message that routing needs.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub author_id: u64,
    /// Bots and webhooks (our own personalities included) never trigger a reply.
    pub from_bot_or_webhook: bool,
    pub channel_id: u64,
    /// The server the message is in; `None` in direct messages.
    pub server: Option<ServerId>,
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

/// The names and aliases a message's author can reach where they write: in a server, its
/// own personalities and the global ones; in a DM, the global ones and the author's own.
pub struct Reachable<'a> {
    pub cache: &'a ProfileCache,
    pub server: Option<ServerId>,
    pub author: u64,
}

impl AliasLookup for Reachable<'_> {
    type Target = PersonalityId;

    fn lookup_prefix(&self, key: &str) -> Found<PersonalityId> {
        let mut entry = self.cache.key_entry(self.server, key);
        if self.server.is_none() {
            let own = self.own_entry(key);
            entry.id = entry.id.or(own.id);
            entry.longer = entry.longer.saturating_add(own.longer);
        }
        Found {
            target: entry.id,
            longer: entry.longer > 0,
        }
    }

    fn max_words(&self) -> usize {
        self.cache.max_words()
    }

    fn max_chars(&self) -> usize {
        self.cache.max_chars()
    }
}

impl Reachable<'_> {
    /// `key` among the author's own personalities (in a DM): a few, looked at one by one.
    fn own_entry(&self, key: &str) -> KeyEntry {
        let mut entry = KeyEntry::default();
        let Ok(author) = UserId::new(self.author) else {
            return entry;
        };
        for p in self.cache.owned_by(author) {
            let name = p.name.key();
            let keys = std::iter::once(name.as_str()).chain(p.aliases.iter().map(|a| a.as_str()));
            for own in keys {
                if own == key {
                    entry.id = Some(p.id);
                } else if own
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with(' '))
                {
                    entry.longer += 1;
                }
            }
        }
        entry
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
    let reachable = Reachable {
        cache,
        server: message.server,
        author: message.author_id,
    };
    if let Some(mention) = find_mention(message.content, &reachable) {
        return Some(Route {
            personality: mention.target,
            trigger: Trigger::Mention,
            mention: Some(mention.range),
        });
    }
    // A reply, a conversation or an activation only counts for a personality the author can
    // reach here (a server's own personality is never reached from another server).
    let known = |id: PersonalityId| {
        UserId::new(message.author_id)
            .is_ok_and(|author| cache.is_usable(id, message.server, author))
    };
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
        let ttl = conversation_ttl(message.server.is_some());
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

/// The other personalities a message mentioned after the one `first` routed it to, in
/// the order of their mentions: "@aria @bard what do you think?" is for both. At most
/// `max` personalities in all, each once. Allocates only when there is another mention.
pub fn further_mentions(
    message: &Incoming<'_>,
    first: &Route,
    cache: &ProfileCache,
    max: usize,
) -> Vec<Route> {
    let mut further: Vec<Route> = Vec::new();
    let Some(first_mention) = first.mention.as_ref() else {
        return further;
    };
    let reachable = Reachable {
        cache,
        server: message.server,
        author: message.author_id,
    };
    let mut from = first_mention.end;
    while further.len() + 1 < max {
        let Some(rest) = message.content.get(from..) else {
            break;
        };
        // An '@' right after an alias is inside a word, as a scan of the whole text sees it.
        if rest.starts_with('@') {
            from += 1;
            continue;
        }
        let Some(mention) = find_mention(rest, &reachable) else {
            break;
        };
        let range = from + mention.range.start..from + mention.range.end;
        from = range.end;
        let seen = mention.target == first.personality
            || further.iter().any(|r| r.personality == mention.target);
        if !seen {
            further.push(Route {
                personality: mention.target,
                trigger: Trigger::Mention,
                mention: Some(range),
            });
        }
    }
    further
}

/// How long a conversation stays active: 30 minutes in servers, 2 hours in DMs.
pub fn conversation_ttl(in_guild: bool) -> Duration {
    if in_guild {
        GUILD_CONVERSATION_TTL
    } else {
        DM_CONVERSATION_TTL
    }
}
