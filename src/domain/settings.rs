//! A server's settings: where its personalities answer, whether global ones do, and who may
//! create how many. Changed by the members who manage the server; every change is an event.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ChannelId, DomainError, DomainEvent, ServerId};

/// How many personalities a member may own in one server unless its settings say otherwise.
pub const DEFAULT_MEMBER_LIMIT: u16 = 10;
/// The highest per-member limit a server may set.
pub const MAX_MEMBER_LIMIT: u16 = 1000;
/// The most channels a server's allow- or deny-list holds.
pub const MAX_LISTED_CHANNELS: usize = 100;

/// What a server decided. A server that never changed anything has the defaults: every
/// channel, global personalities on, 10 personalities per member, everyone may create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub channels: ChannelMode,
    /// The channels `channels` lists; kept, but unused, while every channel is allowed.
    pub listed_channels: BTreeSet<ChannelId>,
    /// Whether global personalities answer in this server and show in its lists.
    pub globals: bool,
    pub member_limit: MemberLimit,
    /// Whether members without Manage Server may create personalities here.
    pub members_may_create: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            channels: ChannelMode::All,
            listed_channels: BTreeSet::new(),
            globals: true,
            member_limit: MemberLimit(DEFAULT_MEMBER_LIMIT),
            members_may_create: true,
        }
    }
}

impl Settings {
    /// Whether personalities answer in `channel` (for a thread: its parent channel).
    pub fn allows_channel(&self, channel: ChannelId) -> bool {
        match self.channels {
            ChannelMode::All => true,
            ChannelMode::Listed => self.listed_channels.contains(&channel),
            ChannelMode::AllButListed => !self.listed_channels.contains(&channel),
        }
    }

    /// The settings after `changes`, and which settings they changed; refused when a
    /// change breaks a rule or none changes anything.
    pub fn with(&self, changes: &[SettingChange]) -> Result<(Settings, Vec<Setting>), DomainError> {
        let mut next = self.clone();
        for change in changes {
            match *change {
                SettingChange::Channels(mode) => next.channels = mode,
                SettingChange::ListChannel(channel) => {
                    next.listed_channels.insert(channel);
                }
                SettingChange::UnlistChannel(channel) => {
                    if !next.listed_channels.remove(&channel) {
                        return Err(DomainError::invalid(
                            "channel",
                            format!("channel {channel} is not on the list"),
                        ));
                    }
                }
                SettingChange::Globals(on) => next.globals = on,
                SettingChange::MemberLimit(limit) => next.member_limit = limit,
                SettingChange::MembersMayCreate(may) => next.members_may_create = may,
            }
        }
        if next.listed_channels.len() > MAX_LISTED_CHANNELS {
            return Err(DomainError::invalid(
                "channel",
                format!("a server lists at most {MAX_LISTED_CHANNELS} channels"),
            ));
        }
        let changed: Vec<Setting> = [
            (Setting::Channels, next.channels != self.channels),
            (
                Setting::ListedChannels,
                next.listed_channels != self.listed_channels,
            ),
            (Setting::Globals, next.globals != self.globals),
            (Setting::MemberLimit, next.member_limit != self.member_limit),
            (
                Setting::MembersMayCreate,
                next.members_may_create != self.members_may_create,
            ),
        ]
        .into_iter()
        .filter_map(|(setting, differs)| differs.then_some(setting))
        .collect();
        if changed.is_empty() {
            return Err(DomainError::NothingToUpdate);
        }
        Ok((next, changed))
    }
}

/// Where a server's personalities answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelMode {
    /// In every channel.
    #[default]
    All,
    /// Only in the listed channels.
    Listed,
    /// In every channel but the listed ones.
    AllButListed,
}

impl ChannelMode {
    /// Every mode, with the word that names it on the command line and in Discord.
    pub const NAMES: [(ChannelMode, &'static str); 3] = [
        (ChannelMode::All, "all"),
        (ChannelMode::Listed, "listed"),
        (ChannelMode::AllButListed, "all-but-listed"),
    ];
}

impl fmt::Display for ChannelMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::NAMES
            .iter()
            .find(|(mode, _)| mode == self)
            .map_or("all", |(_, name)| name);
        f.write_str(name)
    }
}

impl FromStr for ChannelMode {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s.trim()))
            .map(|(mode, _)| *mode)
            .ok_or_else(|| {
                DomainError::invalid(
                    "channels",
                    format!("\"{s}\" is not one of: all, listed, all-but-listed"),
                )
            })
    }
}

/// The most personalities one member may own in a server: 1 to 1,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct MemberLimit(u16);

