//! `load -- memory`: 100,000 distinct users in 100,000 distinct channels through the state
//! the message path keeps per user and per channel (the call limiter, the webhook and target
//! caches, the `/reset` points), on a simulated clock, printing resident memory as it goes.
//! Without idle eviction every map ends with one entry per user or channel; with it each
//! holds what the last idle period used, and memory levels off.

use std::time::{Duration, Instant};

use personae::discord::{CallLimiter, IdleMap};

use crate::measure::{mb, Memory};

/// How the message path's caches are sized in the bot (src/discord/bot.rs, webhooks.rs).
const CACHE_IDLE: Duration = Duration::from_secs(60 * 60);
const RESET_IDLE: Duration = Duration::from_secs(24 * 60 * 60);

pub fn run(users: u64, per_second: u64) -> anyhow::Result<()> {
    let limiter = CallLimiter::new(10, Duration::from_secs(60));
    let webhooks: IdleMap<u64, (u64, String)> = IdleMap::new(CACHE_IDLE);
    let targets: IdleMap<u64, (u64, Option<u64>)> = IdleMap::new(CACHE_IDLE);
    let resets: IdleMap<(u64, u64), u64> = IdleMap::new(RESET_IDLE);
    let start = Instant::now();
    let before = Memory::of("self")?.rss_kb;
    println!(
        "{users} users and channels, {per_second} messages per simulated second; RSS at start {}",
        mb(before)
    );
    println!("  messages   simulated      RSS  limiter  webhooks  targets  resets");
    let step = (users / 10).max(1);
    for i in 0..users {
        let now = start + Duration::from_millis(i * 1000 / per_second.max(1));
        let (user, channel) = (1_000_000 + i, 2_000_000 + i);
        let _ = limiter.try_acquire(user, now);
        targets.insert(channel, (channel, None), now);
        webhooks.insert(channel, (channel, "t".repeat(68)), now);
        if i % 10 == 0 {
            resets.insert((user, channel), i, now);
        }
        if (i + 1) % step == 0 {
            let rss = Memory::of("self")?.rss_kb;
            println!(
                "  {:>8}  {:>8.0} s  {:>8}  {:>7}  {:>8}  {:>7}  {:>6}",
                i + 1,
                now.duration_since(start).as_secs_f64(),
                mb(rss),
                limiter.len(),
                webhooks.len(),
                targets.len(),
                resets.len()
            );
        }
    }
    Ok(())
}
