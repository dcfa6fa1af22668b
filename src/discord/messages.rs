//! The message path: a message arrives, routing decides whether a personality answers,
//! the LLM writes the answer, a webhook sends it under the personality's name.

use std::time::Instant;

use chrono::Utc;
use poise::serenity_prelude as serenity;
use tracing::{debug, info, info_span, warn, Instrument};

use super::attached;
use super::costs::OverLimit;
use super::split::{at_most, split_message, DISCORD_MESSAGE_LIMIT};
use super::streaming::{LiveAnswer, BROKE_OFF};
use super::webhooks::{AllowedMentions, WebhookMessage};
use super::{BotError, Data};
use crate::cache::ProfileInfo;
use crate::conversation::Answered;
use crate::domain::{ChannelId, ChannelMode, MaxTokens, PersonalityId, Temperature};
use crate::llm::{
    build_messages, visible_text, Answer, ChatMessage, ChatRequest, ContextMessage, DeltaStream,
    LlmError,
};
use crate::routing::{further_mentions, route, Incoming, Route};

/// How many characters of conversation go to the model besides the prompt.
const CONTEXT_BUDGET_CHARS: usize = 8_000;
/// Sent when the LLM fails; never shown to the model as the personality's words.
const APOLOGY: &str =
    "(I can't answer right now — my thoughts are stuck. Please try again in a moment.)";
/// A notice the bot has sent for an empty answer: recognised in channel history so it
/// never reaches the model.
const NOTHING_TO_SAY: &str = "(I have nothing to say to that.)";
/// The start of the notice a user over the call limit gets.
const SLOW_DOWN: &str = "You're talking faster than the personalities can think.";
/// The start of the notice for a server over its limit.
const BUSY_SERVER: &str =
    "The personalities of this server have answered as much as they may for now.";
/// How far up a reply chain we follow.
const REPLY_CHAIN_DEPTH: usize = 5;

/// Handles one MESSAGE_CREATE: answers it if it addresses a personality.
pub async fn on_message(
    ctx: &serenity::Context,
    data: &Data,
    message: &serenity::Message,
) -> Result<(), BotError> {
    let incoming = incoming(message);
    let Some(first) = route(&incoming, &data.app.cache, &data.app.tracker, Utc::now()) else {
        return Ok(());
    };
    let settings = incoming.server.map(|server| data.app.settings.get(server));
    if let Some(settings) = &settings {
        if settings.channels != ChannelMode::All {
            let listed_as = super::channels::listed_as(ctx, message.channel_id).await?;
            if !ChannelId::new(listed_as).is_ok_and(|c| settings.allows_channel(c)) {
                debug!("this server's settings keep personalities out of this channel");
                return Ok(());
            }
        }
    }
    let further = further_mentions(&incoming, &first, &data.app.cache, data.max_personalities);
    // Each mentioned personality answers in turn, in mention order.
    for route in std::iter::once(first).chain(further) {
        let Some(personality) = data.app.cache.get(route.personality) else {
            continue;
        };
        if personality.scope.is_global() && settings.as_ref().is_some_and(|s| !s.globals) {
            debug!(personality = %personality.name, "global personalities are off in this server");
            continue;
        }
        if personality.nsfw && !super::channels::age_restricted(ctx, message.channel_id).await? {
            debug!(personality = %personality.name, "an NSFW personality stays silent outside age-restricted channels");
            continue;
        }
        let span = info_span!("reply", message_id = message.id.get(), personality = %personality.name, trigger = ?route.trigger);
        answer(ctx, data, message, &route, &personality)
            .instrument(span)
            .await?;
    }
    Ok(())
}

/// The message as routing reads it.
fn incoming(message: &serenity::Message) -> Incoming<'_> {
    Incoming {
        author_id: message.author.id.get(),
        from_bot_or_webhook: message.author.bot || message.webhook_id.is_some(),
        channel_id: message.channel_id.get(),
        server: message
            .guild_id
            .and_then(|g| crate::domain::ServerId::new(g.get()).ok()),
        content: &message.content,
        replied_to: message
            .message_reference
            .as_ref()
            .and_then(|r| r.message_id)
            .map(poise::serenity_prelude::MessageId::get),
    }
}

/// What `message` says to `personality` as the model reads it, for an answer written again:
/// without the `@alias` that called it, found as the message path found it. `server` is
/// where the message was sent (a message read over REST doesn't say).
pub(super) fn said_to(
    data: &Data,
    message: &serenity::Message,
    server: Option<u64>,
    personality: PersonalityId,
) -> String {
    let mut incoming = incoming(message);
    incoming.server = server.and_then(|s| crate::domain::ServerId::new(s).ok());
    let routes = route(&incoming, &data.app.cache, &data.app.tracker, Utc::now())
        .map(|first| {
            let further =
                further_mentions(&incoming, &first, &data.app.cache, data.max_personalities);
            std::iter::once(first).chain(further).collect::<Vec<_>>()
        })
        .unwrap_or_default();
    routes
        .iter()
        .find(|r| r.personality == personality)
        .map_or_else(
            || message.content.trim().to_owned(),
            |r| r.text_for_model(&message.content),
        )
}

