//! Rows of answer records: one `answers` row per answer a personality sent, and its
//! messages' `conversation_messages` rows naming it. Every row of an answer carries the
//! answer's first sending time, so the 90-day prune takes an answer with all its messages.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::conversation_rows::{id_text, parse_id};
use super::event_rows::{parse_time, parse_uuid};
use super::StoreError;
use crate::conversation::{AnswerId, AnswerRecord, Answered};
use crate::domain::PersonalityId;

/// Records an answer by `personality` in `channel_id`. `None` (and nothing written) when the
/// personality no longer exists.
pub(super) fn insert(
    conn: &Connection,
    personality: PersonalityId,
    channel_id: u64,
    answered: &Answered,
    at: DateTime<Utc>,
) -> Result<Option<AnswerId>, StoreError> {
    let written = conn
        .prepare_cached(
            "INSERT INTO answers (channel_id, server_id, personality_id, revision, member_id, \
             model, llm_ms, trigger_id, created_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 \
             WHERE EXISTS (SELECT 1 FROM personalities WHERE id = ?3)",
        )?
        .execute(params![
            id_text(channel_id),
            answered.server.map(id_text),
            personality.to_string(),
            answered.revision,
            id_text(answered.member),
            answered.model,
            i64::try_from(answered.llm_ms).unwrap_or(i64::MAX),
            id_text(answered.trigger_id),
            at.to_rfc3339(),
        ])?;
    Ok((written > 0).then(|| AnswerId::new(conn.last_insert_rowid())))
}

/// Records that `personality` sent `message_id`, as part of `answer` if given. False (and
/// nothing written) when the personality no longer exists.
pub(super) fn insert_message(
    conn: &Connection,
    message_id: u64,
    channel_id: u64,
    personality: PersonalityId,
    answer: Option<AnswerId>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let written = conn
        .prepare_cached(
            "INSERT OR REPLACE INTO conversation_messages \
             (message_id, channel_id, personality_id, created_at, answer_id) \
             SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM personalities WHERE id = ?3)",
        )?
        .execute(params![
            id_text(message_id),
            id_text(channel_id),
            personality.to_string(),
            at.to_rfc3339(),
            answer.map(AnswerId::get),
        ])?;
    Ok(written > 0)
}

/// The answer `message_id` belongs to.
pub(super) fn for_message(
    conn: &Connection,
    message_id: u64,
) -> Result<Option<AnswerRecord>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT a.id, a.channel_id, a.server_id, a.personality_id, a.revision, a.member_id, \
             a.model, a.llm_ms, a.trigger_id, a.created_at \
             FROM conversation_messages m JOIN answers a ON a.id = m.answer_id \
             WHERE m.message_id = ?1",
        )?
        .query_row([id_text(message_id)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, String>(9)?,
            ))
        })
        .optional()?;
    let Some((id, channel, server, personality, revision, member, model, llm_ms, trigger, at)) =
        row
    else {
        return Ok(None);
    };
    let id = AnswerId::new(id);
    Ok(Some(AnswerRecord {
        id,
        personality: PersonalityId::from_uuid(parse_uuid(&personality)?),
        channel_id: parse_id(&channel)?,
        message_ids: message_ids(conn, id)?,
        answered: Answered {
            member: parse_id(&member)?,
            trigger_id: parse_id(&trigger)?,
            server: server.as_deref().map(parse_id).transpose()?,
            revision,
            model,
            llm_ms: u64::try_from(llm_ms).unwrap_or(0),
        },
        at: parse_time(&at)?,
    }))
}

/// The answer's messages, in the order they were sent (snowflakes grow with time).
fn message_ids(conn: &Connection, answer: AnswerId) -> Result<Vec<u64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT message_id FROM conversation_messages WHERE answer_id = ?1 \
         ORDER BY CAST(message_id AS INTEGER)",
    )?;
    let ids = stmt.query_map([answer.get()], |r| r.get::<_, String>(0))?;
    ids.map(|id| parse_id(&id?)).collect()
}

/// Deletes the answer and its messages' mappings; returns those messages.
pub(super) fn forget(conn: &Connection, answer: AnswerId) -> Result<Vec<u64>, StoreError> {
    let messages = message_ids(conn, answer)?;
    conn.prepare_cached("DELETE FROM conversation_messages WHERE answer_id = ?1")?
        .execute([answer.get()])?;
    conn.prepare_cached("DELETE FROM answers WHERE id = ?1")?
        .execute([answer.get()])?;
    Ok(messages)
}

/// Gives the answer `record`'s facts and messages; returns the messages no longer part of
/// it. `None` (and nothing written) when the answer or its personality is gone.
pub(super) fn replace(
    conn: &Connection,
    record: &AnswerRecord,
) -> Result<Option<Vec<u64>>, StoreError> {
    let updated = conn
        .prepare_cached(
            "UPDATE answers SET revision = ?2, model = ?3, llm_ms = ?4 \
             WHERE id = ?1 AND EXISTS (SELECT 1 FROM personalities WHERE id = answers.personality_id)",
        )?
        .execute(params![
            record.id.get(),
            record.answered.revision,
            record.answered.model,
            i64::try_from(record.answered.llm_ms).unwrap_or(i64::MAX),
        ])?;
    if updated == 0 {
        return Ok(None);
    }
    let dropped: Vec<u64> = message_ids(conn, record.id)?
        .into_iter()
        .filter(|id| !record.message_ids.contains(id))
        .collect();
    for &id in &dropped {
        conn.prepare_cached("DELETE FROM conversation_messages WHERE message_id = ?1")?
            .execute([id_text(id)])?;
    }
    for &id in &record.message_ids {
        insert_message(
            conn,
            id,
            record.channel_id,
            record.personality,
            Some(record.id),
            record.at,
        )?;
    }
    Ok(Some(dropped))
}

/// Deletes the personality's answer records; returns how many there were.
pub(super) fn forget_personality(
    conn: &Connection,
    personality: PersonalityId,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM answers WHERE personality_id = ?1")?
        .execute([personality.to_string()])?)
}

/// Deletes answer records first sent before `before` (their messages' rows carry the same
/// time and go with the message prune).
pub(super) fn prune(conn: &Connection, before: DateTime<Utc>) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM answers WHERE created_at < ?1")?
        .execute([before.to_rfc3339()])?)
}
