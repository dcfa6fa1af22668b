//! The text chunks of a PNG, read by walking its chunks: SillyTavern and other card
//! programs put the card, base64-encoded, in a `tEXt` chunk named `ccv3` (V3) or `chara`
//! (V2), usually after the image data.

use base64::Engine;

use super::FileError;

const SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";

/// True when `bytes` start with the PNG signature.
pub(super) fn is_png(bytes: &[u8]) -> bool {
    bytes.starts_with(SIGNATURE)
}

/// The card JSON of a PNG card: the `ccv3` chunk's when there is one (it is the newer
/// card), otherwise the `chara` chunk's, base64-decoded.
pub(super) fn card_text(bytes: &[u8]) -> Result<Vec<u8>, FileError> {
    let mut chara = None;
    let mut ccv3 = None;
    for chunk in chunks(bytes) {
        let (kind, data) = chunk?;
        if kind == *b"IEND" {
            break;
        }
        if kind != *b"tEXt" {
            continue;
        }
        let Some(split) = data.iter().position(|b| *b == 0) else {
            continue;
        };
        match &data[..split] {
            b"ccv3" => ccv3 = Some(&data[split + 1..]),
            b"chara" => chara = Some(&data[split + 1..]),
            _ => {}
        }
    }
    let text = ccv3.or(chara).ok_or(FileError::NoCardInPng)?;
    let text: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| FileError::BadBase64)
}

/// The chunks after the signature, as (type, data); each length is checked against what
/// is left of the file.
fn chunks(bytes: &[u8]) -> impl Iterator<Item = Result<([u8; 4], &[u8]), FileError>> {
    let mut rest = bytes.get(SIGNATURE.len()..).unwrap_or_default();
    let mut failed = false;
    std::iter::from_fn(move || {
        if rest.is_empty() || failed {
            return None;
        }
        let chunk = next_chunk(rest);
        match chunk {
            Ok((kind, data, after)) => {
                rest = after;
                Some(Ok((kind, data)))
            }
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

/// A chunk's type and data, and the bytes after it.
type Chunk<'a> = ([u8; 4], &'a [u8], &'a [u8]);

/// One chunk: 4 bytes of length, 4 of type, the data, 4 of CRC.
fn next_chunk(bytes: &[u8]) -> Result<Chunk<'_>, FileError> {
    let (length, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or(FileError::BrokenPng("a chunk is cut short"))?;
    let (kind, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(FileError::BrokenPng("a chunk is cut short"))?;
    let length = u32::from_be_bytes(*length) as usize;
    if rest.len() < length.saturating_add(4) {
        return Err(FileError::BrokenPng(
            "a chunk runs past the end of the file",
        ));
    }
    let (data, rest) = rest.split_at(length);
    Ok((*kind, data, &rest[4..]))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PNG of one pixel with these extra chunks after the image data.
    pub(crate) fn png_with(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut png = SIGNATURE.to_vec();
        let mut push = |kind: &[u8; 4], data: &[u8]| {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            png.extend_from_slice(kind);
            png.extend_from_slice(data);
            png.extend_from_slice(&[0, 0, 0, 0]);
        };
        push(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
        push(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 0, 1, 0, 1]);
        for (kind, data) in chunks {
            push(kind, data);
        }
        push(b"IEND", &[]);
        png
    }

    pub(crate) fn text_chunk(keyword: &str, json: &str) -> Vec<u8> {
        let mut data = keyword.as_bytes().to_vec();
        data.push(0);
        data.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(json)
                .as_bytes(),
        );
        data
    }

    #[test]
    fn the_chara_chunk_after_the_image_data_is_found() {
        let png = png_with(&[(b"tEXt", &text_chunk("chara", "{\"a\":1}"))]);
        assert_eq!(card_text(&png).unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn ccv3_wins_over_chara() {
        let png = png_with(&[
            (b"tEXt", &text_chunk("ccv3", "v3")),
            (b"tEXt", &text_chunk("chara", "v2")),
        ]);
        assert_eq!(card_text(&png).unwrap(), b"v3");
        let png = png_with(&[
            (b"tEXt", &text_chunk("chara", "v2")),
            (b"tEXt", &text_chunk("ccv3", "v3")),
        ]);
        assert_eq!(card_text(&png).unwrap(), b"v3");
    }

    #[test]
    fn a_png_without_the_chunk_is_refused() {
        let png = png_with(&[(b"tEXt", &text_chunk("Comment", "hello"))]);
        assert_eq!(card_text(&png), Err(FileError::NoCardInPng));
    }

    #[test]
    fn bad_base64_is_refused() {
        let png = png_with(&[(b"tEXt", b"chara\0not base64!!")]);
        assert_eq!(card_text(&png), Err(FileError::BadBase64));
    }

    #[test]
    fn lengths_past_the_end_are_refused_not_read() {
        let mut png = png_with(&[(b"tEXt", &text_chunk("chara", "{}"))]);
        png.truncate(png.len() - 20);
        assert!(matches!(card_text(&png), Err(FileError::BrokenPng(_))));
        let mut huge = SIGNATURE.to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(b"tEXt");
        assert!(matches!(card_text(&huge), Err(FileError::BrokenPng(_))));
        assert!(matches!(
            card_text(&SIGNATURE[..]),
            Err(FileError::NoCardInPng)
        ));
    }
}