/// A call to the model on its way: the answer (whole, or a stream still to read), the call
/// slot it holds until dropped, when it started and the model asked.
pub(super) struct Asked<'a> {
    pub answer: Result<Answer, LlmError>,
    pub slot: Option<tokio::sync::SemaphorePermit<'a>>,
    pub started: Instant,
    pub model: String,
}

/// Asks the model to answer `message` as `personality`, `said` being what the member said as
/// the model reads it. The request holds the prompt, the conversation before the message,
/// the message with its attachments, and the personality's sampling; the call waits for a
/// free slot. The message path and a regeneration both ask through here.
pub(super) async fn ask<'a>(
    ctx: &serenity::Context,
    data: &'a Data,
    message: &serenity::Message,
    said: String,
    personality: &ProfileInfo,
    stream: bool,
) -> Asked<'a> {
    let context = conversation_context(ctx, data, message, personality.id).await;
    let author_name = message
        .author
        .global_name
        .clone()
        .unwrap_or_else(|| message.author.name.clone());
    let mut messages = build_messages(
        personality.prompt.as_str(),
        personality.display_name.as_str(),
        &context,
        &ContextMessage::user(author_name, said),
        CONTEXT_BUDGET_CHARS,
    );
    if let Some(last) = messages.last_mut() {
        attach(data, message, personality, last).await;
    }
    let model = model_of(data, personality).to_owned();
    let mut request = ChatRequest::new(messages);
    if let Some(model) = &personality.model {
        request = request.with_model(model.as_str());
    }
    request.temperature = personality.temperature.map(Temperature::value);
    request.max_tokens = personality.max_tokens.map(MaxTokens::get);
    let slot = data.costs.slot().await;
    let started = Instant::now();
    let answer = if stream {
        data.llm.stream(request).await
    } else {
        data.llm.complete(request).await.map(Answer::Whole)
    };
    Asked {
        answer,
        slot,
        started,
        model,
    }
}

/// The model the personality answers with: its own, or the host's default.
fn model_of<'a>(data: &'a Data, personality: &'a ProfileInfo) -> &'a str {
    personality
        .model
        .as_ref()
        .map_or(data.llm.default_model(), |m| m.as_str())
}

/// What a member over a call limit is told.
pub(super) fn over_limit_notice(over: &OverLimit) -> String {
    match over {
        OverLimit::Member(wait) => format!(
            "{SLOW_DOWN} Please wait {} seconds and try again.",
            wait.as_secs().max(1)
        ),
        OverLimit::Server(wait) => format!(
            "{BUSY_SERVER} Please wait {} seconds and try again.",
            wait.as_secs().max(1)
        ),
    }
}

/// How long an answer took, for its log line.
struct Timing {
    started: Instant,
    llm: std::time::Duration,
}

