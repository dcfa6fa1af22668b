//! Message actions, in Discord's "Apps" menu on a personality's answer: what produced it,
//! deleting it, and writing it again. Each reads the answer's record from the store by the
//! message's id; a message that isn't a recorded answer gets a short refusal.

use std::sync::Arc;
use std::time::Instant;

use poise::serenity_prelude as serenity;
use tracing::{info, info_span, warn, Instrument};

use super::{member_permissions, request};
use crate::application::RequestContext;
use crate::cache::ProfileInfo;
use crate::conversation::{AnswerRecord, Answered};
use crate::discord::messages::{ask, over_limit_notice, said_to, shown_text, Asked};
use crate::discord::reply::{self, escape_markdown};
use crate::discord::{answer_messages, BotError, Context, Data, Error};
use crate::llm::Answer;

/// The refusal for a message that isn't a recorded answer.
const NOT_AN_ANSWER: &str = "That message isn't a personality's answer.";

/// "Personality info", "Delete answer" and "Regenerate".
pub fn commands() -> Vec<poise::Command<Data, Error>> {
    vec![personality_info(), delete_answer(), regenerate()]
}

/// Which personality wrote this answer, for whom, with which revision and model.
#[poise::command(context_menu_command = "Personality info")]
pub async fn personality_info(ctx: Context<'_>, message: serenity::Message) -> Result<(), Error> {
    let request = request(ctx)?;
    async {
        let (answer, personality) = answer_of(ctx, &message).await?;
        reply::private(ctx, info_text(&answer, &personality)).await
    }
    .instrument(action_span("personality info", &request))
    .await
}

/// Delete this answer: for the member it answered, those who manage the personality, and
/// members with Manage Messages in the channel.
#[poise::command(context_menu_command = "Delete answer")]
pub async fn delete_answer(ctx: Context<'_>, message: serenity::Message) -> Result<(), Error> {
    let request = request(ctx)?;
    async {
        let (answer, personality) = answer_of(ctx, &message).await?;
        let allowed = answer.answered.member == ctx.author().id.get()
            || request.may_manage(personality.owner_id, personality.scope)
            || manages_messages(ctx);
        if !allowed {
            return Err(BotError::user(
                "Only the member it answered, those who manage the personality and members who \
                 can manage messages here may delete this answer.",
            ));
        }
        ctx.defer_ephemeral().await?;
        answer_messages::delete(ctx.serenity_context(), ctx.data(), &answer).await?;
        ctx.data().app.tracker.forget_answer(answer.id).await?;
        info!(
            target: "personae::audit",
            personality = %personality.id,
            channel_id = answer.channel_id,
            messages = answer.message_ids.len(),
            "answer deleted"
        );
        reply::private(
            ctx,
            format!(
                "{}'s answer was deleted.",
                escape_markdown(personality.display_name.as_str())
            ),
        )
        .await
    }
    .instrument(action_span("delete answer", &request))
    .await
}

/// Write this answer again, from the same conversation: for the member it answered.
#[poise::command(context_menu_command = "Regenerate")]
pub async fn regenerate(ctx: Context<'_>, message: serenity::Message) -> Result<(), Error> {
    let request = request(ctx)?;
    async {
        let (answer, personality) = answer_of(ctx, &message).await?;
        let member = ctx.author().id.get();
        if answer.answered.member != member {
            return Err(BotError::user(
                "Only the member it answered may regenerate this answer.",
            ));
        }
        let data = ctx.data();
        if let Err(over) = data
            .costs
            .admit(member, answer.answered.server, Instant::now())
        {
            info!(user = member, limit = ?over, "LLM call limit reached");
            return Err(BotError::user(over_limit_notice(&over)));
        }
        ctx.defer_ephemeral().await?;
        let renewed = write_again(ctx, data, answer, &personality).await?;
        if !data.app.tracker.replace_answer(renewed).await? {
            info!("the personality was removed while it answered again; the answer is not tracked");
        }
        reply::private(
            ctx,
            format!(
                "{}'s answer was written again.",
                escape_markdown(personality.display_name.as_str())
            ),
        )
        .await
    }
    .instrument(action_span("regenerate", &request))
    .await
}

