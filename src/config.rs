//! Configuration from the environment (and `.env`). A bad value stops start-up with a
//! message naming the variable.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;
use url::Url;

use crate::discord::AttachmentHosts;
use crate::domain::UserId;
use crate::store::Synchronous;

/// A variable had a value personae can't use.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Settings every command needs: where the database is, who the admins are, how to log.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_path: PathBuf,
    pub database_synchronous: Synchronous,
    pub admin_ids: HashSet<UserId>,
    pub log_format: LogFormat,
    pub handler_timeout: Duration,
    /// The models a personality may be given (LLM_ALLOWED_MODELS); empty: any.
    pub allowed_models: Vec<String>,
}

/// Settings `personae run` needs on top of [`Config`].
#[derive(Clone)]
pub struct DiscordConfig {
    pub token: String,
    /// Base URL replacing <https://discord.com> (a rate-limit proxy, a compatible server, tests).
    pub api_url: Option<Url>,
    /// The bases downloads of members' attachments must start with (Discord's CDN by default).
    pub attachment_hosts: AttachmentHosts,
    pub dev_guild_id: Option<u64>,
    pub llm_base_url: Url,
    pub llm_api_key: Option<String>,
    pub llm_model: String,
    pub llm_timeout: Duration,
    /// LLM calls a user may cause per minute.
    pub llm_calls_per_minute: u32,
    /// LLM calls one server's members may cause per minute, together.
    pub llm_calls_per_minute_per_server: u32,
    /// The most tokens an answer may have (sent as `max_tokens`).
    pub llm_max_tokens: u32,
    /// The most Discord messages one answer fills; the rest is cut with a marker.
    pub llm_max_messages_per_answer: u32,
    /// LLM calls in flight across the bot; the rest wait their turn, in order.
    pub llm_max_concurrent: u32,
    /// Earlier channel messages sent to the model with each question (0: the reply chain only).
    pub llm_context_messages: u8,
    /// Where to serve /healthz and /metrics; `None` serves neither.
    pub metrics_addr: Option<SocketAddr>,
}

impl fmt::Debug for DiscordConfig {
    // Written by hand so that the token and the API key can never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("token", &"***")
            .field("api_url", &self.api_url.as_ref().map(Url::as_str))
            .field("attachment_hosts", &self.attachment_hosts)
            .field("dev_guild_id", &self.dev_guild_id)
            .field("llm_base_url", &self.llm_base_url.as_str())
            .field("llm_api_key", &self.llm_api_key.as_ref().map(|_| "***"))
            .field("llm_model", &self.llm_model)
            .field("llm_timeout", &self.llm_timeout)
            .field("llm_calls_per_minute", &self.llm_calls_per_minute)
            .field(
                "llm_calls_per_minute_per_server",
                &self.llm_calls_per_minute_per_server,
            )
            .field("llm_max_tokens", &self.llm_max_tokens)
            .field(
                "llm_max_messages_per_answer",
                &self.llm_max_messages_per_answer,
            )
            .field("llm_max_concurrent", &self.llm_max_concurrent)
            .field("llm_context_messages", &self.llm_context_messages)
            .field("metrics_addr", &self.metrics_addr)
            .finish()
    }
}

/// Reads a variable; empty counts as unset.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`Env`].
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Reads DATABASE_PATH, DATABASE_SYNCHRONOUS, BOT_ADMIN_IDS, LOG_FORMAT,
    /// EVENT_HANDLER_TIMEOUT_SECS and LLM_ALLOWED_MODELS.
    pub fn from_env(env: Env<'_>) -> Result<Self, ConfigError> {
        let database_path =
            env("DATABASE_PATH").map_or_else(|| PathBuf::from("data/personae.db"), PathBuf::from);
        let database_synchronous = match env("DATABASE_SYNCHRONOUS") {
            Some(v) => v
                .parse()
                .map_err(|reason| invalid("DATABASE_SYNCHRONOUS", reason))?,
            None => Synchronous::default(),
        };
        let admin_ids = match env("BOT_ADMIN_IDS") {
            Some(list) => parse_admins(&list)?,
            None => HashSet::new(),
        };
        let log_format = match env("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => LogFormat::Pretty,
            Some(v) if v == "pretty" => LogFormat::Pretty,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) => {
                return Err(invalid(
                    "LOG_FORMAT",
                    format!("\"{v}\" is not one of: pretty, json"),
                ))
            }
        };
        let handler_timeout = seconds(env, "EVENT_HANDLER_TIMEOUT_SECS", 5)?;
        let allowed_models = env("LLM_ALLOWED_MODELS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(|m| {
                        crate::domain::ModelName::parse(m)
                            .map(|_| m.to_owned())
                            .map_err(|e| invalid("LLM_ALLOWED_MODELS", e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            database_path,
            database_synchronous,
            admin_ids,
            log_format,
            handler_timeout,
            allowed_models,
        })
    }
}

