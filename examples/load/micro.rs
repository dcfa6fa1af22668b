//! `load bus` and `load routing`: the in-memory paths measured in interleaved rounds, so
//! that a variant and its baseline always run under the same load. On a shared machine the
//! criterion benches measure one variant minutes after the other; here every round times
//! each variant for a batch of iterations, and ratios are taken round by round.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use personae_testkit::bus_fixture::{await_directly, event, three_handlers, wired_bus};
use personae_testkit::routing_fixture::{fixture, Case, SIZES};

/// A variant: runs `n` iterations and returns the time they took.
type Variant<'a> = (String, Box<dyn FnMut(u64) -> Duration + 'a>);

/// Per-iteration times of each variant, one per round.
struct Rounds {
    names: Vec<String>,
    /// `ns[v][r]`: nanoseconds per iteration of variant `v` in round `r`.
    ns: Vec<Vec<f64>>,
}

fn interleave(mut variants: Vec<Variant<'_>>, rounds: usize, iterations: u64) -> Rounds {
    // Warm-up: caches, thread-local buffers, branch predictors.
    for (_, run) in &mut variants {
        run(iterations);
    }
    let mut ns = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (v, (_, run)) in variants.iter_mut().enumerate() {
            let took = run(iterations);
            ns[v].push(took.as_nanos() as f64 / iterations as f64);
        }
    }
    Rounds {
        names: variants.into_iter().map(|(name, _)| name).collect(),
        ns,
    }
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl Rounds {
    fn median(&self, v: usize) -> f64 {
        quantile(&self.ns[v], 0.5)
    }

    /// The median over rounds of variant `a`'s time divided by variant `b`'s.
    fn ratio(&self, a: usize, b: usize) -> f64 {
        let ratios: Vec<f64> = self.ns[a]
            .iter()
            .zip(&self.ns[b])
            .map(|(x, y)| x / y)
            .collect();
        quantile(&ratios, 0.5)
    }

    fn print(&self) {
        for (v, name) in self.names.iter().enumerate() {
            println!(
                "  {name:<52} median {:>7.1} ns  (rounds: p10 {:>7.1}, p90 {:>7.1})",
                self.median(v),
                quantile(&self.ns[v], 0.1),
                quantile(&self.ns[v], 0.9)
            );
        }
    }
}

/// Publish against awaiting the three handlers directly.
pub fn bus(rounds: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let event = event();
    let handlers = three_handlers();
    let bus = wired_bus(&handlers);
    let variants: Vec<Variant<'_>> = vec![
        (
            "baseline: await the 3 handlers directly".to_owned(),
            Box::new(|n| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..n {
                        await_directly(&handlers, &event).await;
                    }
                    started.elapsed()
                })
            }),
        ),
        (
            "publish: 2 typed + 1 wildcard".to_owned(),
            Box::new(|n| {
                rt.block_on(async {
                    let started = Instant::now();
                    for _ in 0..n {
                        black_box(bus.publish(Arc::clone(&event)).await);
                    }
                    started.elapsed()
                })
            }),
        ),
    ];
    let result = interleave(variants, rounds, 20_000);
    println!("one event, {rounds} interleaved rounds of 20,000:");
    result.print();
    println!(
        "  publish / baseline: {:.2}× (median of the per-round ratios)",
        result.ratio(1, 0)
    );
    Ok(())
}

/// Every kind of message at 10, 1,000 and 100,000 aliases.
pub fn routing(rounds: usize, iterations: u64) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let fixtures: Vec<_> = SIZES.iter().map(|&size| fixture(&rt, size)).collect();
    let now = Utc::now();
    let mut variants: Vec<Variant<'_>> = Vec::new();
    for case in Case::ALL {
        for f in &fixtures {
            case.check(f, now)?;
            let mut i = 0usize;
            variants.push((
                format!("{} / {} aliases", case.name(), f.ids.len()),
                Box::new(move |n| {
                    let started = Instant::now();
                    for _ in 0..n {
                        i = i.wrapping_add(1);
                        black_box(case.run(f, i, now));
                    }
                    started.elapsed()
                }),
            ));
        }
    }
    let result = interleave(variants, rounds, iterations);
    println!("route one 200-character message, {rounds} interleaved rounds of {iterations}:");
    result.print();
    for (c, case) in Case::ALL.iter().enumerate() {
        let first = c * SIZES.len();
        println!(
            "  {:<24} 100,000 / 10 aliases: {:.2}×   1,000 / 10: {:.2}×",
            case.name(),
            result.ratio(first + 2, first),
            result.ratio(first + 1, first)
        );
    }
    Ok(())
}
