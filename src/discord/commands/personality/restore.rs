//! `/personality restore`: brings back a personality removed at most 30 days ago, with every
//! alias no other personality took meanwhile.

use crate::application::Restoration;
use crate::discord::commands::request;
use crate::discord::reply::{self, escape_markdown};
use crate::discord::{Context, Error};

/// Bring back a personality removed in the last 30 days, with every alias still free.
#[poise::command(slash_command, required_permissions = "SEND_MESSAGES")]
pub async fn restore(
    ctx: Context<'_>,
    #[description = "The removed personality's name"]
    #[max_length = 64]
    name: String,
) -> Result<(), Error> {
    let request = request(ctx)?;
    let restored = ctx.data().app.service.restore(&request, &name).await?;
    reply::private(ctx, restored_text(&restored)).await
}

/// What the member reads: how to talk to it again, and the aliases it lost.
fn restored_text(restored: &Restoration) -> String {
    let p = &restored.personality;
    let mut names = vec![format!("@{}", p.name().key())];
    names.extend(p.aliases().iter().map(|a| format!("@{a}")));
    let restored_line = format!(
        "Restored **{}** — talk to it with {}.",
        escape_markdown(p.name().as_str()),
        escape_markdown(&names.join(" or "))
    );
    if restored.left_out.is_empty() {
        return restored_line;
    }
    let taken: Vec<String> = restored.left_out.iter().map(|a| format!("@{a}")).collect();
    format!(
        "{restored_line}\nNot restored, because other personalities took them meanwhile: {}.",
        escape_markdown(&taken.join(", "))
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{
        Alias, DisplayName, NewPersonality, Personality, PersonalityId, PersonalityName, Profile,
        Prompt, Scope, UserId,
    };

    fn restoration(aliases: &[&str], left_out: &[&str]) -> Restoration {
        let new = NewPersonality {
            name: PersonalityName::parse("Aria_Bard").unwrap(),
            owner_id: UserId::new(7).unwrap(),
            scope: Scope::Global,
            profile: Profile {
                display_name: DisplayName::parse("Aria").unwrap(),
                avatar_url: None,
                prompt: Prompt::parse("Sing.").unwrap(),
                model: None,
                nsfw: false,
                temperature: None,
                max_tokens: None,
            },
            aliases: aliases.iter().map(|a| Alias::parse(a).unwrap()).collect(),
            card_extensions: None,
        };
        Restoration {
            personality: Personality::register(PersonalityId::new(), new, Utc::now()).unwrap(),
            left_out: left_out.iter().map(|a| Alias::parse(a).unwrap()).collect(),
        }
    }

    #[test]
    fn the_reply_says_how_to_talk_to_it_and_lists_the_aliases_left_out() {
        assert_eq!(
            restored_text(&restoration(&["muse"], &["bard", "singer"])),
            "Restored **Aria\\_Bard** — talk to it with @aria\\_bard or @muse.\n\
             Not restored, because other personalities took them meanwhile: @bard, @singer."
        );
        assert_eq!(
            restored_text(&restoration(&[], &[])),
            "Restored **Aria\\_Bard** — talk to it with @aria\\_bard."
        );
    }
}