impl DiscordConfig {
    /// Reads DISCORD_TOKEN (required), DISCORD_API_URL, DISCORD_ATTACHMENT_URLS, DEV_GUILD_ID, LLM_BASE_URL,
    /// LLM_API_KEY, LLM_MODEL, LLM_TIMEOUT_SECS, LLM_CALLS_PER_MINUTE, LLM_CONTEXT_MESSAGES
    /// and METRICS_ADDR.
    pub fn from_env(env: Env<'_>) -> Result<Self, ConfigError> {
        let token = env("DISCORD_TOKEN").ok_or_else(|| {
            invalid(
                "DISCORD_TOKEN",
                "not set: put your bot's token (Developer Portal → your application → Bot → Reset Token) in .env",
            )
        })?;
        let token = token.trim().trim_start_matches("Bot ").trim().to_owned();
        if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                "DISCORD_TOKEN",
                "must not contain spaces or line breaks",
            ));
        }
        let api_url = env("DISCORD_API_URL")
            .map(|v| parse_http_url("DISCORD_API_URL", &v))
            .transpose()?;
        let attachment_hosts = env("DISCORD_ATTACHMENT_URLS")
            .map(|v| AttachmentHosts::parse(&v).map_err(|e| invalid("DISCORD_ATTACHMENT_URLS", e)))
            .transpose()?
            .unwrap_or_default();
        let dev_guild_id = env("DEV_GUILD_ID")
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| {
                        invalid(
                            "DEV_GUILD_ID",
                            format!("\"{v}\" is not a Discord server id"),
                        )
                    })
            })
            .transpose()?;
        let llm_base_url = parse_http_url(
            "LLM_BASE_URL",
            &env("LLM_BASE_URL").unwrap_or_else(|| "http://127.0.0.1:11434/v1".to_owned()),
        )?;
        let llm_model = env("LLM_MODEL").unwrap_or_else(|| "llama3.1".to_owned());
        crate::domain::ModelName::parse(&llm_model)
            .map_err(|e| invalid("LLM_MODEL", e.to_string()))?;
        let llm_calls_per_minute = positive(env, "LLM_CALLS_PER_MINUTE", 10)?;
        let llm_context_messages = match env("LLM_CONTEXT_MESSAGES") {
            Some(v) => v
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= MAX_CONTEXT_MESSAGES)
                .ok_or_else(|| {
                    invalid(
                        "LLM_CONTEXT_MESSAGES",
                        format!("\"{v}\" is not a whole number from 0 to {MAX_CONTEXT_MESSAGES}"),
                    )
                })?,
            None => 10,
        };
        let metrics_addr = env("METRICS_ADDR")
            .map(|v| {
                v.trim().parse::<SocketAddr>().map_err(|_| {
                    invalid(
                        "METRICS_ADDR",
                        format!("\"{v}\" is not an address and port such as 127.0.0.1:9184"),
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            token,
            api_url,
            attachment_hosts,
            dev_guild_id,
            llm_base_url,
            llm_api_key: env("LLM_API_KEY").map(|k| k.trim().to_owned()),
            llm_model: llm_model.trim().to_owned(),
            llm_timeout: seconds(env, "LLM_TIMEOUT_SECS", 60)?,
            llm_calls_per_minute,
            llm_calls_per_minute_per_server: positive(env, "LLM_CALLS_PER_MINUTE_PER_SERVER", 30)?,
            llm_max_tokens: positive(env, "LLM_MAX_TOKENS", 1024)?,
            llm_max_messages_per_answer: positive(env, "LLM_MAX_MESSAGES_PER_ANSWER", 3)?,
            llm_max_concurrent: positive(env, "LLM_MAX_CONCURRENT", 4)?,
            llm_context_messages,
            metrics_addr,
        })
    }
}

/// Discord hands out at most 100 messages per history request.
const MAX_CONTEXT_MESSAGES: u8 = 100;

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        reason: reason.into(),
    }
}

