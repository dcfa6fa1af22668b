//! The SQLite store as the durable bus's [`EventLog`].

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{params, OptionalExtension};

use super::event_rows::{self, parse_time, parse_uuid};
use super::Database;
use crate::application::EventFilter;
use crate::events::{DeadLetter, EventEnvelope, EventLog, LogError};

#[async_trait]
impl EventLog for Database {
    async fn events_after(&self, after: i64, limit: usize) -> Result<Vec<EventEnvelope>, LogError> {
        let filter = EventFilter {
            after,
            limit: Some(limit),
            ..Default::default()
        };
        Ok(self
            .call(move |conn| event_rows::list(conn, &filter))
            .await?)
    }

    async fn event(&self, sequence: i64) -> Result<Option<EventEnvelope>, LogError> {
        Ok(self
            .call(move |conn| event_rows::get(conn, sequence))
            .await?)
    }

    async fn last_sequence(&self) -> Result<i64, LogError> {
        Ok(self.call(|conn| event_rows::last_sequence(conn)).await?)
    }

    async fn checkpoint(&self, subscriber: &str) -> Result<i64, LogError> {
        let subscriber = subscriber.to_owned();
        Ok(self
            .call(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT sequence FROM subscriber_checkpoints WHERE subscriber = ?1",
                    )?
                    .query_row([subscriber], |r| r.get::<_, i64>(0))
                    .optional()?
                    .unwrap_or(0))
            })
            .await?)
    }

    async fn save_checkpoint(
        &self,
        subscriber: &str,
        sequence: i64,
        force: bool,
    ) -> Result<(), LogError> {
        let subscriber = subscriber.to_owned();
        Ok(self
            .call(move |conn| {
                let sql = if force {
                    "INSERT INTO subscriber_checkpoints (subscriber, sequence, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(subscriber) DO UPDATE SET sequence = excluded.sequence, updated_at = excluded.updated_at"
                } else {
                    "INSERT INTO subscriber_checkpoints (subscriber, sequence, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT(subscriber) DO UPDATE SET sequence = excluded.sequence, updated_at = excluded.updated_at \
                     WHERE excluded.sequence > subscriber_checkpoints.sequence"
                };
                conn.prepare_cached(sql)?
                    .execute(params![subscriber, sequence, Utc::now().to_rfc3339()])?;
                Ok(())
            })
            .await?)
    }

    async fn park_dead_letter(
        &self,
        subscriber: &str,
        event: &EventEnvelope,
        attempts: u32,
        error: &str,
    ) -> Result<(), LogError> {
        let (subscriber, error) = (subscriber.to_owned(), error.to_owned());
        let (sequence, event_id, event_type) = (event.sequence, event.event_id, event.event_type());
        Ok(self
            .call(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO dead_letters (subscriber, sequence, event_id, event_type, attempts, last_error, parked_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                     ON CONFLICT(subscriber, sequence) DO UPDATE SET attempts = dead_letters.attempts + excluded.attempts, \
                     last_error = excluded.last_error, parked_at = excluded.parked_at",
                )?
                .execute(params![
                    subscriber,
                    sequence,
                    event_id.to_string(),
                    event_type.as_str(),
                    attempts,
                    error,
                    Utc::now().to_rfc3339()
                ])?;
                Ok(())
            })
            .await?)
    }

    async fn dead_letters(&self, subscriber: Option<&str>) -> Result<Vec<DeadLetter>, LogError> {
        let subscriber = subscriber.map(str::to_owned);
        Ok(self
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, subscriber, sequence, event_id, event_type, attempts, last_error, parked_at \
                     FROM dead_letters WHERE ?1 IS NULL OR subscriber = ?1 ORDER BY id",
                )?;
                let rows = stmt.query_map([subscriber], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, u32>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                    ))
                })?;
                rows.map(|row| {
                    let (id, subscriber, sequence, event_id, event_type, attempts, last_error, parked_at) = row?;
                    Ok(DeadLetter {
                        id,
                        subscriber,
                        sequence,
                        event_id: parse_uuid(&event_id)?,
                        event_type,
                        attempts,
                        last_error,
                        parked_at: parse_time(&parked_at)?,
                    })
                })
                .collect()
            })
            .await?)
    }

    async fn delete_dead_letter(&self, id: i64) -> Result<(), LogError> {
        Ok(self
            .call(move |conn| {
                conn.execute("DELETE FROM dead_letters WHERE id = ?1", [id])?;
                Ok(())
            })
            .await?)
    }
}
