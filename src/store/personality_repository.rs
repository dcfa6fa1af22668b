//! The SQLite store as the service's [`PersonalityRepository`].

use async_trait::async_trait;
use rusqlite::{Connection, TransactionBehavior};

use super::{event_rows, personality_rows, settings_rows, Database, StoreError};
use crate::application::{
    Change, Decide, DecideRestore, DecideSettings, EventFilter, Listing, PersonalityRepository,
    Saved, ServiceError, Snapshot,
};
use crate::domain::{Personality, PersonalityId, ServerId, ServerSettings};
use crate::events::EventEnvelope;

#[async_trait]
impl PersonalityRepository for Database {
    async fn find_by_key(
        &self,
        server: Option<ServerId>,
        key: &str,
    ) -> Result<Option<Personality>, StoreError> {
        let key = key.to_owned();
        self.call(move |conn| personality_rows::find_by_key(conn, server, &key))
            .await
    }

    async fn get(&self, id: PersonalityId) -> Result<Option<Personality>, StoreError> {
        self.call(move |conn| personality_rows::get(conn, &id.to_string()))
            .await
    }

    async fn list(&self, listing: Listing) -> Result<Vec<Personality>, StoreError> {
        self.call(move |conn| personality_rows::list(conn, &listing))
            .await
    }

    async fn save(&self, change: Change) -> Result<Vec<EventEnvelope>, StoreError> {
        self.write(move |tx| store(tx, change), |events| events)
            .await
    }

    async fn rehearse(
        &self,
        changes: Vec<Change>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        self.call(move |conn| {
            // IMMEDIATE, as a real import would be: the trial sees what it would write over.
            let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut outcomes = Vec::with_capacity(changes.len());
            for change in changes {
                let trial = tx.savepoint()?;
                let outcome = store(&trial, change).map(|_| ());
                // Kept for the next changes to see when it succeeded; undone otherwise.
                if outcome.is_ok() {
                    trial.commit()?;
                } else {
                    trial.finish()?;
                }
                outcomes.push(outcome);
            }
            tx.rollback()?;
            Ok(outcomes)
        })
        .await
    }

    async fn change(
        &self,
        server: Option<ServerId>,
        key: &str,
        decide: Decide,
    ) -> Result<Result<Saved, ServiceError>, StoreError> {
        let key = key.to_owned();
        self.write(
            move |tx| store_decision(tx, decide(personality_rows::find_by_key(tx, server, &key)?)),
            |saved| saved,
        )
        .await
    }

    async fn restore(
        &self,
        server: Option<ServerId>,
        key: &str,
        decide: DecideRestore,
    ) -> Result<Result<Saved, ServiceError>, StoreError> {
        let key = key.to_owned();
        self.write(
            move |tx| {
                store_decision(
                    tx,
                    decide(personality_rows::find_removed(tx, server, &key)?),
                )
            },
            |saved| saved,
        )
        .await
    }

    async fn settings(&self, server: ServerId) -> Result<ServerSettings, StoreError> {
        self.call(move |conn| settings_rows::get(conn, server))
            .await
    }

    async fn all_settings(&self) -> Result<Vec<ServerSettings>, StoreError> {
        self.call(|conn| settings_rows::list(conn)).await
    }

    async fn change_settings(
        &self,
        server: ServerId,
        decide: DecideSettings,
    ) -> Result<Result<(ServerSettings, Vec<EventEnvelope>), ServiceError>, StoreError> {
        self.write(
            move |tx| {
                let change = match decide(settings_rows::get(tx, server)?) {
                    Ok(change) => change,
                    Err(refused) => return Ok(Err(refused)),
                };
                settings_rows::save(tx, &change.settings)?;
                let stored = event_rows::append(tx, vec![change.event])?;
                Ok(Ok((change.settings, stored)))
            },
            |saved| saved,
        )
        .await
    }

    async fn events(&self, filter: EventFilter) -> Result<Vec<EventEnvelope>, StoreError> {
        self.call(move |conn| event_rows::list(conn, &filter)).await
    }

    async fn last_sequence(&self) -> Result<i64, StoreError> {
        self.call(|conn| event_rows::last_sequence(conn)).await
    }

    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.call(|conn| {
            // One read transaction: a concurrent command can't make the two disagree.
            let tx = conn.transaction()?;
            Ok(Snapshot {
                events: event_rows::list(&tx, &EventFilter::default())?,
                personalities: personality_rows::list(&tx, &Listing::default())?,
                settings: settings_rows::list(&tx)?,
            })
        })
        .await
    }
}

/// Stores the change the service decided on, or hands its refusal back unwritten.
fn store_decision(
    tx: &Connection,
    decision: Result<Change, ServiceError>,
) -> Result<Result<Saved, ServiceError>, StoreError> {
    let change = match decision {
        Ok(change) => change,
        Err(refused) => return Ok(Err(refused)),
    };
    let personality = change.personality.clone();
    let stored = store(tx, change)?;
    Ok(Ok((personality, stored)))
}

/// Writes a personality's new state and appends its events, inside the caller's transaction.
fn store(tx: &Connection, change: Change) -> Result<Vec<EventEnvelope>, StoreError> {
    personality_rows::save(
        tx,
        &change.personality,
        change.expected_version,
        change.creator,
        change.events.iter().map(|e| &e.event),
    )?;
    event_rows::append(tx, change.events)
}

#[cfg(test)]
mod tests {
    use crate::application::repository_contract;
    use crate::store::{Database, Synchronous};

    #[tokio::test]
    async fn the_sqlite_store_keeps_the_repository_contract() {
        let dir = tempfile::tempdir().unwrap();
        let mut next = 0;
        repository_contract::check(|| {
            next += 1;
            Database::open(&dir.path().join(format!("{next}.db")), Synchronous::Normal).unwrap()
        })
        .await;
    }
}
