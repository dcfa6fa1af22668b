//! `load commands`: the command path through the service (handlers included) against the
//! bare SQL it executes, at several store sizes: throughput, percentiles, ratios.

use std::sync::Arc;
use std::time::{Duration, Instant};

use personae::app::App;
use personae::store::Synchronous;

use crate::measure::{us, Summary};
use personae_testkit::command_path::{self, BaselineInput, COMMANDS};

/// Latencies of one side (the service with some number of clients, or the baseline) over
/// a run, and the wall-clock time it ran.
#[derive(Default)]
struct Side {
    per_command: [Vec<Duration>; 4],
    wall: Duration,
    /// CPU time of the database thread.
    db_cpu: Duration,
}

impl Side {
    fn record(&mut self, times: &[Duration; 4]) {
        for (samples, t) in self.per_command.iter_mut().zip(times) {
            samples.push(*t);
        }
    }

    fn all(&self) -> Vec<Duration> {
        self.per_command.iter().flatten().copied().collect()
    }

    fn commands_per_second(&self) -> f64 {
        self.all().len() as f64 / self.wall.as_secs_f64()
    }

    fn db_cpu_per_command(&self) -> Duration {
        self.db_cpu / self.all().len() as u32
    }
}

/// CPU time used so far by the calling thread (the kernel's per-thread schedstat, in ns).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// CPU time used so far by the database thread of `db`.
async fn db_thread_cpu(db: &personae::store::Database) -> anyhow::Result<Duration> {
    Ok(db.call(|_| Ok(thread_cpu())).await?)
}

/// What one store size measured.
pub struct SizeResult {
    pub size: usize,
    /// Per number of concurrent clients.
    pub service: Vec<(usize, Summary, f64)>,
    pub baseline: Summary,
}

