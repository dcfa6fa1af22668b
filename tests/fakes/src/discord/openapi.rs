//! Checking bodies against Discord's own OpenAPI description.
//!
//! The description (`tests/fakes/discord-api-spec/openapi.json`, Discord's
//! `discord/discord-api-spec` at commit 74fda0f, MIT) is embedded in the
//! crate, parsed once per process on first use and shared by every
//! [`FakeDiscord`](super::FakeDiscord). A request path such as
//! `/webhooks/1/abc` is matched to the spec's template
//! (`/webhooks/{webhook_id}/{webhook_token}`, literal segments winning over
//! parameters), and the JSON body is validated against the `application/json`
//! request-body schema of that operation with a JSON Schema 2020-12 validator
//! (`format` is asserted, so `avatar_url` must be a URI; unknown formats such
//! as `int32` or `snowflake` are ignored).
//!
//! # Where the fake reads the spec differently from its literal text
//!
//! * **Top-level unions.** Seven operations describe their body as
//!   `anyOf: [A, B, …]` marked `"x-discord-union": "oneOf"` — for example
//!   webhook execution is `anyOf: [IncomingWebhookRequestPartial,
//!   IncomingWebhookUpdateRequestPartial]`. Read literally, an
//!   81-character `username` passes because the second alternative does not
//!   declare `username` at all; read as a strict `oneOf`, every plain
//!   `{"content": "hi"}` fails because it matches both. Discord picks the
//!   variant that describes the body, so the fake does the same: only the
//!   alternatives whose declared properties include every key of the body
//!   are candidates (all of them if none does), and the body must satisfy one
//!   candidate. This is stricter than the literal `anyOf`, never looser.
//! * **Permission bitfields as strings.** The spec types
//!   `default_member_permissions` (command registration) as an integer.
//!   Discord documents it as a string and serenity sends it as one
//!   (`"8"`); the fake also accepts a string of decimal digits there, still
//!   bounded by the spec's maximum length.
//! * **New uploads named by index.** `MessageAttachmentRequest.id` is typed
//!   as a snowflake string. For a file uploaded with the same request,
//!   Discord documents the id as the index `n` of its `files[n]` form part
//!   and serenity sends that index as an integer (`"id": 0`); the fake
//!   accepts a non-negative integer there, and checks separately that a
//!   `files[n]` part with that index was uploaded (see `multipart`).
//!   Nothing else is relaxed.
//! * **Bot message length.** `MessageCreateRequest` and
//!   `MessageEditRequestPartial` allow 4000 characters of `content` — the
//!   limit for users with Nitro. Bots cannot have Nitro and Discord refuses
//!   more than 2000 from them, so the fake tightens those two to 2000 (the
//!   webhook and interaction schemas already say 2000).
//!
//! Errors are reported as Discord does (`{"code": 50035, "message":
//! "Invalid Form Body", "errors": {...}}`) and, for people reading a failed
//! test, as one line per offending field.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, Registry, ValidationError, Validator};
use serde_json::{json, Map, Value};

/// The vendored description, embedded so tests work from any directory.
const SPEC_JSON: &str = include_str!("../../discord-api-spec/openapi.json");

/// The URI the description is registered under inside the validator.
const SPEC_URI: &str = "https://discord.com/api/v10/openapi.json";

/// Longest excerpt of a validator message kept in a report.
const MAX_DETAIL_CHARS: usize = 300;

/// One field-level problem found in a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer to the offending value (`""` for the body itself), e.g. `/username`.
    pub path: String,
    /// Discord-style error code, e.g. `BASE_TYPE_MAX_LENGTH`.
    pub code: &'static str,
    /// Discord-style message, e.g. `Must be 80 or fewer in length.`.
    pub message: String,
    /// The validator's own explanation, shortened to a few hundred characters.
    pub detail: String,
}

/// Why a body does not satisfy the schema of its route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationFailure {
    /// Method and spec template, e.g. `POST /webhooks/{webhook_id}/{webhook_token}`.
    pub route: String,
    /// Name of the schema the errors refer to, when the route's body is a union.
    pub schema: Option<String>,
    /// The problems found, one per offending field.
    pub errors: Vec<FieldError>,
}

