//! `/personality prompt`: edit a long, multi-line prompt in a modal. A modal text input
//! holds at most 4000 characters and a prompt up to 6000, so the modal has two inputs and
//! the current prompt is split across them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt as _;
use poise::serenity_prelude as serenity;
use poise::Modal as _;

use super::view;
use crate::application::{ProfileUpdate, ServiceError};
use crate::discord::commands::autocomplete::changeable_personality;
use crate::discord::commands::{error_text, request};
use crate::discord::{reply, Data, Error};

/// The most characters one modal text input holds.
const FIRST_PART_CHARS: usize = 4000;
/// How long the modal may stay open: writing a prompt takes a while.
const MODAL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The modal; the custom ids of its inputs are the field names.
#[derive(Debug, Default, poise::Modal)]
#[name = "Edit the prompt"]
struct PromptModal {
    #[name = "Prompt"]
    #[placeholder = "Who the personality is and how it talks. Empty: no prompt."]
    #[paragraph]
    #[max_length = 4000]
    prompt: Option<String>,
    #[name = "Prompt (continued)"]
    #[placeholder = "More of the prompt, if 4000 characters are not enough."]
    #[paragraph]
    #[max_length = 2000]
    prompt_continued: Option<String>,
}

/// Edit a personality's prompt in a large text box (for long, multi-line prompts).
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
pub async fn prompt(
    ctx: poise::ApplicationContext<'_, Data, Error>,
    #[description = "The personality whose prompt to edit"]
    #[autocomplete = "changeable_personality"]
    personality: String,
) -> Result<(), Error> {
    let request = request(ctx.into())?;
    let service = &ctx.data().app.service;
    let current = service.get(request.server, &personality).await?;
    if !request.may_manage(current.owner_id(), current.scope()) {
        return Err(ServiceError::NotOwner(current.name().to_string()).into());
    }

    let (first, rest) = split_prompt(current.profile().prompt.as_str());
    // An input without a value shows its placeholder; an empty value would hide it.
    let defaults = PromptModal {
        prompt: Some(first).filter(|p| !p.is_empty()),
        prompt_continued: Some(rest).filter(|p| !p.is_empty()),
    };
    let custom_id = format!("personality-prompt-{}", ctx.id());
    // Listen before showing the modal, so that no submission can arrive before the collector.
    let mut submissions = serenity::ModalInteractionCollector::new(ctx)
        .author_id(ctx.author().id)
        .custom_ids(vec![custom_id.clone()])
        .timeout(MODAL_TIMEOUT)
        .stream();
    // Not poise's `execute_with_defaults`: it acknowledges the submission silently (type 6),
    // and the user should read what happened (or what was wrong) as the submission's answer.
    ctx.interaction
        .create_response(ctx, PromptModal::create(Some(defaults), custom_id))
        .await?;
    ctx.has_sent_initial_response.store(true, Ordering::SeqCst);

    // Closing the modal sends nothing: the collector just times out.
    let Some(submission) = submissions.next().await else {
        return Ok(());
    };
    let text = match PromptModal::parse(submission.data.clone()) {
        Ok(modal) => {
            let prompt =
                modal.prompt.unwrap_or_default() + &modal.prompt_continued.unwrap_or_default();
            let update = ProfileUpdate {
                prompt: Some(prompt),
                ..Default::default()
            };
            match service
                .update_profile(&request, current.name().as_str(), update)
                .await
            {
                Ok(updated) => view::prompt_updated(&updated),
                Err(e) => error_text(&e.into(), ctx.into()),
            }
        }
        Err(missing) => format!("The prompt could not be read ({missing}); try again."),
    };
    submission
        .create_response(ctx, reply::ephemeral_response(text))
        .await?;
    Ok(())
}

/// The prompt split for the two inputs: the first 4000 characters, and the rest.
fn split_prompt(prompt: &str) -> (String, String) {
    match prompt.char_indices().nth(FIRST_PART_CHARS) {
        Some((at, _)) => (prompt[..at].to_owned(), prompt[at..].to_owned()),
        None => (prompt.to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prompts_fill_only_the_first_input() {
        assert_eq!(
            split_prompt("You sing."),
            ("You sing.".to_owned(), String::new())
        );
        assert_eq!(split_prompt(""), (String::new(), String::new()));
    }

    #[test]
    fn long_prompts_are_split_at_4000_characters_not_bytes() {
        let prompt = format!("{}{}", "é".repeat(4000), "🦀".repeat(2000));
        let (first, rest) = split_prompt(&prompt);
        assert_eq!(first, "é".repeat(4000));
        assert_eq!(rest, "🦀".repeat(2000));
        assert_eq!(first + &rest, prompt);
    }
}
