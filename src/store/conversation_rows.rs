//! Rows of conversation tracking: which personality sent which message, who is talking to
//! whom, where a personality is activated, who uses auto-response.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use async_trait::async_trait;

use super::answer_rows;
use super::event_rows::{parse_time, parse_uuid};
use super::{Database, StoreError};
use crate::conversation::{
    AnswerId, AnswerRecord, ConversationRows, ConversationStore, Forgotten, SentMessages,
};
use crate::domain::PersonalityId;

pub(super) fn id_text(id: u64) -> String {
    id.to_string()
}

pub(super) fn parse_id(text: &str) -> Result<u64, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad Discord id {text:?}")))
}

/// `INSERT OR REPLACE INTO <table and columns>` of one tracking row, written only while its
/// personality (the third parameter) exists, in the same statement: a reply or conversation
/// recorded just after the personality was removed (its answer was on its way) leaves
/// nothing behind.
macro_rules! insert_while_personality_exists {
    ($table_and_columns:literal) => {
        concat!(
            "INSERT OR REPLACE INTO ",
            $table_and_columns,
            " SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM personalities WHERE id = ?3)"
        )
    };
}

/// Runs an `insert_while_personality_exists!` statement: false when the personality no
/// longer exists and nothing was written.
fn insert_row(
    conn: &Connection,
    sql: &str,
    row: [&dyn rusqlite::ToSql; 4],
) -> Result<bool, StoreError> {
    Ok(conn.prepare_cached(sql)?.execute(&row[..])? > 0)
}

/// Records that the user talks to `personality` in the channel. False (and nothing
/// written) when the personality no longer exists.
fn touch_conversation(
    conn: &Connection,
    user_id: u64,
    channel_id: u64,
    personality: PersonalityId,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    insert_row(
        conn,
        insert_while_personality_exists!(
            "active_conversations (user_id, channel_id, personality_id, last_active_at)"
        ),
        [
            &id_text(user_id),
            &id_text(channel_id),
            &personality.to_string(),
            &at.to_rfc3339(),
        ],
    )
}

fn end_conversation(conn: &Connection, user_id: u64, channel_id: u64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM active_conversations WHERE user_id = ?1 AND channel_id = ?2")?
        .execute(params![id_text(user_id), id_text(channel_id)])?;
    Ok(n > 0)
}

/// Activates `personality` in the channel. False (and nothing written) when the
/// personality no longer exists.
fn activate(
    conn: &Connection,
    channel_id: u64,
    by: u64,
    personality: PersonalityId,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    insert_row(
        conn,
        insert_while_personality_exists!(
            "channel_activations (channel_id, activated_by, personality_id, activated_at)"
        ),
        [
            &id_text(channel_id),
            &id_text(by),
            &personality.to_string(),
            &at.to_rfc3339(),
        ],
    )
}

fn deactivate(conn: &Connection, channel_id: u64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM channel_activations WHERE channel_id = ?1")?
        .execute([id_text(channel_id)])?;
    Ok(n > 0)
}

fn set_auto_response(
    conn: &Connection,
    user_id: u64,
    enabled: bool,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if enabled {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO auto_response_users (user_id, enabled_at) VALUES (?1, ?2)",
        )?
        .execute(params![id_text(user_id), at.to_rfc3339()])?;
    } else {
        conn.prepare_cached("DELETE FROM auto_response_users WHERE user_id = ?1")?
            .execute([id_text(user_id)])?;
    }
    Ok(())
}

/// Deletes every trace of a personality, in the caller's transaction.
fn forget_personality(
    conn: &Connection,
    personality: PersonalityId,
) -> Result<Forgotten, StoreError> {
    let id = personality.to_string();
    let delete =
        |sql: &str| -> Result<usize, StoreError> { Ok(conn.prepare_cached(sql)?.execute([&id])?) };
    Ok(Forgotten {
        messages: delete("DELETE FROM conversation_messages WHERE personality_id = ?1")?,
        conversations: delete("DELETE FROM active_conversations WHERE personality_id = ?1")?,
        activations: delete("DELETE FROM channel_activations WHERE personality_id = ?1")?,
        answers: answer_rows::forget_personality(conn, personality)?,
    })
}

/// Counts of rows that still mention a personality (for checks and tests).
fn traces_of(conn: &Connection, personality: PersonalityId) -> Result<Forgotten, StoreError> {
    let id = personality.to_string();
    let count = |table: &str| -> Result<usize, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE personality_id = ?1");
        Ok(conn.query_row(&sql, [&id], |r| r.get::<_, i64>(0))? as usize)
    };
    Ok(Forgotten {
        messages: count("conversation_messages")?,
        conversations: count("active_conversations")?,
        activations: count("channel_activations")?,
        answers: count("answers")?,
    })
}

