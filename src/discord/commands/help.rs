use crate::discord::reply;
use crate::discord::{Context, Error};

const HELP: &str = "\
**personae** — AI personalities that talk in your server.

**Talk to one**
• `@alias hello` — mention a personality by its name or an alias
• reply to one of its messages to keep talking
• `/autorespond enabled:true` — keep talking to the last personality without mentioning it (30 minutes in servers, 2 hours in DMs)
• `/reset` — end your conversation in this channel
• on a personality's message, Apps → *Personality info* · *Regenerate* (answers to you) · *Delete answer*

**Make your own**
• `/personality create` — name, display name, prompt, model, avatar, alias
• `/personality update` · `/personality prompt` (long prompts) · `/personality alias` · `/personality unalias` · `/personality remove` · `/personality restore` (within 30 days)
• `/personality list` · `/personality info`
• `/personality export` — one of yours as a file · `/personality import` — yours from a file (a personae export, or a character card as JSON or PNG)

**Server admins**
• `/activate` — a personality answers every message in this channel · `/deactivate`
• `/settings` — where personalities answer, global personalities on or off, who may create how many
• Who may use which command: Server Settings → Integrations.";

/// How to use personae: talking to personalities and making your own.
#[poise::command(slash_command)]
pub async fn help(ctx: Context<'_>) -> Result<(), Error> {
    reply::private(ctx, HELP.to_owned()).await
}
