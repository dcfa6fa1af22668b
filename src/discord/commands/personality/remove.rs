//! `/personality remove`: asks with Confirm/Cancel buttons, then removes.

use std::time::Duration;

use futures::StreamExt as _;
use poise::serenity_prelude as serenity;
use poise::CreateReply;

use super::view;
use crate::application::ServiceError;
use crate::discord::commands::autocomplete::changeable_personality;
use crate::discord::commands::{error_text, request};
use crate::discord::{reply, Context, Error};

/// How long the question waits for an answer.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);

/// Remove a personality (asks first; /personality restore brings it back within 30 days).
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
pub async fn remove(
    ctx: Context<'_>,
    #[description = "The personality to remove"]
    #[autocomplete = "changeable_personality"]
    personality: String,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let service = &ctx.data().app.service;
    let target = service.get(request.server, &personality).await?;
    // Refuse at once rather than after a confirmation; the service checks again on removal.
    if !request.may_manage(target.owner_id(), target.scope()) {
        return Err(ServiceError::NotOwner(target.name().to_string()).into());
    }

    let confirm_id = format!("personality-remove-{}-confirm", ctx.id());
    let cancel_id = format!("personality-remove-{}-cancel", ctx.id());
    // Listen before asking, so that no click can arrive before the collector exists.
    let mut answers = serenity::ComponentInteractionCollector::new(ctx)
        .author_id(ctx.author().id)
        .custom_ids(vec![confirm_id.clone(), cancel_id.clone()])
        .timeout(CONFIRM_TIMEOUT)
        .stream();
    let buttons = serenity::CreateActionRow::Buttons(vec![
        serenity::CreateButton::new(confirm_id.clone())
            .label("Confirm")
            .style(serenity::ButtonStyle::Danger),
        serenity::CreateButton::new(cancel_id)
            .label("Cancel")
            .style(serenity::ButtonStyle::Secondary),
    ]);
    let question = CreateReply::default()
        .content(view::remove_question(&target))
        .components(vec![buttons])
        .ephemeral(true)
        .allowed_mentions(reply::no_mentions());
    let handle = ctx.send(question).await?;

    let Some(answer) = answers.next().await else {
        let expired = CreateReply::default()
            .content(view::remove_timed_out(&target))
            .components(Vec::new());
        handle.edit(ctx, expired).await?;
        return Ok(());
    };
    let text = if answer.data.custom_id == confirm_id {
        match service.remove(&request, target.name().as_str()).await {
            Ok(removed) => view::removed(&removed),
            Err(e) => error_text(&e.into(), ctx),
        }
    } else {
        view::remove_cancelled(&target)
    };
    answer
        .create_response(ctx, reply::replace_with_text(text))
        .await?;
    Ok(())
}
