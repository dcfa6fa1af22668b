//! `load commands --rates`: the command path at a fixed offered rate. Users arrive on a
//! schedule, whatever the service is doing, and each runs one cycle (register → alias →
//! update → remove, one command after the other). This is how "N commands/s with p99 ≤ X"
//! reads: the closed loop of `commands.rs` runs the service flat out, where every command
//! also waits for the ones its clients queued beside it.
//!
//! Arrivals never wait for answers (each cycle is a task of its own), so a service falling
//! behind shows as cycles piling up and in the percentiles, not as fewer arrivals. The
//! runtime's timer fires on whole milliseconds, so cycles due within one start together;
//! how late each started against its due time is reported beside the latencies.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use personae::app::App;
use tokio::time::Instant;

use crate::command_path;
use crate::measure::Summary;

/// What one offered rate measured.
pub struct RateResult {
    /// Commands per second offered.
    pub offered: f64,
    /// Commands per second answered, from the first due time to the last answer.
    pub achieved: f64,
    pub latency: Summary,
    /// How late cycles started against their due time (the timer's granularity, and any
    /// wait for a worker thread).
    pub lateness: Summary,
    /// The most cycles in flight at once.
    pub most_in_flight: usize,
}

/// Offers `rate` commands per second for `duration`, cycles numbered from `first`.
pub async fn run(
    app: &Arc<App>,
    first: u64,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<RateResult> {
    anyhow::ensure!(rate > 0, "an offered rate must be at least 1 command/s");
    let cycles = (rate as f64 * duration.as_secs_f64() / 4.0).ceil() as u64;
    let every = Duration::from_secs_f64(4.0 / rate as f64);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(10);
    let mut tasks = Vec::with_capacity(cycles as usize);
    for n in 0..cycles {
        let due = start + every * n as u32;
        tokio::time::sleep_until(due).await;
        let app = Arc::clone(app);
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        tasks.push(tokio::spawn(async move {
            let now = in_flight.fetch_add(1, Relaxed) + 1;
            most.fetch_max(now, Relaxed);
            let mut times = [Duration::ZERO; 4];
            let late = Instant::now() - due;
            let result = command_path::service_cycle(&app, first + n, &mut times).await;
            in_flight.fetch_sub(1, Relaxed);
            result.map(|()| (times, late, Instant::now()))
        }));
    }
    let mut samples = Vec::with_capacity(cycles as usize * 4);
    let mut lateness = Vec::with_capacity(cycles as usize);
    let mut last = start;
    for task in tasks {
        let (times, late, finished) = task.await??;
        samples.extend(times);
        lateness.push(late);
        last = last.max(finished);
    }
    let answered = samples.len() as f64;
    Ok(RateResult {
        offered: rate as f64,
        achieved: answered / (last - start).as_secs_f64(),
        latency: Summary::of(&mut samples),
        lateness: Summary::of(&mut lateness),
        most_in_flight: most.load(Relaxed),
    })
}