/// Deletes message mappings and answer records older than `before` (replies to very old
/// messages no longer resolve, nor do message actions on them; keeps the tables from growing
/// forever). Returns the deleted messages' ids, with the personality that sent each.
fn prune_messages(
    conn: &Connection,
    before: DateTime<Utc>,
) -> Result<Vec<(u64, PersonalityId)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM conversation_messages WHERE created_at < ?1 RETURNING message_id, personality_id",
    )?;
    let rows = stmt.query_map([before.to_rfc3339()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut pruned = Vec::new();
    for row in rows {
        let (message, personality) = row?;
        pruned.push((
            parse_id(&message)?,
            PersonalityId::from_uuid(parse_uuid(&personality)?),
        ));
    }
    answer_rows::prune(conn, before)?;
    Ok(pruned)
}

fn load_all(conn: &Connection) -> Result<ConversationRows, StoreError> {
    let mut rows = ConversationRows::default();
    let mut stmt =
        conn.prepare("SELECT message_id, channel_id, personality_id FROM conversation_messages")?;
    for r in stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })? {
        let (m, c, p) = r?;
        rows.messages.push((
            parse_id(&m)?,
            parse_id(&c)?,
            PersonalityId::from_uuid(parse_uuid(&p)?),
        ));
    }
    let mut stmt = conn.prepare(
        "SELECT user_id, channel_id, personality_id, last_active_at FROM active_conversations",
    )?;
    for r in stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })? {
        let (u, c, p, t) = r?;
        rows.conversations.push((
            parse_id(&u)?,
            parse_id(&c)?,
            PersonalityId::from_uuid(parse_uuid(&p)?),
            parse_time(&t)?,
        ));
    }
    let mut stmt = conn.prepare("SELECT channel_id, personality_id FROM channel_activations")?;
    for r in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (c, p) = r?;
        rows.activations
            .push((parse_id(&c)?, PersonalityId::from_uuid(parse_uuid(&p)?)));
    }
    let mut stmt = conn.prepare("SELECT user_id FROM auto_response_users")?;
    for r in stmt.query_map([], |r| r.get::<_, String>(0))? {
        rows.auto_response_users.push(parse_id(&r?)?);
    }
    Ok(rows)
}

#[async_trait]
impl ConversationStore for Database {
    async fn load(&self) -> Result<ConversationRows, StoreError> {
        self.call(|conn| load_all(conn)).await
    }

    async fn record_sent(&self, sent: SentMessages) -> Result<bool, StoreError> {
        self.write(
            move |tx| {
                let SentMessages {
                    personality,
                    channel_id,
                    at,
                    ..
                } = sent;
                let answer = match &sent.answer {
                    Some(answered) => {
                        let Some(id) =
                            answer_rows::insert(tx, personality, channel_id, answered, at)?
                        else {
                            return Ok(false);
                        };
                        Some(id)
                    }
                    None => None,
                };
                for &message_id in &sent.message_ids {
                    let recorded = answer_rows::insert_message(
                        tx,
                        message_id,
                        channel_id,
                        personality,
                        answer,
                        at,
                    )?;
                    if !recorded {
                        return Ok(false);
                    }
                }
                match sent.answering {
                    Some(user_id) => touch_conversation(tx, user_id, channel_id, personality, at),
                    None => Ok(true),
                }
            },
            |recorded| recorded,
        )
        .await
    }

    async fn touch_conversation(
        &self,
        user_id: u64,
        channel_id: u64,
        personality: PersonalityId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.call(move |conn| touch_conversation(conn, user_id, channel_id, personality, at))
            .await
    }

    async fn end_conversation(&self, user_id: u64, channel_id: u64) -> Result<bool, StoreError> {
        self.call(move |conn| end_conversation(conn, user_id, channel_id))
            .await
    }

    async fn activate(
        &self,
        channel_id: u64,
        personality: PersonalityId,
        by: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.call(move |conn| activate(conn, channel_id, by, personality, at))
            .await
    }

    async fn deactivate(&self, channel_id: u64) -> Result<bool, StoreError> {
        self.call(move |conn| deactivate(conn, channel_id)).await
    }

    async fn set_auto_response(
        &self,
        user_id: u64,
        enabled: bool,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(move |conn| set_auto_response(conn, user_id, enabled, at))
            .await
    }

    async fn forget_personality(
        &self,
        personality: PersonalityId,
    ) -> Result<Forgotten, StoreError> {
        self.write(
            move |tx| forget_personality(tx, personality),
            |forgotten| forgotten,
        )
        .await
    }

    async fn traces_of(&self, personality: PersonalityId) -> Result<Forgotten, StoreError> {
        self.call(move |conn| traces_of(conn, personality)).await
    }

    async fn prune_messages(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<(u64, PersonalityId)>, StoreError> {
        self.write(move |tx| prune_messages(tx, before), |pruned| pruned)
            .await
    }

    async fn answer_for_message(
        &self,
        message_id: u64,
    ) -> Result<Option<AnswerRecord>, StoreError> {
        self.call(move |conn| answer_rows::for_message(conn, message_id))
            .await
    }

    async fn forget_answer(&self, answer: AnswerId) -> Result<Vec<u64>, StoreError> {
        self.write(
            move |tx| answer_rows::forget(tx, answer),
            |forgotten| forgotten,
        )
        .await
    }

    async fn replace_answer(&self, answer: AnswerRecord) -> Result<Option<Vec<u64>>, StoreError> {
        self.write(
            move |tx| answer_rows::replace(tx, &answer),
            |dropped| dropped,
        )
        .await
    }
}