impl MemberLimit {
    pub fn new(limit: u16) -> Result<Self, DomainError> {
        if limit == 0 || limit > MAX_MEMBER_LIMIT {
            return Err(DomainError::invalid(
                "member_limit",
                format!(
                    "must be between 1 and {MAX_MEMBER_LIMIT} (to let only managers create, \
                     turn member creation off instead)"
                ),
            ));
        }
        Ok(Self(limit))
    }

    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl TryFrom<u16> for MemberLimit {
    type Error = DomainError;

    fn try_from(value: u16) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<MemberLimit> for u16 {
    fn from(value: MemberLimit) -> Self {
        value.0
    }
}

impl fmt::Display for MemberLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One change a manager asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingChange {
    Channels(ChannelMode),
    ListChannel(ChannelId),
    UnlistChannel(ChannelId),
    Globals(bool),
    MemberLimit(MemberLimit),
    MembersMayCreate(bool),
}

/// One setting, as listed in `ServerSettingsChanged::changed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    Channels,
    ListedChannels,
    Globals,
    MemberLimit,
    MembersMayCreate,
}

/// A server's settings as stored: the aggregate the settings events belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    pub server: ServerId,
    pub settings: Settings,
    /// How many settings events the server has (0: never changed, the defaults).
    pub version: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

impl ServerSettings {
    /// The defaults of a server that never changed its settings.
    pub fn defaults(server: ServerId) -> Self {
        Self {
            server,
            settings: Settings::default(),
            version: 0,
            updated_at: None,
        }
    }

    /// Applies `changes`: the new state and the event that records it.
    pub fn change(
        &self,
        changes: &[SettingChange],
        now: DateTime<Utc>,
    ) -> Result<(ServerSettings, DomainEvent), DomainError> {
        let (settings, changed) = self.settings.with(changes)?;
        let event = DomainEvent::ServerSettingsChanged {
            server: self.server,
            changed,
            settings: settings.clone(),
        };
        let next = ServerSettings {
            server: self.server,
            settings,
            version: self.version + 1,
            updated_at: Some(now),
        };
        Ok((next, event))
    }

    /// The state a server's settings events lead to; `None` without events.
    pub fn from_history<'a>(
        server: ServerId,
        history: impl IntoIterator<Item = (&'a DomainEvent, DateTime<Utc>)>,
    ) -> Option<Self> {
        let mut state: Option<ServerSettings> = None;
        for (event, at) in history {
            if let DomainEvent::ServerSettingsChanged { settings, .. } = event {
                let version = state.as_ref().map_or(0, |s| s.version) + 1;
                state = Some(ServerSettings {
                    server,
                    settings: settings.clone(),
                    version,
                    updated_at: Some(at),
                });
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(id: u64) -> ChannelId {
        ChannelId::new(id).unwrap()
    }

    #[test]
    fn a_list_decides_only_once_its_mode_says_so() {
        let (listed, _) = Settings::default()
            .with(&[SettingChange::ListChannel(channel(1))])
            .unwrap();
        assert!(
            listed.allows_channel(channel(2)),
            "mode all ignores the list"
        );
        let (only, changed) = listed
            .with(&[SettingChange::Channels(ChannelMode::Listed)])
            .unwrap();
        assert_eq!(changed, vec![Setting::Channels]);
        assert!(only.allows_channel(channel(1)));
        assert!(!only.allows_channel(channel(2)));
        let (except, _) = only
            .with(&[SettingChange::Channels(ChannelMode::AllButListed)])
            .unwrap();
        assert!(!except.allows_channel(channel(1)));
        assert!(except.allows_channel(channel(2)));
    }

    #[test]
    fn a_change_that_changes_nothing_is_refused() {
        let defaults = Settings::default();
        assert_eq!(
            defaults.with(&[SettingChange::Globals(true)]),
            Err(DomainError::NothingToUpdate)
        );
        assert!(matches!(
            defaults.with(&[SettingChange::UnlistChannel(channel(3))]),
            Err(DomainError::Invalid {
                field: "channel",
                ..
            })
        ));
    }

    #[test]
    fn the_list_and_the_limit_have_bounds() {
        assert!(MemberLimit::new(0).is_err());
        assert!(MemberLimit::new(MAX_MEMBER_LIMIT + 1).is_err());
        assert_eq!(MemberLimit::new(3).map(MemberLimit::get), Ok(3));
        let too_many: Vec<_> = (1..=MAX_LISTED_CHANNELS as u64 + 1)
            .map(|id| SettingChange::ListChannel(channel(id)))
            .collect();
        assert!(Settings::default().with(&too_many).is_err());
    }

    #[test]
    fn the_state_is_the_fold_of_its_events() {
        let server = ServerId::new(5).unwrap();
        let now = Utc::now();
        let (first, e1) = ServerSettings::defaults(server)
            .change(&[SettingChange::Globals(false)], now)
            .unwrap();
        let (second, e2) = first
            .change(
                &[SettingChange::MemberLimit(MemberLimit::new(2).unwrap())],
                now,
            )
            .unwrap();
        let folded = ServerSettings::from_history(server, [(&e1, now), (&e2, now)]);
        assert_eq!(folded, Some(second));
    }
}
