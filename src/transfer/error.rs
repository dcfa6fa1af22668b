//! Why a file can't be imported.

use thiserror::Error;

/// Why a file can't be imported. Each message is one line a member or a host can act on.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FileError {
    /// Over the size an import reads.
    #[error("The file is larger than {max_bytes} bytes, the most an import reads.")]
    TooLarge { max_bytes: usize },
    /// Neither an export, nor a card, nor a PNG.
    #[error("The file is neither a personae export nor a character card (JSON, or PNG with the card inside).")]
    Unknown,
    /// JSON that doesn't parse, or holds a value of the wrong type.
    #[error("The file is not valid: {0}.")]
    Json(String),
    /// JSON nested past serde_json's limit.
    #[error(
        "The file nests its JSON deeper than {} levels; it can't be a personality.",
        super::MAX_JSON_DEPTH
    )]
    TooDeep,
    /// An export written by a newer personae.
    #[error("The file is a personae export of format version {found}; this personae reads version {known}. Upgrade personae to import it.")]
    NewerVersion { found: u32, known: u32 },
    /// The `format` field names something else.
    #[error("The file's format is \"{0}\", not a personae export.")]
    WrongFormat(String),
    /// A card of a spec other than V2 and V3.
    #[error("The card's spec is \"{0}\"; personae imports chara_card_v2 and chara_card_v3.")]
    UnknownSpec(String),
    /// A card without a name.
    #[error("The card has no name (data.name is empty).")]
    NamelessCard,
    /// A card's name with nothing a personality name can keep.
    #[error("The card's name \"{0}\" has no letter or digit to name a personality by.")]
    UnusableName(String),
    /// A card's extensions break a rule (too large, too deep).
    #[error("The card's {0}.")]
    Extensions(String),
    /// A PNG whose chunks run past its end.
    #[error("The PNG is damaged: {0}.")]
    BrokenPng(&'static str),
    /// A PNG without a card.
    #[error("The PNG holds no character card (no \"chara\" or \"ccv3\" text chunk).")]
    NoCardInPng,
    /// The card text of a PNG is not base64.
    #[error("The card inside the PNG is not valid base64.")]
    BadBase64,
    /// An owner id that isn't a Discord user id.
    #[error("The file's owner_id \"{0}\" is not a Discord user id.")]
    BadOwner(String),
    /// A home server id that isn't a Discord server id.
    #[error("The file's home_server \"{0}\" is not a Discord server id.")]
    BadServer(String),
}

impl FileError {
    pub(super) fn json(error: &serde_json::Error) -> Self {
        let text = error.to_string();
        if text.starts_with("recursion limit exceeded") {
            FileError::TooDeep
        } else {
            FileError::Json(text)
        }
    }
}
