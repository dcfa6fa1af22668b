//! Cost of publishing one event: two typed handlers and one wildcard handler (async,
//! trivial), against a baseline that awaits the same three handlers directly.
//! Floor (issue 14): publish ≤ 1 µs per event.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use personae::events::{DurableConfig, DurableSubscriber, Topic};
use personae_testkit::memory_log::InMemoryEventLog;

use personae_testkit::bus_fixture::{await_directly, counter, event, three_handlers, wired_bus};

fn bench_publish(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let event = event();

    let handlers = three_handlers();
    c.bench_function("baseline: await 3 handlers directly", |b| {
        b.to_async(&rt)
            .iter(|| async { await_directly(&handlers, &event).await });
    });

    let bus = wired_bus(&handlers);
    c.bench_function("publish: 2 typed + 1 wildcard", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(bus.publish(Arc::clone(&event)).await) });
    });

    // A durable subscriber on the live path: the event is the next one, handled inline.
    let with_durable = wired_bus(&handlers);
    let log = Arc::new(InMemoryEventLog::new());
    let durable = rt
        .block_on(DurableSubscriber::start(
            &with_durable,
            log.clone(),
            &[Topic::All],
            counter("durable"),
            DurableConfig::default(),
        ))
        .expect("a durable subscriber");
    let mut next = event.as_ref().clone();
    c.bench_function("publish: 2 typed + 1 wildcard + 1 durable (inline)", |b| {
        b.to_async(&rt).iter(|| {
            // Each iteration publishes the next sequence, as commits would; the log itself
            // is not written (the inline path never reads it).
            next.sequence += 1;
            let event = Arc::new(next.clone());
            let bus = &with_durable;
            async move { black_box(bus.publish(event).await) }
        });
    });
    // The durable subscriber's checkpoint ran ahead of this log on purpose.
    let _ = rt.block_on(durable.shutdown());
}

criterion_group!(benches, bench_publish);
criterion_main!(benches);