/// Runs `cycles` cycles (4 commands each) on each side at each size: the service with each
/// number of concurrent `clients` (tasks issuing commands one after the other, as users
/// do), and the bare SQL on one thread. The variants are interleaved in rounds so that
/// all of them see the same machine.
pub async fn run(
    sizes: &[usize],
    clients: &[usize],
    cycles: u64,
    synchronous: Synchronous,
) -> anyhow::Result<Vec<SizeResult>> {
    let mut results = Vec::new();
    for &size in sizes {
        let dir = tempfile::tempdir()?;
        let seeding = Instant::now();
        let db = command_path::seeded(dir.path(), "service.db", size, synchronous).await?;
        let baseline_db =
            command_path::seeded(dir.path(), "baseline.db", size, synchronous).await?;
        println!(
            "\n{size} personalities (3 aliases, 500-character prompts) seeded twice in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        let app = command_path::app(db, synchronous).await?;
        // From a task, as the bot calls it.
        let db = app.db.clone();
        let hop = tokio::spawn(async move { hop_round_trips(&db, 2000).await }).await??;
        println!(
            "  one Database::call with no work (the hop to the database thread and back): {hop}"
        );
        let mut services: Vec<Side> = clients.iter().map(|_| Side::default()).collect();
        let mut baseline = Side::default();
        let warm_up = 50.min(cycles);
        let rounds = 10;
        let per_round = cycles / rounds;
        let mut next = 0u64;
        let mut times = [Duration::ZERO; 4];
        for _ in 0..warm_up {
            command_path::service_cycle(&app, next, &mut times).await?;
            next += 1;
        }
        let baseline_db = Arc::new(baseline_db);
        let mut baseline_next = 0u64;
        warm_baseline(&baseline_db, &mut baseline_next, warm_up).await?;
        for _ in 0..rounds {
            for (side, &tasks) in services.iter_mut().zip(clients) {
                let cpu = db_thread_cpu(&app.db).await?;
                let started = Instant::now();
                let round = service_round(&app, next, per_round, tasks).await?;
                side.wall += started.elapsed();
                side.db_cpu += db_thread_cpu(&app.db).await?.checked_sub(cpu).unwrap();
                next += per_round;
                for times in &round {
                    side.record(times);
                }
            }
            let inputs: Vec<BaselineInput> = (baseline_next..baseline_next + per_round)
                .map(BaselineInput::new)
                .collect::<Result<_, _>>()?;
            baseline_next += per_round;
            // One closure for the whole round: the clock runs inside it, on the connection.
            let (round, wall, cpu) = baseline_db
                .call(move |conn| {
                    let cpu = thread_cpu();
                    let started = Instant::now();
                    let mut side = Vec::with_capacity(inputs.len());
                    let mut times = [Duration::ZERO; 4];
                    for input in &inputs {
                        command_path::baseline_cycle(conn, input, &mut times)?;
                        side.push(times);
                    }
                    Ok((
                        side,
                        started.elapsed(),
                        thread_cpu().checked_sub(cpu).unwrap(),
                    ))
                })
                .await?;
            baseline.wall += wall;
            baseline.db_cpu += cpu;
            for times in &round {
                baseline.record(times);
            }
        }
        app.shutdown().await;

        let baseline_all = Summary::of(&mut baseline.all());
        let baseline_rate = baseline.commands_per_second();
        let mut result = SizeResult {
            size,
            service: Vec::new(),
            baseline: baseline_all,
        };
        for (side, &tasks) in services.iter().zip(clients) {
            println!(
                "{:<10} service (handlers included), {tasks} concurrent client(s)",
                ""
            );
            print_commands(side);
            let all = Summary::of(&mut side.all());
            let rate = side.commands_per_second();
            println!(
                "  {rate:.0} commands/s against bare SQL's {baseline_rate:.0}: {:.2}× (throughput), p50 {:.2}×, p99 {:.2}×",
                baseline_rate / rate,
                ratio(all.p50, baseline_all.p50),
                ratio(all.p99, baseline_all.p99),
            );
            println!(
                "  database thread CPU per command {} µs against bare SQL's {} µs: {:.2}× (the service's includes waiting for work)",
                us(side.db_cpu_per_command()),
                us(baseline.db_cpu_per_command()),
                ratio(side.db_cpu_per_command(), baseline.db_cpu_per_command()),
            );
            result.service.push((tasks, all, rate));
        }
        println!(
            "{:<10} bare SQL, same transactions, one after the other",
            ""
        );
        print_commands(&baseline);
        println!("  {baseline_rate:.0} commands/s");
        results.push(result);
    }
    if let (Some(first), Some(last)) = (results.first(), results.last()) {
        if first.size != last.size {
            for ((tasks, small, small_rate), (_, large, large_rate)) in
                first.service.iter().zip(&last.service)
            {
                println!(
                    "\nfrom {} to {} personalities, {tasks} client(s): {:.0} → {:.0} commands/s ({:.2}×), mean {} → {} µs ({:.2}×), p99 {} → {} µs ({:.2}×)",
                    first.size,
                    last.size,
                    small_rate,
                    large_rate,
                    small_rate / large_rate,
                    us(small.mean),
                    us(large.mean),
                    ratio(large.mean, small.mean),
                    us(small.p99),
                    us(large.p99),
                    ratio(large.p99, small.p99),
                );
            }
            println!(
                "bare SQL: mean {:.2}×",
                ratio(last.baseline.mean, first.baseline.mean)
            );
        }
    }
    Ok(results)
}

/// `cycles` cycles from `first` on, shared out among `tasks` concurrent tasks, each in a
/// task of its own on the runtime's workers, as the bot runs commands.
async fn service_round(
    app: &Arc<App>,
    first: u64,
    cycles: u64,
    tasks: usize,
) -> anyhow::Result<Vec<[Duration; 4]>> {
    let mut handles = Vec::with_capacity(tasks);
    for task in 0..tasks as u64 {
        let app = Arc::clone(app);
        handles.push(tokio::spawn(async move {
            let mut side = Vec::new();
            let mut times = [Duration::ZERO; 4];
            for i in (first + task..first + cycles).step_by(tasks) {
                command_path::service_cycle(&app, i, &mut times).await?;
                side.push(times);
            }
            anyhow::Ok(side)
        }));
    }
    let mut all = Vec::with_capacity(cycles as usize);
    for handle in handles {
        all.extend(handle.await??);
    }
    Ok(all)
}

fn print_commands(side: &Side) {
    for (name, samples) in COMMANDS.iter().zip(&side.per_command) {
        println!("  {name:<8} {}", Summary::of(&mut samples.clone()));
    }
    println!("  {:<8} {}", "all", Summary::of(&mut side.all()));
}

async fn warm_baseline(
    db: &Arc<personae::store::Database>,
    next: &mut u64,
    cycles: u64,
) -> anyhow::Result<()> {
    let inputs: Vec<BaselineInput> = (*next..*next + cycles)
        .map(BaselineInput::new)
        .collect::<Result<_, _>>()?;
    *next += cycles;
    db.call(move |conn| {
        let mut times = [Duration::ZERO; 4];
        for input in &inputs {
            command_path::baseline_cycle(conn, input, &mut times)?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// Round trips of `Database::call` with an empty closure: the fixed cost of leaving the
/// async runtime for every unit of database work.
async fn hop_round_trips(db: &personae::store::Database, n: usize) -> anyhow::Result<Summary> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        db.call(|_| Ok(())).await?;
        samples.push(started.elapsed());
    }
    Ok(Summary::of(&mut samples))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
