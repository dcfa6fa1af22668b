//! `load commands`: the command path through the service (handlers included) against the
//! bare SQL it executes, at several store sizes: throughput, percentiles, ratios.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::command_path::{self, BaselineInput, COMMANDS};
use crate::measure::{us, Summary};

/// Latencies of one side (service or baseline) over a run.
#[derive(Default)]
struct Side {
    per_command: [Vec<Duration>; 4],
    busy: Duration,
}

impl Side {
    fn record(&mut self, times: &[Duration; 4]) {
        for (samples, t) in self.per_command.iter_mut().zip(times) {
            samples.push(*t);
        }
        self.busy += times.iter().sum::<Duration>();
    }

    fn all(&self) -> Vec<Duration> {
        self.per_command.iter().flatten().copied().collect()
    }

    fn commands_per_second(&self) -> f64 {
        self.all().len() as f64 / self.busy.as_secs_f64()
    }
}

/// What one store size measured.
pub struct SizeResult {
    pub size: usize,
    pub service: Summary,
    pub baseline: Summary,
    pub service_rate: f64,
    pub baseline_rate: f64,
}

/// Runs `cycles` cycles (4 commands each) on each side at each size, interleaved in rounds
/// so that both sides see the same machine.
pub async fn run(sizes: &[usize], cycles: u64) -> anyhow::Result<Vec<SizeResult>> {
    let mut results = Vec::new();
    for &size in sizes {
        let dir = tempfile::tempdir()?;
        let seeding = Instant::now();
        let db = command_path::seeded(dir.path(), "service.db", size).await?;
        let baseline_db = command_path::seeded(dir.path(), "baseline.db", size).await?;
        println!(
            "\n{size} personalities (3 aliases, 500-character prompts) seeded twice in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        let app = command_path::app(db).await?;
        // From a task, as the bot calls it.
        let db = app.db.clone();
        let hop = tokio::spawn(async move { hop_round_trips(&db, 2000).await }).await??;
        println!(
            "  one Database::call with no work (the hop to the database thread and back): {hop}"
        );
        let mut service = Side::default();
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
            // In a task of its own, on a worker thread, as the bot runs a command.
            let round_app = Arc::clone(&app);
            let first = next;
            let round = tokio::spawn(async move {
                let mut side = Vec::with_capacity(per_round as usize);
                let mut times = [Duration::ZERO; 4];
                for i in first..first + per_round {
                    command_path::service_cycle(&round_app, i, &mut times).await?;
                    side.push(times);
                }
                anyhow::Ok(side)
            })
            .await??;
            next += per_round;
            for times in &round {
                service.record(times);
            }
            let inputs: Vec<BaselineInput> = (baseline_next..baseline_next + per_round)
                .map(BaselineInput::new)
                .collect::<Result<_, _>>()?;
            baseline_next += per_round;
            // One closure for the whole round: the clock runs inside it, on the connection.
            let round = baseline_db
                .call(move |conn| {
                    let mut side = Vec::with_capacity(inputs.len());
                    let mut times = [Duration::ZERO; 4];
                    for input in &inputs {
                        command_path::baseline_cycle(conn, input, &mut times)?;
                        side.push(times);
                    }
                    Ok(side)
                })
                .await?;
            for times in &round {
                baseline.record(times);
            }
        }
        app.shutdown().await;

        println!("{:<10} service (handlers included)", "");
        for (name, samples) in COMMANDS.iter().zip(&service.per_command) {
            println!("  {name:<8} {}", Summary::of(&mut samples.clone()));
        }
        let service_all = Summary::of(&mut service.all());
        println!("  {:<8} {service_all}", "all");
        println!("{:<10} bare SQL, same transactions", "");
        for (name, samples) in COMMANDS.iter().zip(&baseline.per_command) {
            println!("  {name:<8} {}", Summary::of(&mut samples.clone()));
        }
        let baseline_all = Summary::of(&mut baseline.all());
        println!("  {:<8} {baseline_all}", "all");
        let result = SizeResult {
            size,
            service: service_all,
            baseline: baseline_all,
            service_rate: service.commands_per_second(),
            baseline_rate: baseline.commands_per_second(),
        };
        println!(
            "  service {:.0} commands/s, bare SQL {:.0} commands/s: ratio {:.2}× (mean), {:.2}× (p50), {:.2}× (p99)",
            result.service_rate,
            result.baseline_rate,
            result.baseline_rate / result.service_rate,
            ratio(result.service.p50, result.baseline.p50),
            ratio(result.service.p99, result.baseline.p99),
        );
        results.push(result);
    }
    if let (Some(first), Some(last)) = (results.first(), results.last()) {
        if first.size != last.size {
            println!(
                "\nfrom {} to {} personalities: service mean {} → {} µs ({:.2}×), p99 {} → {} µs ({:.2}×); bare SQL mean {:.2}×",
                first.size,
                last.size,
                us(first.service.mean),
                us(last.service.mean),
                ratio(last.service.mean, first.service.mean),
                us(first.service.p99),
                us(last.service.p99),
                ratio(last.service.p99, first.service.p99),
                ratio(last.baseline.mean, first.baseline.mean),
            );
        }
    }
    Ok(results)
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
