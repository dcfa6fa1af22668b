//! An [`EventLog`] kept in memory for the durable-subscriber tests and the bus benchmark (the
//! bot uses the SQLite store).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{anyhow, bail};
use async_trait::async_trait;
use chrono::Utc;

use personae::events::{DeadLetter, EventEnvelope, EventLog, LogError};

/// An event log in memory with the same rules as the SQLite one: events in sequence order,
/// checkpoints that only move forward unless forced, dead letters with increasing ids.
///
/// It can also be told to fail reads, to test how subscribers live through a broken store.
#[derive(Debug, Default)]
pub struct InMemoryEventLog {
    state: Mutex<State>,
    checkpoint_writes: AtomicU64,
    failing_reads: AtomicU32,
}

#[derive(Debug, Default)]
struct State {
    /// Sorted by sequence, no duplicates.
    events: Vec<EventEnvelope>,
    checkpoints: HashMap<String, i64>,
    dead_letters: Vec<DeadLetter>,
    last_dead_letter_id: i64,
}

impl InMemoryEventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an event as the next one, giving it the next sequence (whatever it carried),
    /// as a commit would; returns it ready to publish.
    pub fn append(&self, mut event: EventEnvelope) -> Arc<EventEnvelope> {
        let mut state = self.lock();
        event.sequence = state.events.last().map_or(0, |e| e.sequence) + 1;
        state.events.push(event.clone());
        Arc::new(event)
    }

    /// Stores an event with the sequence it carries, which must be above every stored one
    /// (to build logs with holes in the numbering).
    pub fn insert(&self, event: EventEnvelope) -> Result<Arc<EventEnvelope>, LogError> {
        let mut state = self.lock();
        let last = state.events.last().map_or(0, |e| e.sequence);
        if event.sequence <= last {
            bail!(
                "sequence {} is not above the last stored one ({last})",
                event.sequence
            );
        }
        state.events.push(event.clone());
        Ok(Arc::new(event))
    }

    /// How many events are stored.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether no event is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times a checkpoint was written (to check that checkpoints are written lazily).
    pub fn checkpoint_writes(&self) -> u64 {
        self.checkpoint_writes.load(Ordering::Relaxed)
    }

    /// Makes the next `n` event reads (`events_after`, `event`) fail.
    pub fn fail_next_reads(&self, n: u32) {
        self.failing_reads.store(n, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change below is a single push or assignment, so a panic elsewhere can't
        // leave the state half-changed: using it after a poisoning is safe.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn injected_failure(&self) -> Result<(), LogError> {
        let took_one = self
            .failing_reads
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if took_one {
            Err(anyhow!("injected read failure"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl EventLog for InMemoryEventLog {
    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventEnvelope>, LogError> {
        self.injected_failure()?;
        let state = self.lock();
        let start = state.events.partition_point(|e| e.sequence <= after);
        Ok(state.events[start..].iter().take(limit).cloned().collect())
    }

    async fn event(&self, sequence: i64) -> Result<Option<EventEnvelope>, LogError> {
        self.injected_failure()?;
        let state = self.lock();
        Ok(state
            .events
            .binary_search_by_key(&sequence, |e| e.sequence)
            .ok()
            .map(|i| state.events[i].clone()))
    }

    async fn last_sequence(&self) -> Result<i64, LogError> {
        Ok(self.lock().events.last().map_or(0, |e| e.sequence))
    }

    async fn checkpoint(&self, subscriber: &str) -> Result<i64, LogError> {
        Ok(self
            .lock()
            .checkpoints
            .get(subscriber)
            .copied()
            .unwrap_or(0))
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        sequence: i64,
        force: bool,
    ) -> Result<(), LogError> {
        self.checkpoint_writes.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let current = state.checkpoints.entry(subscriber.to_owned()).or_insert(0);
        if force || sequence > *current {
            *current = sequence;
        }
        Ok(())
    }

    async fn park_dead_letter(
        &self,
        subscriber: &str,
        event: &EventEnvelope,
        attempts: u32,
        error: &str,
    ) -> Result<(), LogError> {
        let mut state = self.lock();
        // Parking the same event again (after a replay) updates the letter instead of
        // listing the event twice.
        if let Some(letter) = state
            .dead_letters
            .iter_mut()
            .find(|d| d.subscriber == subscriber && d.sequence == event.sequence)
        {
            letter.attempts = attempts;
            error.clone_into(&mut letter.last_error);
            letter.parked_at = Utc::now();
            return Ok(());
        }
        state.last_dead_letter_id += 1;
        let id = state.last_dead_letter_id;
        state.dead_letters.push(DeadLetter {
            id,
            subscriber: subscriber.to_owned(),
            sequence: event.sequence,
            event_id: event.event_id,
            event_type: event.event_type().as_str().to_owned(),
            attempts,
            last_error: error.to_owned(),
            parked_at: Utc::now(),
        });
        Ok(())
    }

    async fn dead_letters(&self, subscriber: Option<&str>) -> Result<Vec<DeadLetter>, LogError> {
        Ok(self
            .lock()
            .dead_letters
            .iter()
            .filter(|d| subscriber.is_none() || subscriber == Some(d.subscriber.as_str()))
            .cloned()
            .collect())
    }

    async fn delete_dead_letter(&self, id: i64) -> Result<(), LogError> {
        self.lock().dead_letters.retain(|d| d.id != id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use personae::domain::{Alias, DomainEvent, PersonalityId};

    fn envelope(sequence: i64) -> EventEnvelope {
        EventEnvelope {
            sequence,
            event_id: uuid::Uuid::now_v7(),
            aggregate_id: PersonalityId::new().into(),
            aggregate_version: 1,
            occurred_at: Utc::now(),
            actor: "admin:cli".into(),
            correlation_id: "test".into(),
            causation_id: None,
            schema_version: personae::events::SCHEMA_VERSION,
            event: DomainEvent::PersonalityAliasAdded {
                alias: Alias::parse("x").unwrap(),
            },
        }
    }

    #[tokio::test]
    async fn appended_events_get_consecutive_sequences_and_read_back_in_order() {
        let log = InMemoryEventLog::new();
        for _ in 0..5 {
            log.append(envelope(0));
        }
        let after_two: Vec<i64> = log
            .events_after(2, 2)
            .await
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(after_two, vec![3, 4]);
        assert_eq!(log.last_sequence().await.unwrap(), 5);
        assert_eq!(log.event(4).await.unwrap().unwrap().sequence, 4);
        assert!(log.event(9).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn checkpoints_only_move_back_when_forced() {
        let log = InMemoryEventLog::new();
        log.save_checkpoint("s", 5, false).await.unwrap();
        log.save_checkpoint("s", 3, false).await.unwrap();
        assert_eq!(log.checkpoint("s").await.unwrap(), 5);
        log.save_checkpoint("s", 3, true).await.unwrap();
        assert_eq!(log.checkpoint("s").await.unwrap(), 3);
        assert_eq!(log.checkpoint("other").await.unwrap(), 0);
        assert_eq!(log.checkpoint_writes(), 3);
    }

    #[tokio::test]
    async fn parking_the_same_event_twice_keeps_one_dead_letter() {
        let log = InMemoryEventLog::new();
        let event = log.append(envelope(0));
        log.park_dead_letter("s", &event, 5, "first").await.unwrap();
        log.park_dead_letter("s", &event, 5, "second")
            .await
            .unwrap();
        let letters = log.dead_letters(Some("s")).await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].last_error, "second");
        log.delete_dead_letter(letters[0].id).await.unwrap();
        assert!(log.dead_letters(None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn injected_failures_fail_that_many_reads() {
        let log = InMemoryEventLog::new();
        log.fail_next_reads(1);
        assert!(log.events_after(0, 10).await.is_err());
        assert!(log.events_after(0, 10).await.is_ok());
    }

    #[test]
    fn inserting_below_the_last_sequence_is_refused() {
        let log = InMemoryEventLog::new();
        log.insert(envelope(3)).unwrap();
        assert!(log.insert(envelope(3)).is_err());
        assert!(log.insert(envelope(5)).is_ok());
    }
}