/// Asks the model again for the answer to the same message, shows the new text in the
/// answer's messages and returns the answer's new record.
async fn write_again(
    ctx: Context<'_>,
    data: &Data,
    answer: AnswerRecord,
    personality: &ProfileInfo,
) -> Result<AnswerRecord, Error> {
    let channel = serenity::ChannelId::new(answer.channel_id);
    let trigger = match channel
        .message(
            ctx.http(),
            serenity::MessageId::new(answer.answered.trigger_id),
        )
        .await
    {
        Ok(trigger) => trigger,
        Err(e) if answer_messages::is_unknown_message(&e) => {
            return Err(BotError::user(
                "The message it answered is gone, so it can't be answered again.",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let said = said_to(data, &trigger, answer.answered.server, personality.id);
    let Asked {
        answer: asked,
        slot,
        started,
        model,
    } = ask(
        ctx.serenity_context(),
        data,
        &trigger,
        said,
        personality,
        false,
    )
    .await;
    let llm = started.elapsed();
    let text = match asked {
        Ok(Answer::Whole(text)) => {
            data.app.metrics.llm_call(llm, None);
            shown_text(&text, false)
        }
        Ok(Answer::Streamed(_)) => {
            return Err(BotError::Other(anyhow::anyhow!(
                "a stream came back where a whole answer was asked for"
            )))
        }
        Err(e) => {
            data.app.metrics.llm_call(llm, Some(&e));
            warn!(error = %e, "the LLM failed");
            return Err(BotError::user(
                "The personality can't answer right now, so its answer is unchanged. Please try again in a moment.",
            ));
        }
    };
    drop(slot);
    let message_ids =
        answer_messages::rewrite(ctx.serenity_context(), data, &answer, personality, &text).await?;
    info!(
        target: "personae::audit",
        personality = %personality.id,
        channel_id = answer.channel_id,
        llm_ms = llm.as_millis() as u64,
        "answer regenerated"
    );
    Ok(AnswerRecord {
        message_ids,
        answered: Answered {
            revision: personality.version,
            model,
            llm_ms: u64::try_from(llm.as_millis()).unwrap_or(u64::MAX),
            ..answer.answered.clone()
        },
        ..answer
    })
}

/// The recorded answer `message` is part of, in this channel, and its personality.
async fn answer_of(
    ctx: Context<'_>,
    message: &serenity::Message,
) -> Result<(AnswerRecord, Arc<ProfileInfo>), Error> {
    let data = ctx.data();
    let answer = data
        .app
        .tracker
        .answer_for_message(message.id.get())
        .await?
        .filter(|a| a.channel_id == ctx.channel_id().get())
        .ok_or_else(|| BotError::user(NOT_AN_ANSWER))?;
    let personality = data
        .app
        .cache
        .get(answer.personality)
        .ok_or_else(|| BotError::user(NOT_AN_ANSWER))?;
    Ok((answer, personality))
}

/// What "Personality info" shows: the personality, the member it answered (a mention that
/// pings nobody: replies are sent with no allowed mentions), the revision, the model and
/// the model's time.
fn info_text(answer: &AnswerRecord, personality: &ProfileInfo) -> String {
    let answered = &answer.answered;
    format!(
        "**{}** ({}) answered <@{}>.\nRevision: {}\nModel: {}\nThe model took {} ms.",
        escape_markdown(personality.display_name.as_str()),
        escape_markdown(personality.name.as_str()),
        answered.member,
        answered.revision,
        escape_markdown(&answered.model),
        answered.llm_ms,
    )
}

/// Whether the member may manage messages in the channel.
fn manages_messages(ctx: Context<'_>) -> bool {
    member_permissions(ctx).is_some_and(|p| p.manage_messages())
}

/// The span of one action: which, by whom, for which interaction.
fn action_span(operation: &'static str, request: &RequestContext) -> tracing::Span {
    info_span!(
        "command",
        operation,
        correlation_id = %request.correlation_id,
        actor = %request.actor,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::AnswerId;
    use crate::domain::{PersonalityId, PersonalityName, Prompt, Scope, UserId};

    #[test]
    fn the_info_names_the_personality_the_member_the_revision_the_model_and_the_time() {
        let personality = ProfileInfo {
            id: PersonalityId::new(),
            name: PersonalityName::parse("Aria").unwrap(),
            owner_id: UserId::new(7001).unwrap(),
            scope: Scope::Global,
            display_name: crate::domain::DisplayName::parse("Aria *the* Bard").unwrap(),
            avatar_url: None,
            prompt: Prompt::parse("You sing.").unwrap(),
            model: None,
            nsfw: false,
            temperature: None,
            max_tokens: None,
            aliases: Vec::new(),
            version: 4,
        };
        let answer = AnswerRecord {
            id: AnswerId::new(1),
            personality: personality.id,
            channel_id: 6001,
            message_ids: vec![5001],
            answered: Answered {
                member: 7002,
                trigger_id: 5000,
                server: Some(8001),
                revision: 3,
                model: "gpt_x".into(),
                llm_ms: 42,
            },
            at: chrono::Utc::now(),
        };
        assert_eq!(
            info_text(&answer, &personality),
            "**Aria \\*the\\* Bard** (Aria) answered <@7002>.\nRevision: 3\nModel: gpt\\_x\nThe model took 42 ms."
        );
    }
}
