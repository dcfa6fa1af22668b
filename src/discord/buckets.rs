//! Discord's per-webhook rate-limit buckets, as its `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset-After` headers describe them. A streamed answer edits its message
//! every second and several answers can share a channel's webhook, so requests wait for
//! room in the bucket instead of being refused with 429.

use std::time::Duration;

use dashmap::DashMap;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

/// Above this many remembered buckets, the ones already reset are forgotten.
const PRUNE_ABOVE: usize = 1024;
/// Responses to requests sent in the same window may arrive out of order: a reset this
/// close to the known one is the same window.
const SAME_WINDOW: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    remaining: u32,
    resets_at: Instant,
}

/// The buckets of the webhooks the bot used lately, by webhook id.
#[derive(Default)]
pub struct Buckets {
    buckets: DashMap<u64, Bucket>,
}

impl Buckets {
    /// Waits until the webhook's bucket has room, and takes one request from it.
    pub async fn wait(&self, webhook: u64) {
        loop {
            let now = Instant::now();
            let until = {
                let Some(mut bucket) = self.buckets.get_mut(&webhook) else {
                    return;
                };
                if now >= bucket.resets_at {
                    drop(bucket);
                    self.buckets
                        .remove_if(&webhook, |_, b| Instant::now() >= b.resets_at);
                    return;
                }
                if bucket.remaining > 0 {
                    bucket.remaining -= 1;
                    return;
                }
                bucket.resets_at
            };
            tokio::time::sleep_until(until).await;
        }
    }

    /// Remembers what a response said about the webhook's bucket.
    pub fn update(&self, webhook: u64, headers: &HeaderMap) {
        let (Some(remaining), Some(reset_after)) = (
            header::<u32>(headers, "x-ratelimit-remaining"),
            header::<f64>(headers, "x-ratelimit-reset-after")
                .filter(|s| s.is_finite() && *s >= 0.0),
        ) else {
            return;
        };
        let resets_at = Instant::now() + Duration::from_secs_f64(reset_after.min(60.0));
        let mut bucket = self.buckets.entry(webhook).or_insert(Bucket {
            remaining,
            resets_at,
        });
        if resets_at > bucket.resets_at + SAME_WINDOW {
            *bucket = Bucket {
                remaining,
                resets_at,
            };
        } else {
            // Requests still in flight took from this window already.
            bucket.remaining = bucket.remaining.min(remaining);
        }
        drop(bucket);
        if self.buckets.len() > PRUNE_ABOVE {
            let now = Instant::now();
            self.buckets.retain(|_, b| b.resets_at > now);
        }
    }

    /// Empties the webhook's bucket for `delay` (after a 429).
    pub fn block(&self, webhook: u64, delay: Duration) {
        self.buckets.insert(
            webhook,
            Bucket {
                remaining: 0,
                resets_at: Instant::now() + delay,
            },
        );
    }
}

fn header<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(remaining: u32, reset_after: f64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", remaining.into());
        headers.insert(
            "x-ratelimit-reset-after",
            reset_after.to_string().parse().unwrap(),
        );
        headers
    }

    // Real time, short waits: each test takes a fraction of a second.
    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn an_empty_bucket_waits_for_its_reset() {
        let buckets = Buckets::default();
        buckets.update(1, &headers(0, 0.3));
        let started = Instant::now();
        buckets.wait(1).await;
        assert!(started.elapsed() >= Duration::from_millis(290));
        // Other webhooks don't wait.
        let started = Instant::now();
        buckets.wait(2).await;
        assert!(started.elapsed() < SHORT);
    }

    #[tokio::test]
    async fn room_left_is_shared_by_waiting_requests() {
        let buckets = Buckets::default();
        buckets.update(1, &headers(2, 0.3));
        let started = Instant::now();
        buckets.wait(1).await;
        buckets.wait(1).await;
        assert!(started.elapsed() < SHORT);
        buckets.wait(1).await;
        assert!(started.elapsed() >= Duration::from_millis(290));
    }

    #[tokio::test]
    async fn a_429_blocks_for_its_retry_after() {
        let buckets = Buckets::default();
        buckets.block(1, Duration::from_millis(300));
        let started = Instant::now();
        buckets.wait(1).await;
        assert!(started.elapsed() >= Duration::from_millis(290));
    }
}
