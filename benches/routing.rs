//! The message path every message in every channel takes: does it address a personality,
//! and which one (`@alias`, a reply, auto-response, a channel activation)?
//!
//! Floor (issue 14): median ≤ 2 µs for a 200-character message at 100,000 aliases, ≤ 1.5×
//! from 10 to 100,000 aliases, no database access, and no allocation for a message
//! addressed to nobody. Each size gets its own cache; the mentioned alias changes with every
//! message (4,096 messages, aliases drawn at random), so a large index is not measured from
//! a warm cache line. Before measuring, every case is run while the bench holds the
//! database connection (any database access would deadlock) and under a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use personae_testkit::routing_fixture::{fixture, Case, Fixture, MESSAGES, SIZES};

/// Counts allocations per thread, to check that routing allocates nothing per message.
/// Only the routing thread's count is read: the runtime's other threads may allocate
/// while a message is routed, and that is not the message's cost.
struct Counting;

thread_local! {
    // No destructor, so reading it never registers one (which could allocate).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // During thread teardown the slot may be gone; that allocation is not routing's.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations_on_this_thread() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is the
// only addition and never touches the memory.
// A counting global allocator is the only way to see allocations; it wraps `System`.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Routes every case once per message while holding the database connection (a database
/// access would deadlock), checks the answers, and returns the allocations per message.
fn check(rt: &tokio::runtime::Runtime, f: &Arc<Fixture>, size: usize) -> Vec<(Case, f64)> {
    let now = Utc::now();
    let f = Arc::clone(f);
    rt.block_on(f.db.clone().call(move |_connection_held_by_the_bench| {
        let f = &*f;
        let mut allocations = Vec::new();
        for case in Case::ALL {
            for i in 0..MESSAGES {
                // Warm-up: thread-local scratch buffers reach their size.
                black_box(case.run(f, i, now));
            }
            let before = allocations_on_this_thread();
            for i in 0..MESSAGES {
                let routed = case.run(f, i, now);
                assert_eq!(routed.is_some(), case.routes(), "{} at {size}", case.name());
                black_box(routed);
            }
            let per_message = (allocations_on_this_thread() - before) as f64 / MESSAGES as f64;
            allocations.push((case, per_message));
        }
        Ok(allocations)
    }))
    .expect("routing needs no database")
}

fn bench_routing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("route 200-char message");
    group
        .sample_size(40)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    let mut smallest: Option<Vec<(Case, f64)>> = None;
    for size in SIZES {
        let f = Arc::new(fixture(&rt, size));
        assert_eq!(f.ids.len(), size);
        let allocations = check(&rt, &f, size);
        for (case, per_message) in &allocations {
            println!(
                "allocations per message, {} aliases, {}: {per_message}",
                size,
                case.name()
            );
            assert!(
                case.routes() || *per_message == 0.0,
                "{}: {per_message} allocations per message at {size} aliases",
                case.name()
            );
        }
        match &smallest {
            None => smallest = Some(allocations),
            Some(base) => {
                for ((case, small), (_, large)) in base.iter().zip(&allocations) {
                    assert!(
                        large <= small,
                        "{}: {large} allocations per message at {size} aliases, {small} at {}",
                        case.name(),
                        SIZES[0]
                    );
                }
            }
        }
        let now = Utc::now();
        for case in Case::ALL {
            group.bench_with_input(BenchmarkId::new(case.name(), size), &*f, |b, f| {
                let mut i = 0usize;
                b.iter(|| {
                    i = i.wrapping_add(1);
                    black_box(case.run(f, i, now))
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_routing);
criterion_main!(benches);
