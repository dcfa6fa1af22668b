//! Who owns imported personalities and where they go, when the importer says.

use super::Portable;
use crate::application::{ImportItem, Registration};
use crate::domain::{Scope, UserId};

/// Who owns imported personalities and where they live, when the importer decides rather
/// than the file: a member importing in Discord (themselves, their server), or the host
/// with `--owner`, `--server` or `--global`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// Overrides the file's owner.
    pub owner: Option<UserId>,
    /// Overrides the file's home server or global flag.
    pub scope: Option<Scope>,
}

impl Placement {
    /// The registration of `portable`, placed: the file's owner and home unless this
    /// placement says otherwise; neither given, the request's own user and server.
    pub fn place(&self, portable: Portable) -> ImportItem {
        let scope = self.scope.or(portable.home);
        ImportItem {
            server: scope.and_then(Scope::server),
            registration: Registration {
                name: portable.name,
                owner_id: self.owner.or(portable.owner_id),
                global: scope == Some(Scope::Global),
                display_name: portable.display_name,
                avatar_url: portable.avatar_url,
                prompt: Some(portable.prompt),
                model: portable.model,
                aliases: portable.aliases,
                nsfw: portable.nsfw,
                temperature: portable.temperature,
                max_tokens: portable.max_tokens,
                card_extensions: portable.card_extensions,
            },
        }
    }
}
