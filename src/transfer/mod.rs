//! Moving personalities between bots: personae's own export document, and character cards
//! (V2 and V3, as JSON or inside a PNG). Reading and writing only; creating what a file
//! holds is the application service's import.

mod card;
mod document;
mod error;
mod placement;
mod png;

pub use card::{export_card, CARD_EXTENSION_KEY};
pub use document::{ExportDocument, ExportedPersonality, FORMAT, VERSION};
pub use error::FileError;
pub use placement::Placement;

use serde::Deserialize;

use crate::domain::{CardExtensions, Scope, UserId};

/// The largest file an import reads: PNG cards with their artwork fit well within it.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// One personality as a file describes it, before any of it is checked by the domain.
#[derive(Debug, Clone, PartialEq)]
pub struct Portable {
    pub name: String,
    /// `None`: the name.
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub prompt: String,
    pub model: Option<String>,
    pub nsfw: bool,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub aliases: Vec<String>,
    /// The owner the file names; a card names none.
    pub owner_id: Option<UserId>,
    /// Where the file says it lives; a card says nothing.
    pub home: Option<Scope>,
    pub card_extensions: Option<CardExtensions>,
}

/// What kind of file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A personae export document.
    Export,
    /// A character card as JSON.
    CardJson,
    /// A character card inside a PNG.
    CardPng,
}

/// Reads an import file: a personae export, a character card as JSON, or a PNG holding a
/// card. Anything else, anything over [`MAX_FILE_BYTES`], and anything malformed is
/// refused with one line saying what is wrong.
pub fn read(bytes: &[u8]) -> Result<(FileKind, Vec<Portable>), FileError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge {
            max_bytes: MAX_FILE_BYTES,
        });
    }
    if png::is_png(bytes) {
        let card = png::card_text(bytes)?;
        return Ok((FileKind::CardPng, vec![card::read(&card)?]));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(FileError::Unknown);
    }
    let probe: Probe = parse_json(bytes)?;
    match (probe.format, probe.spec) {
        (Some(_), _) => Ok((FileKind::Export, document::read(bytes)?)),
        (None, Some(_)) => Ok((FileKind::CardJson, vec![card::read(bytes)?])),
        (None, None) => Err(FileError::Unknown),
    }
}

/// The two fields that tell the JSON files apart; the rest is skipped (still within
/// serde_json's nesting limit).
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    format: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    spec: Option<serde::de::IgnoredAny>,
}

/// The deepest nesting of arrays and objects a file may have. A personality is four
/// levels deep in an export; a card's extensions may nest up to 32 levels below that.
pub const MAX_JSON_DEPTH: usize = 64;

/// Parses JSON no deeper than [`MAX_JSON_DEPTH`]: checked first by a scan without
/// recursion, since serde_json skips unknown fields at any depth, and bounded again by
/// serde_json's own limit of 128 levels where it builds values.
fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, FileError> {
    if nesting_depth(bytes) > MAX_JSON_DEPTH {
        return Err(FileError::TooDeep);
    }
    serde_json::from_slice(bytes).map_err(|e| FileError::json(&e))
}

/// How deep arrays and objects nest in `bytes`, brackets inside strings not counted.
fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0_usize, 0_usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::png::tests::{png_with, text_chunk};
    use super::*;

    #[test]
    fn each_kind_of_file_is_recognised() {
        let export = json!({"format": FORMAT, "version": VERSION, "personalities": [
            {"name": "Aria", "display_name": "Aria", "owner_id": "7001", "home_server": "8001"}
        ]})
        .to_string();
        let (kind, list) = read(export.as_bytes()).unwrap();
        assert_eq!(kind, FileKind::Export);
        assert_eq!(list[0].home, Some(Scope::Server("8001".parse().unwrap())));
        let card = json!({"spec": "chara_card_v2", "data": {"name": "Aria"}}).to_string();
        assert_eq!(read(card.as_bytes()).unwrap().0, FileKind::CardJson);
        let png = png_with(&[(b"tEXt", &text_chunk("chara", &card))]);
        assert_eq!(read(&png).unwrap().0, FileKind::CardPng);
    }

    #[test]
    fn hostile_files_are_refused_with_one_line() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let deep = format!(
            "{{\"spec\":\"chara_card_v2\",\"data\":{{\"name\":\"A\",\"tags\":{}}}}}",
            nested(100_000)
        );
        let deep_extensions = format!(
            "{{\"spec\":\"chara_card_v2\",\"data\":{{\"name\":\"A\",\"extensions\":{{\"x\":{}}}}}}}",
            nested(200)
        );
        let kept_too_deep = format!(
            "{{\"spec\":\"chara_card_v2\",\"data\":{{\"name\":\"A\",\"extensions\":{{\"x\":{}}}}}}}",
            nested(40)
        );
        let also_deep = format!("{{\"format\":{}", "{\"a\":".repeat(1_000_000));
        let png_of_deep = png_with(&[(b"tEXt", &text_chunk("chara", &deep))]);
        let cases: Vec<(Vec<u8>, FileError)> = vec![
            (
                vec![b' '; MAX_FILE_BYTES + 1],
                FileError::TooLarge {
                    max_bytes: MAX_FILE_BYTES,
                },
            ),
            (b"GIF89a....".to_vec(), FileError::Unknown),
            (b"\x89PNX\r\n\x1a\n".to_vec(), FileError::Unknown),
            (Vec::new(), FileError::Unknown),
            (b"{\"name\": \"Aria\"}".to_vec(), FileError::Unknown),
            (deep.into_bytes(), FileError::TooDeep),
            (deep_extensions.into_bytes(), FileError::TooDeep),
            (
                kept_too_deep.into_bytes(),
                FileError::Extensions("extensions: nested deeper than 32 levels".into()),
            ),
            (also_deep.into_bytes(), FileError::TooDeep),
            (png_of_deep, FileError::TooDeep),
            (png_with(&[]), FileError::NoCardInPng),
            (
                format!(
                    "{{\"spec\":\"chara_card_v2\",\"data\":{{\"name\":\"[[[\\\"\",\"tags\":{}}}}}",
                    nested(65)
                )
                .into_bytes(),
                FileError::TooDeep,
            ),
        ];
        for (bytes, expected) in cases {
            let error = read(&bytes).unwrap_err();
            assert_eq!(error, expected);
            assert!(!error.to_string().contains('\n'), "{error}");
        }
    }

    #[test]
    fn export_documents_of_other_versions_or_formats_or_types_are_refused() {
        let newer = json!({"format": FORMAT, "version": 2, "personalities": [], "x": 1});
        assert_eq!(
            read(newer.to_string().as_bytes()),
            Err(FileError::NewerVersion {
                found: 2,
                known: VERSION
            })
        );
        let other = json!({"format": "other", "version": 1, "personalities": []});
        assert!(matches!(
            read(other.to_string().as_bytes()),
            Err(FileError::WrongFormat(_))
        ));
        let wrong = json!({"format": FORMAT, "version": 1, "personalities": [
            {"name": "A", "display_name": "A", "owner_id": "1", "aliases": "a"}]});
        assert!(matches!(
            read(wrong.to_string().as_bytes()),
            Err(FileError::Json(_))
        ));
        let bad_owner = json!({"format": FORMAT, "version": 1, "personalities": [
            {"name": "A", "display_name": "A", "owner_id": "me"}]});
        assert!(matches!(
            read(bad_owner.to_string().as_bytes()),
            Err(FileError::BadOwner(_))
        ));
    }
}
