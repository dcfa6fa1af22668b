//! What a member attached to the message a personality answers, as the model gets it:
//! images as `data:` URLs for models that see (LLM_VISION_MODELS), text files quoted with
//! their names, anything else named but not sent. Files come only from Discord's
//! attachment hosts ([`download`]), never from a URL in the message's text.

use std::fmt::Write;

use base64::Engine;
use poise::serenity_prelude as serenity;
use tracing::info;

use super::attachments::{download, AttachmentHosts};

/// The largest image sent to a model.
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// The largest text file quoted to a model.
pub const MAX_TEXT_BYTES: usize = 100 * 1024;

const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/webp", "image/gif"];
/// File name endings read as text when Discord gives no text content type.
const TEXT_EXTENSIONS: [&str; 30] = [
    "txt", "md", "json", "csv", "log", "toml", "yaml", "yml", "xml", "html", "css", "js", "ts",
    "jsx", "tsx", "rs", "py", "go", "java", "kt", "c", "h", "cpp", "hpp", "cs", "rb", "php", "sh",
    "sql", "lua",
];

/// The attachments of one message, ready for the model.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Attached {
    /// Appended to the member's words: quoted text files and the names of what wasn't sent.
    pub text: String,
    /// Images as `data:` URLs.
    pub images: Vec<String>,
}

/// What kind of file an attachment is, from its content type or its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image(&'static str),
    Text,
    Other,
}

fn kind(attachment: &serenity::Attachment) -> Kind {
    let content_type = attachment
        .content_type
        .as_deref()
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_ascii_lowercase());
    if let Some(image) = content_type
        .as_deref()
        .and_then(|t| IMAGE_TYPES.into_iter().find(|i| *i == t))
    {
        return Kind::Image(image);
    }
    let extension = attachment
        .filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    let texty = match content_type.as_deref() {
        Some(t) => t.starts_with("text/") || t == "application/json",
        None => false,
    } || extension
        .as_deref()
        .is_some_and(|e| TEXT_EXTENSIONS.contains(&e));
    if texty {
        Kind::Text
    } else {
        Kind::Other
    }
}

/// Reads the attachments: images only when `vision`, within the size caps, from `hosts`.
pub async fn read(
    client: &reqwest::Client,
    hosts: &AttachmentHosts,
    attachments: &[serenity::Attachment],
    vision: bool,
) -> Attached {
    let mut attached = Attached::default();
    for attachment in attachments {
        let name = &attachment.filename;
        let size = attachment.size as usize;
        let not_sent = |why: &str| format!("\n[Attached file {name}: {why}]");
        match kind(attachment) {
            Kind::Image(_) if !vision => {
                attached
                    .text
                    .push_str(&not_sent("an image this model can't see"));
            }
            Kind::Image(_) if size > MAX_IMAGE_BYTES => {
                attached
                    .text
                    .push_str(&not_sent("an image too large to send"));
            }
            Kind::Image(media_type) => {
                match download(client, hosts, &attachment.url, MAX_IMAGE_BYTES).await {
                    Ok(bytes) => attached.images.push(format!(
                        "data:{media_type};base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    )),
                    Err(e) => {
                        info!(file = %name, error = %e, "an attached image was not read");
                        attached
                            .text
                            .push_str(&not_sent("an image that couldn't be read"));
                    }
                }
            }
            Kind::Text if size > MAX_TEXT_BYTES => {
                attached
                    .text
                    .push_str(&not_sent("a text file too large to send"));
            }
            Kind::Text => match download(client, hosts, &attachment.url, MAX_TEXT_BYTES).await {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => {
                        // Writing to a String cannot fail.
                        let _ = write!(
                            attached.text,
                            "\n\nAttached file {name}:\n--- {name} ---\n{}\n--- end of {name} ---",
                            text.trim_end()
                        );
                    }
                    Err(_) => attached.text.push_str(&not_sent("not readable as text")),
                },
                Err(e) => {
                    info!(file = %name, error = %e, "an attached text file was not read");
                    attached
                        .text
                        .push_str(&not_sent("a file that couldn't be read"));
                }
            },
            Kind::Other => attached
                .text
                .push_str(&not_sent("a kind of file that isn't sent to the model")),
        }
    }
    attached
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(filename: &str, content_type: Option<&str>) -> serenity::Attachment {
        serde_json::from_value(serde_json::json!({
            "id": "1", "filename": filename, "size": 10, "url": "https://cdn.discordapp.com/a",
            "proxy_url": "https://media.discordapp.net/a", "content_type": content_type,
        }))
        .unwrap()
    }

    #[test]
    fn images_text_and_other_files_are_told_apart() {
        assert_eq!(
            kind(&attachment("a.png", Some("image/png"))),
            Kind::Image("image/png")
        );
        assert_eq!(
            kind(&attachment("a.svg", Some("image/svg+xml"))),
            Kind::Other
        );
        assert_eq!(
            kind(&attachment("a.txt", Some("text/plain; charset=utf-8"))),
            Kind::Text
        );
        assert_eq!(
            kind(&attachment("a.json", Some("application/json"))),
            Kind::Text
        );
        assert_eq!(kind(&attachment("main.rs", None)), Kind::Text);
        assert_eq!(
            kind(&attachment("a.exe", Some("application/octet-stream"))),
            Kind::Other
        );
    }
}