impl ValidationFailure {
    /// The `errors` object Discord puts in a 50035 answer: nested by field,
    /// with `_errors` lists at the leaves.
    pub fn discord_errors(&self) -> Value {
        let mut root = Map::new();
        for error in &self.errors {
            let mut node = &mut root;
            for segment in error.path.split('/').filter(|s| !s.is_empty()) {
                let key = segment.replace("~1", "/").replace("~0", "~");
                let child = node.entry(key).or_insert_with(|| Value::Object(Map::new()));
                if !child.is_object() {
                    *child = Value::Object(Map::new());
                }
                node = match child.as_object_mut() {
                    Some(map) => map,
                    None => unreachable!("replaced by an object just above"),
                };
            }
            let leaf = node.entry("_errors").or_insert_with(|| json!([]));
            if let Some(list) = leaf.as_array_mut() {
                list.push(json!({"code": error.code, "message": error.message}));
            }
        }
        Value::Object(root)
    }

    /// The full 400 answer body Discord sends for an invalid form body.
    pub fn discord_body(&self) -> Value {
        json!({"code": 50035, "message": "Invalid Form Body", "errors": self.discord_errors()})
    }
}

impl fmt::Display for ValidationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.route)?;
        if let Some(schema) = &self.schema {
            write!(f, " ({schema})")?;
        }
        write!(f, ":")?;
        for error in &self.errors {
            let path = if error.path.is_empty() {
                "<body>"
            } else {
                &error.path
            };
            write!(f, " {path}: {} [{}];", error.detail, error.code)?;
        }
        Ok(())
    }
}

/// Validates a request body against the spec.
///
/// `path` is the API path without `/api/v10` and without the query string,
/// e.g. `/webhooks/1/abc`. Routes or operations the spec does not describe,
/// and operations without a JSON request body, pass.
pub fn validate_request(method: &str, path: &str, body: &Value) -> Result<(), ValidationFailure> {
    match openapi() {
        Ok(spec) => spec.validate(method, path, Part::Request, body),
        Err(message) => Err(unavailable(method, path, message)),
    }
}

/// Validates a response body the fake is about to send against the schema
/// the spec gives for that route and status. Used to keep the fake honest.
pub fn validate_response(
    method: &str,
    path: &str,
    status: u16,
    body: &Value,
) -> Result<(), ValidationFailure> {
    match openapi() {
        Ok(spec) => spec.validate(method, path, Part::Response(status), body),
        Err(message) => Err(unavailable(method, path, message)),
    }
}

/// The spec template a request path belongs to, e.g.
/// `/webhooks/{webhook_id}/{webhook_token}` for `/webhooks/1/abc`.
pub fn route_template(path: &str) -> Option<String> {
    let spec = openapi().ok()?;
    spec.find_template(path).map(|t| t.template.clone())
}

fn unavailable(method: &str, path: &str, message: &str) -> ValidationFailure {
    ValidationFailure {
        route: format!("{} {path}", method.to_uppercase()),
        schema: None,
        errors: vec![FieldError {
            path: String::new(),
            code: "SPEC_UNAVAILABLE",
            message: "The fake could not load Discord's OpenAPI description.".to_owned(),
            detail: message.to_owned(),
        }],
    }
}

/// Which body of an operation to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Part {
    Request,
    Response(u16),
}

/// The parsed description, its validator registry and compiled schemas.
struct OpenApi {
    doc: Arc<Value>,
    registry: Registry<'static>,
    templates: Vec<PathTemplate>,
    compiled: Mutex<SchemaCache>,
}

/// Compiled body schemas by (template, method, part); `None`: no JSON body.
type SchemaCache = HashMap<(String, String, Part), Option<Arc<BodySchema>>>;

/// The process-wide description, loaded on first use.
fn openapi() -> Result<&'static OpenApi, &'static str> {
    static SPEC: OnceLock<Result<OpenApi, String>> = OnceLock::new();
    SPEC.get_or_init(OpenApi::load)
        .as_ref()
        .map_err(String::as_str)
}