fn parse_admins(list: &str) -> Result<HashSet<UserId>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<UserId>().map_err(|_| {
                invalid(
                    "BOT_ADMIN_IDS",
                    format!("\"{s}\" is not a Discord user id (digits only)"),
                )
            })
        })
        .collect()
}

/// A whole number above zero, or `default` when unset.
fn positive(env: Env<'_>, var: &'static str, default: u32) -> Result<u32, ConfigError> {
    match env(var) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| invalid(var, format!("\"{v}\" is not a positive whole number"))),
    }
}

fn seconds(env: Env<'_>, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
    match env(var) {
        None => Ok(Duration::from_secs(default)),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                invalid(
                    var,
                    format!("\"{v}\" is not a number of seconds between 0 and 86400"),
                )
            }),
    }
}

fn parse_http_url(var: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim())
        .map_err(|e| invalid(var, format!("\"{value}\" is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(var, "must start with http:// or https://"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = Config::from_env(&env(&[])).unwrap();
        assert_eq!(config.database_path, PathBuf::from("data/personae.db"));
        assert!(config.admin_ids.is_empty());
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.handler_timeout, Duration::from_secs(5));
    }

    #[test]
    fn admin_ids_are_a_comma_separated_list() {
        let config = Config::from_env(&env(&[("BOT_ADMIN_IDS", " 1, 22 ,333,")])).unwrap();
        assert_eq!(config.admin_ids.len(), 3);
        assert!(config.admin_ids.contains(&UserId::new(22).unwrap()));
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (var, value) in [
            ("BOT_ADMIN_IDS", "12,abc"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_SYNCHRONOUS", "sometimes"),
            ("EVENT_HANDLER_TIMEOUT_SECS", "-1"),
            ("LLM_ALLOWED_MODELS", "gpt-4o, bad model"),
        ] {
            let err = Config::from_env(&env(&[(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.to_string().starts_with(var));
        }
        for (var, value) in [
            ("DISCORD_API_URL", "ftp://x"),
            (
                "DISCORD_ATTACHMENT_URLS",
                "https://cdn.discordapp.com,ftp://x",
            ),
            ("DEV_GUILD_ID", "guild"),
            ("LLM_BASE_URL", "not a url"),
            ("LLM_TIMEOUT_SECS", "soon"),
            ("LLM_MODEL", "bad model"),
            ("LLM_CALLS_PER_MINUTE", "0"),
            ("LLM_CALLS_PER_MINUTE_PER_SERVER", "-3"),
            ("LLM_MAX_TOKENS", "0"),
            ("LLM_MAX_MESSAGES_PER_ANSWER", "many"),
            ("LLM_MAX_CONCURRENT", "0"),
            ("LLM_CONTEXT_MESSAGES", "101"),
            ("LLM_CONTEXT_MESSAGES", "-1"),
            ("METRICS_ADDR", "localhost"),
        ] {
            let err =
                DiscordConfig::from_env(&env(&[("DISCORD_TOKEN", "t"), (var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{err}");
        }
    }

    #[test]
    fn a_missing_token_is_a_clear_error_and_the_token_never_prints() {
        let err = DiscordConfig::from_env(&env(&[])).unwrap_err();
        assert_eq!(err.var, "DISCORD_TOKEN");
        let config = DiscordConfig::from_env(&env(&[
            ("DISCORD_TOKEN", "secret-token"),
            ("LLM_API_KEY", "sk-secret"),
        ]))
        .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("secret-token") && !shown.contains("sk-secret"),
            "{shown}"
        );
    }
}