async fn answer(
    ctx: &serenity::Context,
    data: &Data,
    message: &serenity::Message,
    route: &Route,
    personality: &ProfileInfo,
) -> Result<(), BotError> {
    let user = message.author.id.get();
    let now = Instant::now();
    if let Err(over) = data
        .costs
        .admit(user, message.guild_id.map(|g| g.get()), now)
    {
        info!(user, limit = ?over, "LLM call limit reached");
        if data.costs.should_notify(user, now) {
            let reply = serenity::CreateMessage::new()
                .content(over_limit_notice(&over))
                .reference_message(message)
                .allowed_mentions(super::reply::no_mentions());
            message.channel_id.send_message(&ctx.http, reply).await?;
        }
        return Ok(());
    }

    let mut timing = Timing {
        started: Instant::now(),
        llm: std::time::Duration::ZERO,
    };
    let mut typing = Some(message.channel_id.start_typing(&ctx.http));
    let said = route.text_for_model(&message.content);
    let Asked {
        answer,
        slot,
        started: llm_started,
        model,
    } = ask(ctx, data, message, said, personality, data.stream).await;
    let channel_id = message.channel_id.get();
    let in_server = message.guild_id.is_some();
    let (reply, shown) = match answer {
        Ok(Answer::Streamed(deltas)) if in_server => {
            let live = LiveAnswer::new(
                &data.webhooks,
                channel_id,
                personality.display_name.to_string(),
                personality.avatar_url.as_ref().map(ToString::to_string),
                data.costs.max_messages,
                typing.take(),
            );
            let streamed = live
                .stream(deltas)
                .await
                .map_err(|e| BotError::Other(e.into()))?;
            timing.llm = llm_started.elapsed();
            data.app
                .metrics
                .llm_call(timing.llm, streamed.broken.as_ref());
            if let Some(e) = &streamed.broken {
                warn!(error = %e, shown_chars = streamed.text.chars().count(), "the answer's stream broke off");
            }
            if streamed.ids.is_empty() {
                // Nothing but thinking, or nothing at all.
                (APOLOGY.to_owned(), None)
            } else {
                (streamed.text, Some(streamed.ids))
            }
        }
        Ok(Answer::Streamed(deltas)) => {
            let (text, broken) = collect(deltas).await;
            timing.llm = llm_started.elapsed();
            data.app.metrics.llm_call(timing.llm, broken.as_ref());
            if let Some(e) = &broken {
                warn!(error = %e, "the answer's stream broke off");
            }
            (shown_text(&text, broken.is_some()), None)
        }
        Ok(Answer::Whole(text)) => {
            timing.llm = llm_started.elapsed();
            data.app.metrics.llm_call(timing.llm, None);
            (shown_text(&text, false), None)
        }
        Err(e) => {
            timing.llm = llm_started.elapsed();
            data.app.metrics.llm_call(timing.llm, Some(&e));
            warn!(error = %e, "the LLM failed");
            (APOLOGY.to_owned(), None)
        }
    };
    drop(slot);
    if let Some(typing) = typing {
        typing.stop();
    }

    let sent = match shown {
        Some(ids) => ids,
        None if in_server => send_as_webhook(data, channel_id, personality, &reply).await?,
        None => send_in_dm(ctx, data, message.channel_id, personality, &reply).await?,
    };
    let answered = Answered {
        member: message.author.id.get(),
        trigger_id: message.id.get(),
        server: message.guild_id.map(serenity::GuildId::get),
        revision: personality.version,
        model,
        llm_ms: u64::try_from(timing.llm.as_millis()).unwrap_or(u64::MAX),
    };
    let tracked = data
        .app
        .tracker
        .record_answer(channel_id, personality.id, sent, answered)
        .await?;
    data.app.metrics.message_answered(route.trigger);
    if !tracked {
        info!("the personality was removed while it answered; the answer is not tracked");
    }
    info!(
        personality = %personality.name,
        server = message.guild_id.map(serenity::GuildId::get),
        channel = channel_id,
        trigger = ?route.trigger,
        llm_ms = timing.llm.as_millis() as u64,
        total_ms = timing.started.elapsed().as_millis() as u64,
        "answered a message"
    );
    Ok(())
}

/// Adds the message's attachments to what the member said (after the context budget: the
/// attachments' own caps bound what they add).
async fn attach(
    data: &Data,
    message: &serenity::Message,
    personality: &ProfileInfo,
    said: &mut ChatMessage,
) {
    if message.attachments.is_empty() {
        return;
    }
    let model = model_of(data, personality);
    let vision = data.vision_models.iter().any(|v| v == model);
    let attached = attached::read(
        &data.downloads,
        &data.attachment_hosts,
        &message.attachments,
        vision,
    )
    .await;
    said.content.push_str(&attached.text);
    said.images = attached.images;
}

/// What members see of a finished answer: the thinking removed, a note after a break,
/// the short apology for an answer that is empty (or was all thinking).
pub(super) fn shown_text(text: &str, broken: bool) -> String {
    let visible = visible_text(text);
    let visible = visible.trim();
    if visible.is_empty() {
        APOLOGY.to_owned()
    } else if broken {
        format!("{visible}{BROKE_OFF}")
    } else {
        visible.to_owned()
    }
}

/// The whole of a streamed answer (for direct messages, which aren't edited as they grow),
/// and why it broke off, if it did.
async fn collect(mut deltas: Box<DeltaStream>) -> (String, Option<LlmError>) {
    let mut text = String::new();
    while let Some(piece) = deltas.next().await {
        match piece {
            Ok(piece) => text.push_str(&piece),
            Err(e) => return (text, Some(e)),
        }
    }
    (text, None)
}

/// Sends the answer under the personality's name and avatar, split to Discord's limit.
async fn send_as_webhook(
    data: &Data,
    channel_id: u64,
    personality: &ProfileInfo,
    reply: &str,
) -> Result<Vec<u64>, BotError> {
    let mut sent = Vec::new();
    for chunk in webhook_chunks(data, reply) {
        let id = data
            .webhooks
            .send(channel_id, &webhook_message(personality, chunk))
            .await
            .map_err(|e| BotError::Other(e.into()))?;
        sent.push(id);
    }
    Ok(sent)
}

