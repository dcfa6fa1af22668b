//! Values read at scrape time from their own source of truth, encoded as Prometheus metrics.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::ShardStatus;
use crate::events::BusStats;

/// What a scrape read from the running application.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The bus's counters since start.
    pub bus: BusStats,
    /// Events parked as dead letters, all subscribers together.
    pub dead_letters: usize,
    /// Each durable subscriber's name and how many events it is behind the last one stored.
    pub subscriber_lag: Vec<(String, i64)>,
    /// The gateway's shards (empty before the Discord client exists).
    pub shards: Vec<ShardStatus>,
    /// Personalities in the profile cache.
    pub cached_personalities: usize,
}

/// The last sample, handed from the scrape to the collector.
#[derive(Debug, Default)]
pub(super) struct Sampled(Mutex<Sample>);

impl Sampled {
    pub(super) fn set(&self, sample: Sample) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = sample;
    }
}

/// Encodes the last sample on each scrape.
#[derive(Debug)]
pub(super) struct Collector(pub(super) Arc<Sampled>);

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = self
            .0
             .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let counter = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64| {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
        };
        counter(
            &mut encoder,
            "events_published",
            "Domain events published on the in-process bus",
            sample.bus.published,
        )?;
        {
            let metric = ConstCounter::new(0u64);
            let mut family = encoder.encode_descriptor(
                "event_handler_failures",
                "Event handlers that failed, by kind (error, panic, timeout)",
                None,
                metric.metric_type(),
            )?;
            for (kind, value) in [
                ("error", sample.bus.handler_errors),
                ("panic", sample.bus.handler_panics),
                ("timeout", sample.bus.handler_timeouts),
            ] {
                ConstCounter::new(value).encode(family.encode_family(&[("kind", kind)])?)?;
            }
        }
        let gauge = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64| {
            let metric = ConstGauge::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
        };
        gauge(
            &mut encoder,
            "dead_letters",
            "Events that durable subscribers gave up on (`personae events dead-letters`)",
            sample.dead_letters as i64,
        )?;
        gauge(
            &mut encoder,
            "cached_personalities",
            "Personalities in the bot's profile cache",
            sample.cached_personalities as i64,
        )?;
        {
            let metric = ConstGauge::new(0i64);
            let mut family = encoder.encode_descriptor(
                "subscriber_lag_events",
                "Events stored after each durable subscriber's checkpoint",
                None,
                metric.metric_type(),
            )?;
            for (name, lag) in &sample.subscriber_lag {
                ConstGauge::new(*lag)
                    .encode(family.encode_family(&[("subscriber", name.as_str())])?)?;
            }
        }
        {
            let metric = ConstGauge::new(0.0f64);
            let mut family = encoder.encode_descriptor(
                "gateway_heartbeat_latency_seconds",
                "Round trip of each shard's last acknowledged gateway heartbeat",
                None,
                metric.metric_type(),
            )?;
            for shard in &sample.shards {
                if let Some(latency) = shard.heartbeat_latency {
                    let id = shard.id.to_string();
                    ConstGauge::new(latency.as_secs_f64())
                        .encode(family.encode_family(&[("shard", id.as_str())])?)?;
                }
            }
        }
        {
            let metric = ConstGauge::new(0i64);
            let mut family = encoder.encode_descriptor(
                "gateway_shard_connected",
                "1 when the shard is connected to the Discord gateway, 0 otherwise",
                None,
                metric.metric_type(),
            )?;
            for shard in &sample.shards {
                let id = shard.id.to_string();
                ConstGauge::new(i64::from(shard.connected))
                    .encode(family.encode_family(&[("shard", id.as_str())])?)?;
            }
        }
        Ok(())
    }
}
