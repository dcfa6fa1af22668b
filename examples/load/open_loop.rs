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
//!
//! The baseline is the bare SQL at the same rate on the same schedule, on a database of the
//! same size with a database thread and a checkpointer of its own. Each of its commands is
//! `Database::write` work running that command's statements, committed as the service's
//! commands are: alone when the thread is idle, in one transaction with the write work
//! queued behind it when it is busy. (With a transaction of its own per command, the bare
//! SQL falls behind at 10,000 commands/s here: 135 ms p99.) It leaves out the service
//! (inputs parsed, rows and events built, publication and handlers), and nothing else: the
//! same runtime, the same hop to the database thread, the same disk and the same machine,
//! because the two sides take turns in short phases.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use personae::app::App;
use personae::store::{Database, StoreError};
use tokio::time::Instant;

use crate::command_path::{self, BaselineInput};
use crate::measure::Summary;

/// The longest phase of a side: the sides take turns, so that a noisy moment of the
/// machine falls on both. Shorter than the second a database must be idle before its
/// checkpointer cuts an oversized WAL back (`src/store/checkpointer.rs`): that takes one
/// vCPU for ~100 ms, and would otherwise fall in the middle of the other side's phase.
const LONGEST_PHASE: Duration = Duration::from_millis(500);

/// What one side measured at one offered rate, over all its phases.
pub struct RateResult {
    /// Commands per second answered, from each phase's first due time to its last answer.
    pub achieved: f64,
    pub latency: Summary,
    /// How late cycles started against their due time (the timer's granularity, and any
    /// wait for a worker thread).
    pub lateness: Summary,
    /// The most cycles in flight at once.
    pub most_in_flight: usize,
}

/// The service and its baseline at one offered rate.
pub struct RatePair {
    /// Commands per second offered.
    pub offered: u64,
    /// Cycles each side ran, numbered on from its `first`.
    pub cycles: u64,
    pub service: RateResult,
    pub baseline: RateResult,
}

/// The raw samples of one side, gathered over its phases.
#[derive(Default)]
struct Samples {
    latency: Vec<Duration>,
    lateness: Vec<Duration>,
    busy: Duration,
    most_in_flight: usize,
}

impl Samples {
    fn result(mut self) -> RateResult {
        RateResult {
            achieved: self.latency.len() as f64 / self.busy.as_secs_f64(),
            latency: Summary::of(&mut self.latency),
            lateness: Summary::of(&mut self.lateness),
            most_in_flight: self.most_in_flight,
        }
    }
}

/// Offers `rate` commands per second for `duration` in all to the service (cycles numbered
/// from `first` on) and to the bare SQL on `baseline_db` (cycles numbered from
/// `baseline_first` on), in alternating phases of at most `LONGEST_PHASE`.
pub async fn run(
    app: &Arc<App>,
    first: u64,
    baseline_db: &Database,
    baseline_first: u64,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<RatePair> {
    anyhow::ensure!(rate > 0, "an offered rate must be at least 1 command/s");
    let (phases, per_phase) = schedule(rate, duration);
    let (mut service, mut baseline) = (Samples::default(), Samples::default());
    for n in 0..phases {
        let from = first + n * per_phase;
        let app = Arc::clone(app);
        offer(&mut service, rate, per_phase, move |i| {
            let app = Arc::clone(&app);
            async move {
                let mut times = [Duration::ZERO; 4];
                command_path::service_cycle(&app, from + i, &mut times).await?;
                Ok(times)
            }
        })
        .await?;

        // Made before the clock starts, as in the closed loop.
        let from = baseline_first + n * per_phase;
        let inputs: Arc<Vec<Arc<BaselineInput>>> = Arc::new(
            (from..from + per_phase)
                .map(|i| BaselineInput::new(i).map(Arc::new))
                .collect::<Result<_, _>>()?,
        );
        let db = baseline_db.clone();
        offer(&mut baseline, rate, per_phase, move |i| {
            let (db, input) = (db.clone(), Arc::clone(&inputs[i as usize]));
            async move { baseline_cycle(&db, input).await }
        })
        .await?;
    }
    Ok(RatePair {
        offered: rate,
        cycles: phases * per_phase,
        service: service.result(),
        baseline: baseline.result(),
    })
}

/// How many phases a side runs at `rate` for `duration` in all, and how many cycles each.
fn schedule(rate: u64, duration: Duration) -> (u64, u64) {
    let phases = (duration.as_secs_f64() / LONGEST_PHASE.as_secs_f64())
        .ceil()
        .max(1.0);
    let per_phase = (rate as f64 * duration.as_secs_f64() / phases / 4.0).ceil() as u64;
    (phases as u64, per_phase.max(1))
}

/// One cycle of the bare SQL: each command is write work of its own for the database
/// thread, committed as the service's are (together with the write work queued beside it).
async fn baseline_cycle(db: &Database, input: Arc<BaselineInput>) -> anyhow::Result<[Duration; 4]> {
    let mut times = [Duration::ZERO; 4];
    for (command, time) in times.iter_mut().enumerate() {
        let input = Arc::clone(&input);
        let started = Instant::now();
        db.write(
            move |conn| {
                command_path::baseline_statements(conn, &input, command).map_err(StoreError::from)
            },
            |()| (),
        )
        .await?;
        *time = started.elapsed();
    }
    Ok(times)
}

/// Starts `cycles` cycles at `rate` commands per second (`cycle(i)` runs cycle `i`, each
/// in a task of its own), waits for all of them and adds what they measured to `side`.
async fn offer<F, C>(side: &mut Samples, rate: u64, cycles: u64, cycle: F) -> anyhow::Result<()>
where
    F: Fn(u64) -> C,
    C: Future<Output = anyhow::Result<[Duration; 4]>> + Send + 'static,
{
    let every = Duration::from_secs_f64(4.0 / rate as f64);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(10);
    let mut tasks = Vec::with_capacity(cycles as usize);
    for n in 0..cycles {
        let due = start + every * n as u32;
        tokio::time::sleep_until(due).await;
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        let work = cycle(n);
        tasks.push(tokio::spawn(async move {
            let now = in_flight.fetch_add(1, Relaxed) + 1;
            most.fetch_max(now, Relaxed);
            let late = Instant::now() - due;
            let result = work.await;
            in_flight.fetch_sub(1, Relaxed);
            result.map(|times| (times, late, Instant::now()))
        }));
    }
    let mut last = start;
    for task in tasks {
        let (times, late, finished) = task.await??;
        side.latency.extend(times);
        side.lateness.push(late);
        last = last.max(finished);
    }
    side.busy += last - start;
    side.most_in_flight = side.most_in_flight.max(most.load(Relaxed));
    Ok(())
}
