//! `multipart/form-data` request bodies as Discord takes them for uploads: a
//! `payload_json` part with the JSON body, and one `files[n]` part per file.
//! Anything else, and attachments in the JSON that name no uploaded file, are
//! what Discord refuses.

use serde_json::Value;

/// A file the bot uploaded with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field, e.g. `files[0]`.
    pub field: String,
    /// The file name the part carries.
    pub filename: String,
    /// The part's `Content-Type`, if given.
    pub content_type: Option<String>,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// A multipart body, taken apart.
#[derive(Debug, Default)]
pub(crate) struct Multipart {
    /// The bytes of the `payload_json` part.
    pub payload_json: Option<Vec<u8>>,
    pub files: Vec<UploadedFile>,
    /// What Discord would refuse about the body's form.
    pub problems: Vec<String>,
}

/// Takes a body apart by the boundary its content type names.
pub(crate) fn parse(content_type: &str, body: &[u8]) -> Multipart {
    let mut parsed = Multipart::default();
    let Some(boundary) = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
    else {
        parsed
            .problems
            .push("multipart body without a boundary".to_owned());
        return parsed;
    };
    let delimiter = format!("--{boundary}");
    let mut parts = split_bytes(body, delimiter.as_bytes()).into_iter();
    // Before the first delimiter: the preamble, empty in practice.
    parts.next();
    for part in parts {
        if part.starts_with(b"--") {
            break; // The closing delimiter.
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(header_end) = find_bytes(part, b"\r\n\r\n") else {
            parsed
                .problems
                .push("a multipart part without headers".to_owned());
            continue;
        };
        let head = String::from_utf8_lossy(&part[..header_end]).into_owned();
        let content = &part[header_end + 4..];
        let content = content.strip_suffix(b"\r\n").unwrap_or(content).to_vec();
        let name = disposition_param(&head, "name");
        let filename = disposition_param(&head, "filename");
        match (name.as_deref(), filename) {
            (Some("payload_json"), _) => parsed.payload_json = Some(content),
            (Some(field), Some(filename)) if is_file_field(field) => {
                parsed.files.push(UploadedFile {
                    field: field.to_owned(),
                    filename,
                    content_type: header(&head, "content-type"),
                    bytes: content,
                });
            }
            (Some(field), None) if is_file_field(field) => parsed
                .problems
                .push(format!("the file part {field} has no filename")),
            (other, _) => parsed
                .problems
                .push(format!("unexpected multipart part {other:?}")),
        }
    }
    parsed
}

/// What is wrong between the JSON's `attachments` (directly or under `data`)
/// and the uploaded files: Discord needs a `files[id]` part for each new one.
pub(crate) fn attachment_problems(body: &Value, files: &[UploadedFile]) -> Vec<String> {
    let attachments = body
        .get("attachments")
        .or_else(|| body.get("data").and_then(|d| d.get("attachments")))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    attachments
        .iter()
        .filter_map(|a| {
            let id = match &a["id"] {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return Some(format!("attachment without an id: {a}")),
            };
            let field = format!("files[{id}]");
            (!files.iter().any(|f| f.field == field))
                .then(|| format!("attachment {id} names no uploaded {field}"))
        })
        .collect()
}

fn is_file_field(name: &str) -> bool {
    name.strip_prefix("files[")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A parameter of the part's `Content-Disposition` header, e.g. `name`.
fn disposition_param(head: &str, param: &str) -> Option<String> {
    let disposition = header(head, "content-disposition")?;
    disposition.split(';').skip(1).find_map(|p| {
        let (key, value) = p.trim().split_once('=')?;
        (key.eq_ignore_ascii_case(param)).then(|| value.trim_matches('"').to_owned())
    })
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut haystack: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = find_bytes(haystack, delimiter) {
        parts.push(&haystack[..at]);
        haystack = &haystack[at + delimiter.len()..];
    }
    parts.push(haystack);
    parts
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.json\"\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{\"content\":\"hi\",\"attachments\":[{\"id\":0,\"filename\":\"a.json\"}]}\r\n--XyZ--\r\n";

    #[test]
    fn files_and_the_json_part_are_taken_apart() {
        let parsed = parse("multipart/form-data; boundary=XyZ", BODY);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.files.len(), 1);
        assert_eq!(parsed.files[0].filename, "a.json");
        assert_eq!(parsed.files[0].bytes, b"{\"a\":1}");
        let json: Value = serde_json::from_slice(&parsed.payload_json.unwrap()).unwrap();
        assert!(attachment_problems(&json, &parsed.files).is_empty());
    }

    #[test]
    fn attachments_without_their_file_and_stray_parts_are_problems() {
        let json = json!({"data": {"attachments": [{"id": 1}]}});
        assert_eq!(attachment_problems(&json, &[]).len(), 1);
        let stray = b"--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--B--\r\n";
        assert_eq!(
            parse("multipart/form-data; boundary=B", stray)
                .problems
                .len(),
            1
        );
    }
}
