//! JSON shapes the fake sends: users, members, messages, channels, webhooks,
//! commands, the application and the guild. REST shapes follow the response
//! schemas of Discord's OpenAPI description; gateway-only shapes follow
//! Discord's gateway documentation and are checked against serenity's models
//! in this crate's tests.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Discord's epoch (2015-01-01T00:00:00Z) in milliseconds since the Unix epoch.
pub(crate) const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Everything a permission bitfield can hold in this fake: "all permissions".
pub(crate) const ALL_PERMISSIONS: &str = "2147483647";

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The creation time encoded in a snowflake, as an RFC 3339 timestamp.
/// Ids that are not snowflakes (small test ids such as `"7001"`) map to
/// early 2015, which is still a valid time.
pub(crate) fn snowflake_timestamp(id: &str) -> String {
    let ms = id.parse::<u64>().map_or(0, |n| n >> 22);
    rfc3339(DISCORD_EPOCH_MS.saturating_add(ms))
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmm+00:00`.
pub(crate) fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A user object (`UserResponse`).
pub(crate) fn user(id: &str, username: &str, bot: bool) -> Value {
    json!({
        "id": id,
        "username": username,
        "avatar": null,
        "discriminator": "0",
        "public_flags": 0,
        "flags": 0,
        "bot": bot,
        "global_name": null,
        "primary_guild": null,
    })
}

/// The current bot user as `GET /users/@me` returns it (`UserPIIResponse`).
pub(crate) fn current_user(id: &str, username: &str) -> Value {
    let mut value = user(id, username, true);
    value["mfa_enabled"] = json!(false);
    value["locale"] = json!("en-US");
    value["verified"] = json!(true);
    value
}

/// A guild member (`GuildMemberResponse`), with `permissions` when given
/// (interactions carry the member's permissions in the channel).
pub(crate) fn member(user: Value, permissions: Option<&str>) -> Value {
    let mut value = json!({
        "avatar": null,
        "banner": null,
        "communication_disabled_until": null,
        "flags": 0,
        "joined_at": rfc3339(DISCORD_EPOCH_MS + 86_400_000),
        "nick": null,
        "pending": false,
        "premium_since": null,
        "roles": [],
        "user": user,
        "mute": false,
        "deaf": false,
    });
    if let Some(permissions) = permissions {
        value["permissions"] = json!(permissions);
    }
    value
}

/// A guild text channel (`GuildChannelResponse`, type 0).
pub(crate) fn text_channel(id: &str, guild_id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "type": 0,
        "flags": 0,
        "guild_id": guild_id,
        "name": name,
        "position": 0,
        "parent_id": null,
        "topic": null,
        "nsfw": false,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "permission_overwrites": [],
    })
}

/// A public thread (`ThreadResponse`, type 11).
pub(crate) fn thread(
    id: &str,
    guild_id: &str,
    parent_id: &str,
    owner_id: &str,
    name: &str,
) -> Value {
    json!({
        "id": id,
        "type": 11,
        "flags": 0,
        "guild_id": guild_id,
        "parent_id": parent_id,
        "name": name,
        "owner_id": owner_id,
        "last_message_id": null,
        "rate_limit_per_user": 0,
        "thread_metadata": {
            "archived": false,
            "archive_timestamp": snowflake_timestamp(id),
            "auto_archive_duration": 1440,
            "locked": false,
        },
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
    })
}

/// A direct-message channel (`PrivateChannelResponse`, type 1).
pub(crate) fn dm_channel(id: &str, recipient: Value) -> Value {
    json!({
        "id": id,
        "type": 1,
        "flags": 0,
        "last_message_id": null,
        "recipients": [recipient],
    })
}

/// What a message is made of; [`MessageDraft::to_json`] gives the full
/// `MessageResponse` object.
#[derive(Clone, Debug)]
pub(crate) struct MessageDraft {
    pub id: String,
    pub channel_id: String,
    pub author: Value,
    pub content: String,
    /// Discord message type: 0 default, 19 reply, 20 slash-command response.
    pub kind: u8,
    pub flags: u64,
    pub embeds: Vec<Value>,
    pub components: Vec<Value>,
    pub webhook_id: Option<String>,
    pub application_id: Option<String>,
    pub reference: Option<Value>,
    pub referenced_message: Option<Value>,
    pub interaction_metadata: Option<Value>,
    pub tts: bool,
    pub edited_timestamp: Option<String>,
    pub attachments: Vec<Value>,
}

impl MessageDraft {
    pub(crate) fn new(id: &str, channel_id: &str, author: Value, content: &str) -> Self {
        Self {
            id: id.to_owned(),
            channel_id: channel_id.to_owned(),
            author,
            content: content.to_owned(),
            kind: 0,
            flags: 0,
            embeds: Vec::new(),
            components: Vec::new(),
            webhook_id: None,
            application_id: None,
            reference: None,
            referenced_message: None,
            interaction_metadata: None,
            tts: false,
            edited_timestamp: None,
            attachments: Vec::new(),
        }
    }

    /// Copies what a create/execute/edit request body sets: content, embeds,
    /// components, flags, tts.
    pub(crate) fn apply_body(&mut self, body: &Value) {
        if let Some(content) = body.get("content").and_then(Value::as_str) {
            content.clone_into(&mut self.content);
        }
        if let Some(embeds) = body.get("embeds").and_then(Value::as_array) {
            self.embeds = embeds.iter().map(response_embed).collect();
        }
        if let Some(components) = body.get("components").and_then(Value::as_array) {
            self.components = response_components(components);
        }
        if let Some(flags) = body.get("flags").and_then(Value::as_u64) {
            // Only SUPPRESS_EMBEDS (4), EPHEMERAL (64) and SUPPRESS_NOTIFICATIONS
            // (4096) can be set by a sender; Discord ignores the rest.
            self.flags = flags & (4 | 64 | 4096);
        }
        if let Some(tts) = body.get("tts").and_then(Value::as_bool) {
            self.tts = tts;
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut value = json!({
            "id": self.id,
            "type": self.kind,
            "channel_id": self.channel_id,
            "author": self.author,
            "content": self.content,
            "timestamp": snowflake_timestamp(&self.id),
            "edited_timestamp": self.edited_timestamp,
            "tts": self.tts,
            "mention_everyone": false,
            "mentions": mentioned_users(&self.content),
            "mention_roles": [],
            "attachments": self.attachments,
            "embeds": self.embeds,
            "components": self.components,
            "pinned": false,
            "flags": self.flags,
        });
        let optional = [
            ("webhook_id", self.webhook_id.clone().map(Value::String)),
            (
                "application_id",
                self.application_id.clone().map(Value::String),
            ),
            ("message_reference", self.reference.clone()),
            ("referenced_message", self.referenced_message.clone()),
            ("interaction_metadata", self.interaction_metadata.clone()),
        ];
        for (key, field) in optional {
            if let Some(field) = field {
                value[key] = field;
            }
        }
        value
    }
}

/// The users a message content mentions with `<@id>` or `<@!id>`, as
/// partial user objects named `user<id>`.
fn mentioned_users(content: &str) -> Vec<Value> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        rest = &rest[start + 2..];
        let digits = rest.strip_prefix('!').unwrap_or(rest);
        let id: String = digits.chars().take_while(char::is_ascii_digit).collect();
        if !id.is_empty() && digits[id.len()..].starts_with('>') && !found.contains(&id) {
            found.push(id);
        }
    }
    found
        .iter()
        .map(|id| user(id, &format!("user{id}"), false))
        .collect()
}

/// An embed as Discord echoes it back: nulls dropped, `type: rich`, and
/// every field with `inline`.
fn response_embed(embed: &Value) -> Value {
    let mut embed = without_nulls(embed);
    if let Some(map) = embed.as_object_mut() {
        map.entry("type").or_insert_with(|| json!("rich"));
        if let Some(fields) = map.get_mut("fields").and_then(Value::as_array_mut) {
            for field in fields.iter_mut().filter_map(Value::as_object_mut) {
                field.entry("inline").or_insert(json!(false));
            }
        }
    }
    embed
}

/// Components as Discord echoes them back: nulls dropped, every component
/// numbered (`id`, depth first from 1, unless the sender set one), and
/// select menus with their default `min_values`/`max_values` of 1.
fn response_components(components: &[Value]) -> Vec<Value> {
    fn number(component: &mut Value, next: &mut u64) {
        let Some(map) = component.as_object_mut() else {
            return;
        };
        if !map.contains_key("id") {
            map.insert("id".to_owned(), json!(*next));
        }
        *next += 1;
        if matches!(map.get("type").and_then(Value::as_u64), Some(3 | 5..=8)) {
            map.entry("min_values").or_insert(json!(1));
            map.entry("max_values").or_insert(json!(1));
        }
        if let Some(children) = map.get_mut("components").and_then(Value::as_array_mut) {
            for child in children {
                number(child, next);
            }
        }
    }
    let mut next = 1;
    components
        .iter()
        .map(|component| {
            let mut component = without_nulls(component);
            number(&mut component, &mut next);
            component
        })
        .collect()
}

/// A copy of a JSON value with every `null` object member removed.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// A `message_reference` pointing at a message.
pub(crate) fn message_reference(
    message_id: &str,
    channel_id: &str,
    guild_id: Option<&str>,
) -> Value {
    let mut value = json!({"type": 0, "message_id": message_id, "channel_id": channel_id});
    if let Some(guild_id) = guild_id {
        value["guild_id"] = json!(guild_id);
    }
    value
}

/// A channel webhook (`GuildIncomingWebhookResponse`), with its token.
pub(crate) struct WebhookView<'a> {
    pub id: &'a str,
    pub token: &'a str,
    pub name: &'a str,
    pub avatar: Option<&'a str>,
    pub channel_id: &'a str,
    pub guild_id: &'a str,
    pub application_id: &'a str,
    pub creator: Value,
    pub base_url: &'a str,
}

impl WebhookView<'_> {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": 1,
            "name": self.name,
            "avatar": self.avatar,
            "channel_id": self.channel_id,
            "guild_id": self.guild_id,
            "application_id": self.application_id,
            "user": self.creator,
            "token": self.token,
            "url": format!("{}/api/webhooks/{}/{}", self.base_url, self.id, self.token),
        })
    }
}

/// A registered command (`ApplicationCommandResponse`) built from the
/// request body that registered it.
pub(crate) fn command_response(
    request: &Value,
    id: &str,
    application_id: &str,
    guild_id: Option<&str>,
) -> Value {
    let mut value = json!({
        "id": id,
        "application_id": application_id,
        "version": id,
        "type": request.get("type").filter(|t| !t.is_null()).cloned().unwrap_or(json!(1)),
        "name": request.get("name").cloned().unwrap_or(json!("")),
        "description": request.get("description").filter(|d| !d.is_null()).cloned().unwrap_or(json!("")),
        "default_member_permissions": request
            .get("default_member_permissions")
            .filter(|p| !p.is_null())
            .map(|p| p.as_str().map_or_else(|| json!(p.to_string()), |s| json!(s)))
            .unwrap_or(Value::Null),
        "dm_permission": request.get("dm_permission").and_then(Value::as_bool).unwrap_or(true),
        "nsfw": request.get("nsfw").and_then(Value::as_bool).unwrap_or(false),
    });
    for key in [
        "name_localizations",
        "description_localizations",
        "contexts",
        "integration_types",
    ] {
        if let Some(field) = request.get(key).filter(|f| !f.is_null()) {
            value[key] = field.clone();
        }
    }
    if let Some(options) = request.get("options").and_then(Value::as_array) {
        value["options"] = json!(options.iter().map(option_response).collect::<Vec<_>>());
    }
    if let Some(guild_id) = guild_id {
        value["guild_id"] = json!(guild_id);
    }
    value
}

/// A command option as Discord echoes it: empty lists and nulls dropped.
fn option_response(option: &Value) -> Value {
    let mut option = option.clone();
    if let Some(map) = option.as_object_mut() {
        map.retain(|_, v| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)));
        if let Some(nested) = map.get_mut("options").and_then(Value::as_array_mut) {
            for inner in nested.iter_mut() {
                *inner = option_response(inner);
            }
        }
    }
    option
}

/// The bot's application (`PrivateApplicationResponse`).
pub(crate) fn application(application_id: &str, bot: &Value) -> Value {
    json!({
        "id": application_id,
        "name": "personae-test",
        "icon": null,
        "description": "Fake application served by personae's fake Discord",
        "type": null,
        "bot": bot,
        "bot_public": false,
        "bot_require_code_grant": false,
        "verify_key": "0000000000000000000000000000000000000000000000000000000000000000",
        "flags": 0,
        "flags_new": "0",
        "redirect_uris": [],
        "interactions_endpoint_url": null,
        "role_connections_verification_url": null,
        "owner": user("1", "owner", false),
        "approximate_guild_count": 1,
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0,
        "team": null,
        "eligible_oauth2_scopes": [],
    })
}

/// The guild as a GUILD_CREATE dispatch carries it, with its channels and
/// the bot as a member.
pub(crate) fn guild_create(
    guild_id: &str,
    name: &str,
    owner_id: &str,
    bot: &Value,
    channels: Vec<Value>,
    threads: Vec<Value>,
) -> Value {
    let mut guild = json!({
        "id": guild_id,
        "name": name,
        "icon": null,
        "icon_hash": null,
        "splash": null,
        "discovery_splash": null,
        "owner_id": owner_id,
        "afk_channel_id": null,
        "afk_timeout": 300,
        "widget_enabled": false,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [{
            "id": guild_id,
            "name": "@everyone",
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
            "hoist": false,
            "icon": null,
            "unicode_emoji": null,
            "position": 0,
            "permissions": "1071698660929",
            "managed": false,
            "mentionable": false,
            "flags": 0,
        }],
        "emojis": [],
        "features": [],
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": null,
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "max_presences": null,
        "max_members": 500_000,
        "vanity_url_code": null,
        "description": null,
        "banner": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": null,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "nsfw_level": 0,
        "stickers": [],
        "premium_progress_bar_enabled": false,
        "safety_alerts_channel_id": null,
        "incidents_data": null,
    });
    let create_fields = json!({
        "joined_at": rfc3339(DISCORD_EPOCH_MS + 86_400_000),
        "large": false,
        "unavailable": false,
        "member_count": 1,
        "voice_states": [],
        "members": [member(bot.clone(), None)],
        "channels": channels,
        "threads": threads,
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    });
    if let (Some(guild), Value::Object(extra)) = (guild.as_object_mut(), create_fields) {
        guild.extend(extra);
    }
    guild
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(rfc3339(DISCORD_EPOCH_MS), "2015-01-01T00:00:00.000+00:00");
        assert_eq!(rfc3339(1_709_210_096_789), "2024-02-29T12:34:56.789+00:00");
        assert_eq!(snowflake_timestamp("7001"), "2015-01-01T00:00:00.000+00:00");
    }

    #[test]
    fn mentions_are_parsed_from_content() {
        let mentions = mentioned_users("hi <@123> and <@!456>, not <@abc> nor <@789");
        let ids: Vec<&str> = mentions.iter().filter_map(|u| u["id"].as_str()).collect();
        assert_eq!(ids, ["123", "456"]);
    }
}
