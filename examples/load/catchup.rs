//! `load catchup`: a durable subscriber far behind catches up from the events table.
//! Also measured, to show what bounds it: reading the same rows with bare SQL, and reading
//! and decoding them through the store's `EventLog` without handling them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use personae::events::{
    BusConfig, DurableConfig, DurableSubscriber, EventBus, EventEnvelope, EventHandler, EventLog,
    HandlerError, Topic,
};

use personae_testkit::seed;

/// A subscriber that does the least a real one does: look at the event, count it.
struct Counter(AtomicU64);

#[async_trait]
impl EventHandler for Counter {
    fn name(&self) -> &'static str {
        "catch-up-bench"
    }

    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        std::hint::black_box(event.event_type());
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Seeds `events` events, then measures the three ways of reading them.
pub async fn run(events: usize, prompt_chars: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = seed::open(&dir.path().join("catchup.db"))?;
    let seeding = Instant::now();
    let payload = seed::event_histories(&db, events, prompt_chars).await?;
    // The WAL too: the background checkpointer may not have copied it all yet.
    let wal = db.path().with_extension("db-wal");
    let bytes =
        std::fs::metadata(db.path())?.len() + std::fs::metadata(&wal).map_or(0, |m| m.len());
    let file_mb = bytes as f64 / 1e6;
    println!(
        "{events} events seeded in {:.1} s (average payload {payload} bytes, database {file_mb:.0} MB)",
        seeding.elapsed().as_secs_f64()
    );
    let batch = DurableConfig::default().batch_size;

    // 1. Bare SQL: the rows the store reads, columns fetched, nothing decoded.
    let started = Instant::now();
    let rows = db
        .call(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT sequence, event_id, aggregate_id, aggregate_version, occurred_at, actor, \
                 correlation_id, causation_id, schema_version, payload FROM events \
                 WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
            )?;
            let (mut after, mut count) = (0i64, 0u64);
            loop {
                let mut rows = stmt.query(rusqlite::params![after, batch as i64])?;
                let mut got = 0;
                while let Some(row) = rows.next()? {
                    after = row.get(0)?;
                    for column in 1..10 {
                        std::hint::black_box(row.get_ref(column)?);
                    }
                    got += 1;
                }
                count += got;
                if got == 0 {
                    return Ok(count);
                }
            }
        })
        .await?;
    report("bare SQL read (no decoding)", rows, started);

    // 2. The store's EventLog: the same rows, decoded into envelopes, in batches.
    let log: Arc<dyn EventLog> = Arc::new(db.clone());
    let started = Instant::now();
    let (mut after, mut decoded) = (0i64, 0u64);
    loop {
        let page = log.events_after(after, batch).await?;
        let Some(last) = page.last() else { break };
        after = last.sequence;
        decoded += page.len() as u64;
    }
    report("EventLog::events_after (read + decode)", decoded, started);

    // 3. A durable subscriber that never ran: start() catches up to the end of the log.
    let bus = EventBus::new(BusConfig::default());
    let counter = Arc::new(Counter(AtomicU64::new(0)));
    let started = Instant::now();
    let subscriber = DurableSubscriber::start(
        &bus,
        log,
        &[Topic::All],
        counter.clone(),
        DurableConfig::default(),
    )
    .await?;
    let handled = counter.0.load(Ordering::Relaxed);
    report("durable subscriber catch-up", handled, started);
    anyhow::ensure!(
        handled == events as u64,
        "handled {handled} of {events} events"
    );
    subscriber.shutdown().await?;
    Ok(())
}

fn report(what: &str, events: u64, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "  {what:<42} {events} events in {seconds:.2} s: {:.0} events/s",
        events as f64 / seconds
    );
}