/// The messages an answer takes in a server channel: split to Discord's limit, at most the
/// host's number of messages.
pub(super) fn webhook_chunks(data: &Data, reply: &str) -> Vec<String> {
    at_most(
        split_message(reply, DISCORD_MESSAGE_LIMIT),
        data.costs.max_messages,
        DISCORD_MESSAGE_LIMIT,
    )
}

/// One message of an answer, as the personality.
pub(super) fn webhook_message(personality: &ProfileInfo, content: String) -> WebhookMessage {
    WebhookMessage {
        content,
        username: personality.display_name.to_string(),
        avatar_url: personality.avatar_url.as_ref().map(ToString::to_string),
        allowed_mentions: AllowedMentions::default(),
    }
}

/// Direct messages have no webhooks: the bot speaks itself, naming the personality.
async fn send_in_dm(
    ctx: &serenity::Context,
    data: &Data,
    channel: serenity::ChannelId,
    personality: &ProfileInfo,
    reply: &str,
) -> Result<Vec<u64>, BotError> {
    let mut sent = Vec::new();
    for chunk in dm_chunks(data, personality, reply) {
        let message = serenity::CreateMessage::new()
            .content(chunk)
            .allowed_mentions(super::reply::no_mentions());
        sent.push(channel.send_message(&ctx.http, message).await?.id.get());
    }
    Ok(sent)
}

/// The messages an answer takes in a DM: each starts with the personality's name.
pub(super) fn dm_chunks(data: &Data, personality: &ProfileInfo, reply: &str) -> Vec<String> {
    let prefix = format!("**{}:** ", personality.display_name);
    let room = DISCORD_MESSAGE_LIMIT - prefix.chars().count();
    at_most(split_message(reply, room), data.costs.max_messages, room)
        .into_iter()
        .map(|chunk| format!("{prefix}{chunk}"))
        .collect()
}

/// True for the bot's own notices (the apology, the call limit, …): they are not the
/// personality's words, and the model must not learn to repeat them. In DMs they follow
/// the personality's name.
fn is_notice(content: &str) -> bool {
    let content = content.trim();
    content.ends_with(APOLOGY)
        || content.ends_with(NOTHING_TO_SAY)
        || content.starts_with(SLOW_DOWN)
}

/// The reply chain and the recent channel messages before `message`, oldest first.
/// A failure to read history costs context, not the answer.
async fn conversation_context(
    ctx: &serenity::Context,
    data: &Data,
    message: &serenity::Message,
    personality: PersonalityId,
) -> Vec<ContextMessage> {
    let mut collected: Vec<serenity::Message> = Vec::new();
    // The reply chain, newest first.
    let mut next = message.referenced_message.as_deref().cloned();
    let mut depth = 0;
    while let Some(parent) = next.take() {
        depth += 1;
        let grandparent = parent.message_reference.as_ref().and_then(|r| r.message_id);
        collected.push(parent);
        if depth >= REPLY_CHAIN_DEPTH {
            break;
        }
        if let Some(id) = grandparent {
            match message.channel_id.message(&ctx.http, id).await {
                Ok(m) => next = Some(m),
                Err(e) => warn!(error = %e, "could not read the reply chain"),
            }
        }
    }
    if data.context_messages > 0 {
        let starts_after = data
            .context_starts
            .get(&(message.author.id.get(), message.channel_id.get()))
            .unwrap_or(0);
        let recent = serenity::GetMessages::new()
            .before(message.id)
            .limit(data.context_messages);
        match message.channel_id.messages(&ctx.http, recent).await {
            // After `/reset` only what came later counts; the reply chain is asked for.
            Ok(messages) => {
                collected.extend(messages.into_iter().filter(|m| m.id.get() > starts_after));
            }
            Err(e) => warn!(error = %e, "could not read recent messages"),
        }
    }
    collected.sort_by_key(|m| m.id);
    collected.dedup_by_key(|m| m.id);
    collected
        .into_iter()
        .filter(|m| !m.content.trim().is_empty() && !is_notice(&m.content))
        .map(|m| {
            let name = m
                .author
                .global_name
                .clone()
                .unwrap_or_else(|| m.author.name.clone());
            if data.app.tracker.personality_for_message(m.id.get()) == Some(personality) {
                // The note after a broken answer is the bot's, not the personality's.
                let content = m.content.trim_end();
                let content = content
                    .strip_suffix(BROKE_OFF.trim_start())
                    .unwrap_or(content);
                ContextMessage::personality(name, visible_text(content).trim())
            } else {
                ContextMessage::user(name, m.content)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_answer_is_shown_without_thinking_with_a_note_after_a_break() {
        assert_eq!(shown_text("<think>hm</think> Hi!", false), "Hi!");
        assert_eq!(shown_text("Hi", true), format!("Hi{BROKE_OFF}"));
        assert_eq!(shown_text("<think>only thinking", false), APOLOGY);
        assert_eq!(shown_text("  ", true), APOLOGY);
    }
}
