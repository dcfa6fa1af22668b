//! The host's cost limits on the message path: how many LLM calls a member and a server may
//! cause a minute, how many calls run at once, and how many Discord messages one answer fills.

use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::idle_map::IdleMap;
use super::limiter::CallLimiter;
use crate::config::DiscordConfig;

/// How long the limits count calls over, and how often a member is told about them.
const MINUTE: Duration = Duration::from_secs(60);

/// Which limit refused a call, and how long until it lets the next one through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    Member(Duration),
    Server(Duration),
}

/// The limits of one running bot.
pub struct CostLimits {
    per_member: CallLimiter,
    per_server: CallLimiter,
    /// LLM calls in flight; tokio's semaphore hands out permits in the order asked.
    slots: Semaphore,
    /// When each member was last told they are over a limit.
    notified: IdleMap<u64, Instant>,
    /// The most Discord messages one answer fills.
    pub max_messages: usize,
}

impl CostLimits {
    /// The limits the host configured.
    pub fn new(discord: &DiscordConfig) -> Self {
        Self {
            per_member: CallLimiter::new(discord.llm_calls_per_minute, MINUTE),
            per_server: CallLimiter::new(discord.llm_calls_per_minute_per_server, MINUTE),
            slots: Semaphore::new(discord.llm_max_concurrent as usize),
            notified: IdleMap::new(MINUTE),
            max_messages: discord.llm_max_messages_per_answer as usize,
        }
    }

    /// Counts an LLM call by `member` in `server` (`None`: a DM), or says which limit it is
    /// over. A call refused by the server's limit doesn't count for the member.
    pub fn admit(&self, member: u64, server: Option<u64>, now: Instant) -> Result<(), OverLimit> {
        self.per_member
            .try_acquire(member, now)
            .map_err(OverLimit::Member)?;
        if let Some(server) = server {
            if let Err(wait) = self.per_server.try_acquire(server, now) {
                self.per_member.give_back(member, now);
                return Err(OverLimit::Server(wait));
            }
        }
        Ok(())
    }

    /// True when `member` should be told about a refusal now: at most once a minute, so a
    /// member who keeps writing gets one notice, not one per message.
    pub fn should_notify(&self, member: u64, now: Instant) -> bool {
        let recently = self
            .notified
            .get(&member)
            .is_some_and(|at| now.saturating_duration_since(at) < MINUTE);
        if !recently {
            self.notified.insert(member, now, now);
        }
        !recently
    }

    /// Waits for a free LLM slot; the call holds it until the permit is dropped.
    pub async fn slot(&self) -> Option<SemaphorePermit<'_>> {
        // Never closed, so acquiring only fails if someone closes it: then don't wait.
        self.slots.acquire().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(member: &str, server: &str, concurrent: &str) -> CostLimits {
        let env = |var: &str| match var {
            "DISCORD_TOKEN" => Some("t".to_owned()),
            "LLM_CALLS_PER_MINUTE" => Some(member.to_owned()),
            "LLM_CALLS_PER_MINUTE_PER_SERVER" => Some(server.to_owned()),
            "LLM_MAX_CONCURRENT" => Some(concurrent.to_owned()),
            _ => None,
        };
        CostLimits::new(&DiscordConfig::from_env(&env).unwrap())
    }

    #[test]
    fn a_server_is_limited_across_its_members_and_dms_only_per_member() {
        let limits = limits("2", "3", "1");
        let now = Instant::now();
        for member in 1..=3 {
            assert_eq!(limits.admit(member, Some(10), now), Ok(()));
        }
        assert!(matches!(
            limits.admit(4, Some(10), now),
            Err(OverLimit::Server(_))
        ));
        // The refused call didn't count for the member: two more elsewhere are theirs.
        assert_eq!(limits.admit(4, Some(11), now), Ok(()), "another server");
        assert_eq!(limits.admit(4, Some(11), now), Ok(()));
        assert_eq!(limits.admit(5, None, now), Ok(()));
        assert_eq!(limits.admit(5, None, now), Ok(()));
        assert!(matches!(
            limits.admit(5, None, now),
            Err(OverLimit::Member(_))
        ));
    }

    #[test]
    fn a_member_is_told_once_a_minute() {
        let limits = limits("1", "1", "1");
        let now = Instant::now();
        assert!(limits.should_notify(7, now));
        assert!(!limits.should_notify(7, now + Duration::from_secs(30)));
        assert!(limits.should_notify(8, now), "each member once");
        assert!(limits.should_notify(7, now + Duration::from_secs(61)));
    }

    #[tokio::test]
    async fn calls_beyond_the_concurrency_limit_wait_for_a_slot() {
        let limits = limits("10", "10", "2");
        let first = limits.slot().await;
        let second = limits.slot().await;
        let third = tokio::time::timeout(Duration::from_millis(50), limits.slot()).await;
        assert!(third.is_err(), "a third call waits");
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(1), limits.slot()).await;
        assert!(third.is_ok(), "and runs once a slot is free");
        drop(second);
    }
}
