//! The command path through the service on a file database (WAL, synchronous=NORMAL),
//! handlers included, against the bare SQL those commands execute in the same
//! transactions; at 100 and 100,000 stored personalities.
//!
//! One iteration is a cycle of four commands (register → alias → update → remove; see
//! `tests/support/src/command_path.rs`), so the reported time divided by four is the cost of
//! one command. Floors (issue 14): ≥ 3,000 commands/s from one client (≤ 1.33 ms a cycle),
//! ≤ 3× the bare SQL, and ≤ 1.5× from 100 to 100,000 personalities. Percentiles come from
//! `cargo run --release --example load -- commands`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use personae::store::Synchronous;

use personae_testkit::command_path::{app, baseline_cycle, seeded, service_cycle, BaselineInput};

const SIZES: [usize; 2] = [100, 100_000];

fn bench_commands(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("command cycle (4 commands)");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    // Cycle numbers keep names unique across criterion's calls.
    let next = AtomicU64::new(0);
    for size in SIZES {
        let dir = tempfile::tempdir().expect("a temporary folder");

        let db = rt
            .block_on(seeded(dir.path(), "service.db", size, Synchronous::Normal))
            .expect("seeded");
        let app = rt
            .block_on(app(db, Synchronous::Normal))
            .expect("the application starts");
        group.bench_function(BenchmarkId::new("service", size), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let app = app.clone();
                let first = next.fetch_add(iters, Ordering::Relaxed);
                async move {
                    let mut times = [Duration::ZERO; 4];
                    let start = Instant::now();
                    for i in first..first + iters {
                        service_cycle(&app, i, &mut times)
                            .await
                            .expect("the cycle succeeds");
                    }
                    start.elapsed()
                }
            });
        });
        rt.block_on(app.shutdown());
        // Closes the service's database (and checkpoints its WAL) before the baseline runs.
        drop(app);

        let baseline = rt
            .block_on(seeded(dir.path(), "baseline.db", size, Synchronous::Normal))
            .expect("seeded");
        group.bench_function(BenchmarkId::new("bare SQL", size), |b| {
            b.iter_custom(|iters| {
                let first = next.fetch_add(iters, Ordering::Relaxed);
                let inputs: Vec<BaselineInput> = (first..first + iters)
                    .map(|i| BaselineInput::new(i).expect("valid input"))
                    .collect();
                // One closure for all iterations: the clock runs inside it, on the connection.
                rt.block_on(baseline.call(move |conn| {
                    let mut times = [Duration::ZERO; 4];
                    let start = Instant::now();
                    for input in &inputs {
                        baseline_cycle(conn, input, &mut times)?;
                    }
                    Ok(start.elapsed())
                }))
                .expect("the cycle succeeds")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_commands);
criterion_main!(benches);