impl OpenApi {
    fn load() -> Result<Self, String> {
        let mut doc: Value = serde_json::from_str(SPEC_JSON)
            .map_err(|e| format!("openapi.json does not parse: {e}"))?;
        relax_permission_strings(&mut doc);
        accept_upload_indexes(&mut doc);
        limit_bot_message_length(&mut doc);
        let doc = Arc::new(doc);
        let templates = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("openapi.json has no paths")?
            .keys()
            .map(|t| PathTemplate::parse(t))
            .collect();
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(SPEC_URI, Arc::clone(&doc))
            .and_then(|builder| builder.prepare())
            .map_err(|e| format!("openapi.json cannot be registered: {e}"))?;
        Ok(Self {
            doc,
            registry,
            templates,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    fn validate(
        &self,
        method: &str,
        path: &str,
        part: Part,
        body: &Value,
    ) -> Result<(), ValidationFailure> {
        let Some(template) = self.find_template(path) else {
            return Ok(());
        };
        let method = method.to_lowercase();
        let route = format!("{} {}", method.to_uppercase(), template.template);
        let schema = match self.body_schema(&template.template, &method, part) {
            Ok(Some(schema)) => schema,
            Ok(None) => return Ok(()),
            Err(message) => {
                return Err(ValidationFailure {
                    route,
                    schema: None,
                    errors: vec![FieldError {
                        path: String::new(),
                        code: "SPEC_UNAVAILABLE",
                        message: "The fake could not compile this route's schema.".to_owned(),
                        detail: message,
                    }],
                })
            }
        };
        schema
            .check(body)
            .map_err(|(schema, errors)| ValidationFailure {
                route,
                schema,
                errors,
            })
    }

    /// The best template for a concrete path: same number of segments, every
    /// literal equal, and literals preferred over parameters from the left.
    fn find_template(&self, path: &str) -> Option<&PathTemplate> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        self.templates
            .iter()
            .filter_map(|t| t.matches(&segments).map(|rank| (rank, t)))
            .max_by(|(a, _), (b, _)| a.cmp(b))
            .map(|(_, t)| t)
    }

    /// The compiled schema of one operation's body, compiled on first use.
    fn body_schema(
        &self,
        template: &str,
        method: &str,
        part: Part,
    ) -> Result<Option<Arc<BodySchema>>, String> {
        let key = (template.to_owned(), method.to_owned(), part);
        if let Some(found) = self.lock_compiled().get(&key) {
            return Ok(found.clone());
        }
        let operation = &self.doc["paths"][template][method];
        let content = match part {
            Part::Request => &operation["requestBody"]["content"],
            Part::Response(status) => &operation["responses"][status.to_string()]["content"],
        };
        let compiled = match content
            .get("application/json")
            .and_then(|c| c.get("schema"))
        {
            Some(schema) => Some(Arc::new(self.compile(schema)?)),
            None => None,
        };
        self.lock_compiled().insert(key, compiled.clone());
        Ok(compiled)
    }

    fn lock_compiled(&self) -> std::sync::MutexGuard<'_, SchemaCache> {
        // A panic while holding this lock cannot leave the cache inconsistent
        // (entries are inserted whole), so a poisoned lock is still usable.
        self.compiled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn compile(&self, schema: &Value) -> Result<BodySchema, String> {
        let union = schema
            .get("anyOf")
            .and_then(Value::as_array)
            .filter(|_| schema.get("x-discord-union").is_some());
        let alternatives = match union {
            Some(members) => members
                .iter()
                .map(|member| {
                    let target = member
                        .get("$ref")
                        .and_then(Value::as_str)
                        .and_then(|r| self.resolve(r));
                    Ok(Alternative {
                        name: member
                            .get("$ref")
                            .and_then(Value::as_str)
                            .and_then(|r| r.rsplit('/').next())
                            .map(str::to_owned),
                        properties: target
                            .and_then(|t| t.get("properties"))
                            .and_then(Value::as_object)
                            .map(|p| p.keys().cloned().collect()),
                        validator: self.build(member)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
            None => vec![Alternative {
                name: None,
                properties: None,
                validator: self.build(schema)?,
            }],
        };
        Ok(BodySchema { alternatives })
    }

    /// Follows a local `#/...` reference inside the description.
    fn resolve(&self, reference: &str) -> Option<&Value> {
        self.doc.pointer(reference.strip_prefix('#')?)
    }

    fn build(&self, schema: &Value) -> Result<Validator, String> {
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .build(&absolute_refs(schema))
            .map_err(|e| format!("schema does not compile: {e}"))
    }
}

/// A copy of an operation's schema whose local `#/…` references point into
/// the registered description.
fn absolute_refs(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) if r.starts_with('#') => {
                        (k.clone(), Value::String(format!("{SPEC_URI}{r}")))
                    }
                    _ => (k.clone(), absolute_refs(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(absolute_refs).collect()),
        other => other.clone(),
    }
}

/// See the module docs: `default_member_permissions` also accepts a string
/// of decimal digits, as Discord does and serenity sends.
fn relax_permission_strings(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in schemas.values_mut() {
        let Some(field) = schema.pointer_mut("/properties/default_member_permissions") else {
            continue;
        };
        if field.get("type") == Some(&json!(["integer", "null"])) {
            field["type"] = json!(["integer", "string", "null"]);
            field["pattern"] = json!("^(0|[1-9][0-9]{0,16})$");
        }
    }
}

/// See the module docs: an attachment of the same request may be named by
/// the integer index of its `files[n]` part.
fn accept_upload_indexes(doc: &mut Value) {
    let pointer = "/components/schemas/MessageAttachmentRequest/properties/id";
    if let Some(id) = doc.pointer_mut(pointer) {
        *id = json!({"anyOf": [id.clone(), {"type": "integer", "minimum": 0, "maximum": 9}]});
    }
}

/// See the module docs: bots may send at most 2000 characters of content.
fn limit_bot_message_length(doc: &mut Value) {
    for name in ["MessageCreateRequest", "MessageEditRequestPartial"] {
        let pointer = format!("/components/schemas/{name}/properties/content/maxLength");
        if let Some(limit) = doc.pointer_mut(&pointer) {
            *limit = json!(2000);
        }
    }
}

/// A spec path template split into segments; `None` is a `{parameter}`.
struct PathTemplate {
    template: String,
    segments: Vec<Option<String>>,
}

impl PathTemplate {
    fn parse(template: &str) -> Self {
        let segments = template
            .split('/')
            .skip(1)
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
            .collect();
        Self {
            template: template.to_owned(),
            segments,
        }
    }

    /// Whether the path fits, and if so a rank: which segments matched literally.
    fn matches(&self, path: &[&str]) -> Option<Vec<bool>> {
        if path.len() != self.segments.len() {
            return None;
        }
        self.segments
            .iter()
            .zip(path)
            .map(|(expected, actual)| match expected {
                Some(literal) if literal == actual => Some(true),
                Some(_) => None,
                None if actual.is_empty() => None,
                None => Some(false),
            })
            .collect()
    }
}

/// A compiled body schema: one alternative, or the members of a union.
struct BodySchema {
    alternatives: Vec<Alternative>,
}

struct Alternative {
    name: Option<String>,
    /// Declared property names, for choosing union members (see module docs).
    properties: Option<BTreeSet<String>>,
    validator: Validator,
}

type Rejection = (Option<String>, Vec<FieldError>);

impl BodySchema {
    fn check(&self, body: &Value) -> Result<(), Rejection> {
        let keys: Option<Vec<&String>> = body.as_object().map(|o| o.keys().collect());
        let describes = |alt: &&Alternative| match (&alt.properties, &keys) {
            (Some(props), Some(keys)) => keys.iter().all(|k| props.contains(*k)),
            _ => true,
        };
        let mut candidates: Vec<&Alternative> =
            self.alternatives.iter().filter(describes).collect();
        if candidates.is_empty() {
            candidates = self.alternatives.iter().collect();
        }
        let mut best: Option<(BranchRank, Rejection)> = None;
        for alternative in candidates {
            let errors: Vec<ValidationError<'_>> =
                alternative.validator.iter_errors(body).collect();
            if errors.is_empty() {
                return Ok(());
            }
            let rank = BranchRank::of(&errors, "");
            if best.as_ref().is_none_or(|(r, _)| rank < *r) {
                let mut fields = Vec::new();
                for error in &errors {
                    leaf_errors(error, &mut fields);
                }
                best = Some((rank, (alternative.name.clone(), fields)));
            }
        }
        Err(best.map(|(_, rejection)| rejection).unwrap_or_default())
    }
}

/// How plausible a failed union member is as the one the sender meant:
/// members rejected on a discriminator (`type` value, or the wrong JSON type
/// for the whole value) rank last, then fewer errors rank first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct BranchRank {
    wrong_discriminator: bool,
    errors: usize,
}

impl BranchRank {
    fn of(errors: &[ValidationError<'_>], union_path: &str) -> Self {
        let wrong_discriminator = errors.iter().any(|e| {
            let path = e.instance_path().as_str();
            match e.kind() {
                ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. } => {
                    path.strip_prefix(union_path) == Some("/type")
                }
                ValidationErrorKind::Type { .. } => path == union_path,
                _ => false,
            }
        });
        Self {
            wrong_discriminator,
            errors: errors.len(),
        }
    }
}

/// Flattens an error into field errors, descending into the most plausible
/// member of failed `anyOf`/`oneOf` unions.
fn leaf_errors(error: &ValidationError<'_>, out: &mut Vec<FieldError>) {
    if let ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } =
        error.kind()
    {
        let union_path = error.instance_path().as_str();
        let best = context
            .iter()
            .filter(|branch| !branch.is_empty())
            .min_by_key(|branch| BranchRank::of(branch, union_path));
        if let Some(branch) = best {
            for inner in branch {
                leaf_errors(inner, out);
            }
            return;
        }
    }
    let field = field_error(error);
    // Two keywords often say the same about one field (`enum` and an
    // `allOf` of the enum type); report each field and code once.
    if !out
        .iter()
        .any(|e| e.path == field.path && e.code == field.code)
    {
        out.push(field);
    }
}

fn field_error(error: &ValidationError<'_>) -> FieldError {
    let mut path = error.instance_path().as_str().to_owned();
    let (code, message) = match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            path = format!("{path}/{}", name.replace('~', "~0").replace('/', "~1"));
            ("BASE_TYPE_REQUIRED", "This field is required".to_owned())
        }
        ValidationErrorKind::MaxLength { limit } | ValidationErrorKind::MaxItems { limit } => (
            "BASE_TYPE_MAX_LENGTH",
            format!("Must be {limit} or fewer in length."),
        ),
        ValidationErrorKind::MinLength { limit } | ValidationErrorKind::MinItems { limit } => (
            "BASE_TYPE_MIN_LENGTH",
            format!("Must be {limit} or more in length."),
        ),
        ValidationErrorKind::Maximum { limit } => (
            "NUMBER_TYPE_MAX",
            format!("int value should be less than or equal to {limit}."),
        ),
        ValidationErrorKind::Minimum { limit } => (
            "NUMBER_TYPE_MIN",
            format!("int value should be greater than or equal to {limit}."),
        ),
        ValidationErrorKind::Enum { options } => (
            "BASE_TYPE_CHOICES",
            format!("Value must be one of {options}."),
        ),
        ValidationErrorKind::Constant { expected_value } => (
            "BASE_TYPE_CHOICES",
            format!("Value must be one of [{expected_value}]."),
        ),
        ValidationErrorKind::Format { format } if format == "uri" => {
            ("URL_TYPE_INVALID_URL", "Not a well formed URL.".to_owned())
        }
        ValidationErrorKind::Type { kind } => ("BASE_TYPE_BAD_TYPE", type_message(kind)),
        _ => ("BASE_TYPE_INVALID", "Invalid value.".to_owned()),
    };
    FieldError {
        path,
        code,
        message,
        detail: shorten(&error.to_string()),
    }
}

fn type_message(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => format!("Must be of type {t}."),
        TypeKind::Multiple(set) => {
            let names: Vec<String> = set.iter().map(|t| t.to_string()).collect();
            format!("Must be of type {}.", names.join(" or "))
        }
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_DETAIL_CHARS {
        return text.to_owned();
    }
    let cut: String = text.chars().take(MAX_DETAIL_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_beat_parameters() {
        let spec = openapi().expect("spec loads");
        let t = spec
            .find_template("/webhooks/1/tok/messages/@original")
            .expect("matches");
        assert_eq!(
            t.template,
            "/webhooks/{webhook_id}/{webhook_token}/messages/@original"
        );
        let t = spec.find_template("/users/@me").expect("matches");
        assert_eq!(t.template, "/users/@me");
        assert!(spec.find_template("/no/such/route").is_none());
    }

    #[test]
    fn discord_errors_nest_by_field() {
        let failure = ValidationFailure {
            route: "POST /x".into(),
            schema: None,
            errors: vec![FieldError {
                path: "/embeds/0/title".into(),
                code: "BASE_TYPE_MAX_LENGTH",
                message: "Must be 256 or fewer in length.".into(),
                detail: String::new(),
            }],
        };
        assert_eq!(
            failure.discord_errors(),
            json!({"embeds": {"0": {"title": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}
            ]}}}})
        );
    }
}
