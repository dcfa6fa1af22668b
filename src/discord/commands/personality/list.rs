//! `/personality list`: an embed, paged with Previous/Next buttons when long.

use std::time::Duration;

use futures::StreamExt as _;
use poise::serenity_prelude as serenity;
use poise::CreateReply;

use super::view;
use crate::application::{Listing, VisibleIn};
use crate::discord::commands::{author_id, request};
use crate::discord::{reply, BotError, Context, Error};

/// Personalities per page.
const PER_PAGE: usize = 10;
/// The buttons stop working when nobody clicked them for this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// List the personalities of this server and the global ones, or only yours.
#[poise::command(slash_command)]
pub async fn list(
    ctx: Context<'_>,
    #[description = "Only the personalities you own"] mine: Option<bool>,
    #[description = "Show the list to everyone in the channel (default: only you)"] public: Option<
        bool,
    >,
) -> Result<(), Error> {
    let mine = mine.unwrap_or(false);
    let request = request(ctx)?;
    let server = request
        .server
        .ok_or_else(|| BotError::user("Use /personality list in a server."))?;
    let listing = Listing {
        owner: if mine { Some(author_id(ctx)?) } else { None },
        visible_in: Some(VisibleIn {
            server,
            with_globals: ctx.data().app.settings.get(server).globals,
        }),
    };
    let personalities = ctx.data().app.service.list(listing).await?;
    if personalities.is_empty() {
        let text = if mine {
            "You have no personalities yet: create one with /personality create."
        } else {
            "There are no personalities yet: create one with /personality create."
        };
        return reply::private(ctx, text.to_owned()).await;
    }
    let pages = view::page_count(personalities.len(), PER_PAGE);
    let embed = |page: usize| {
        view::list_embed(&personalities, page, PER_PAGE, mine, |p| {
            request.may_manage(p.owner_id(), p.scope())
        })
    };
    let private = !public.unwrap_or(false);
    let ids = ButtonIds::new(ctx.id());
    if pages == 1 {
        let answer = CreateReply::default()
            .embed(embed(0))
            .ephemeral(private)
            .allowed_mentions(reply::no_mentions());
        ctx.send(answer).await?;
        return Ok(());
    }

    // Listen before answering, so that no click can arrive before the collector exists.
    let prefix = ids.prefix.clone();
    let mut clicks = serenity::ComponentInteractionCollector::new(ctx)
        .filter(move |click| click.data.custom_id.starts_with(&prefix))
        .stream();
    let answer = CreateReply::default()
        .embed(embed(0))
        .components(ids.buttons(0, pages))
        .ephemeral(private)
        .allowed_mentions(reply::no_mentions());
    let handle = ctx.send(answer).await?;

    let mut page = 0;
    while let Ok(Some(click)) = tokio::time::timeout(IDLE_TIMEOUT, clicks.next()).await {
        if click.user.id != ctx.author().id {
            let refusal = format!(
                "Only <@{}> can turn these pages; run /personality list to get your own.",
                ctx.author().id
            );
            click
                .create_response(ctx, reply::ephemeral_response(refusal))
                .await?;
            continue;
        }
        page = if click.data.custom_id == ids.next {
            (page + 1).min(pages - 1)
        } else {
            page.saturating_sub(1)
        };
        let turned = serenity::CreateInteractionResponseMessage::new()
            .embed(embed(page))
            .components(ids.buttons(page, pages))
            .allowed_mentions(reply::no_mentions());
        click
            .create_response(
                ctx,
                serenity::CreateInteractionResponse::UpdateMessage(turned),
            )
            .await?;
    }
    // Buttons that no longer answer would only fail when clicked: take them away.
    let settled = CreateReply::default()
        .embed(embed(page))
        .components(Vec::new())
        .allowed_mentions(reply::no_mentions());
    handle.edit(ctx, settled).await?;
    Ok(())
}

/// Custom ids of one invocation's buttons: unique per interaction.
struct ButtonIds {
    prefix: String,
    previous: String,
    next: String,
}

impl ButtonIds {
    fn new(interaction_id: u64) -> Self {
        let prefix = format!("personality-list-{interaction_id}-");
        Self {
            previous: format!("{prefix}previous"),
            next: format!("{prefix}next"),
            prefix,
        }
    }

    fn buttons(&self, page: usize, pages: usize) -> Vec<serenity::CreateActionRow> {
        vec![serenity::CreateActionRow::Buttons(vec![
            serenity::CreateButton::new(self.previous.clone())
                .label("Previous")
                .style(serenity::ButtonStyle::Secondary)
                .disabled(page == 0),
            serenity::CreateButton::new(self.next.clone())
                .label("Next")
                .style(serenity::ButtonStyle::Secondary)
                .disabled(page + 1 >= pages),
        ])]
    }
}
