//! The `inbox` (events waiting for an instance's next turn; a durable timer is a `timerFired`
//! event not visible before its time) and the `history` (the committed events of the current
//! execution).

use rusqlite::{Connection, params};

use crate::durabletask::proto;
use crate::taskhub::error::Result;
use crate::taskhub::events;
use crate::taskhub::time::Micros;

/// An event waiting in an instance's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    /// Its row id; the order of arrival.
    pub id: i64,
    /// The time from which it may be delivered.
    pub visible_at: Micros,
    /// The event.
    pub event: proto::HistoryEvent,
}

/// Adds an event to an instance's inbox, deliverable from `visible_at`.
pub fn push(
    conn: &Connection,
    instance_id: &str,
    visible_at: Micros,
    event: &proto::HistoryEvent,
) -> Result<i64> {
    conn.prepare_cached("INSERT INTO inbox (instance_id, visible_at, event) VALUES (?1, ?2, ?3)")?
        .execute(params![instance_id, visible_at, events::encode(event)])?;
    Ok(conn.last_insert_rowid())
}

/// The pending events of an instance in arrival order; only those visible at `now` if given.
pub fn pending(
    conn: &Connection,
    instance_id: &str,
    now: Option<Micros>,
) -> Result<Vec<PendingEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, visible_at, event FROM inbox \
         WHERE instance_id = ?1 AND visible_at <= ?2 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![instance_id, now.unwrap_or(i64::MAX)], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get::<_, Vec<u8>>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, visible_at, bytes) = row?;
        out.push(PendingEvent {
            id,
            visible_at,
            event: events::decode(&bytes)?,
        });
    }
    Ok(out)
}

/// Removes delivered events.
pub fn remove(conn: &Connection, ids: &[i64]) -> Result<()> {
    let mut stmt = conn.prepare_cached("DELETE FROM inbox WHERE id = ?1")?;
    for id in ids {
        stmt.execute([id])?;
    }
    Ok(())
}

/// Removes every pending event of an instance.
pub fn clear(conn: &Connection, instance_id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM inbox WHERE instance_id = ?1")?
        .execute([instance_id])?;
    Ok(())
}

/// Every distinct (instance, time) at which some pending event becomes deliverable, so that a
/// restarted hub can schedule them; those already due come first.
pub fn wake_times(conn: &Connection) -> Result<Vec<(String, Micros)>> {
    let mut stmt = conn.prepare(
        "SELECT instance_id, visible_at FROM inbox GROUP BY instance_id, visible_at \
         ORDER BY visible_at",
    )?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The committed history of an instance's current execution.
pub fn history(conn: &Connection, instance_id: &str) -> Result<Vec<proto::HistoryEvent>> {
    let mut stmt =
        conn.prepare_cached("SELECT event FROM history WHERE instance_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([instance_id], |row| row.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for bytes in rows {
        out.push(events::decode(&bytes?)?);
    }
    Ok(out)
}

/// Appends events to an instance's history.
pub fn append_history(
    conn: &Connection,
    instance_id: &str,
    new_events: &[proto::HistoryEvent],
) -> Result<()> {
    let next: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM history WHERE instance_id = ?1")?
        .query_row([instance_id], |row| row.get(0))?;
    let mut stmt =
        conn.prepare_cached("INSERT INTO history (instance_id, seq, event) VALUES (?1, ?2, ?3)")?;
    for (offset, event) in new_events.iter().enumerate() {
        stmt.execute(params![
            instance_id,
            next + offset as i64,
            events::encode(event)
        ])?;
    }
    Ok(())
}

/// Forgets an instance's history (at continue-as-new).
pub fn clear_history(conn: &Connection, instance_id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM history WHERE instance_id = ?1")?
        .execute([instance_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskhub::store::{Location, schema};

    #[test]
    fn pending_events_respect_visibility_and_order() {
        let conn = schema::open(&Location::Memory).unwrap();
        let early = events::event_raised("a", None, 1);
        let late = events::event_raised("b", None, 2);
        let first = push(&conn, "i", 0, &early).unwrap();
        let timer = push(&conn, "i", 100, &late).unwrap();
        push(&conn, "other", 0, &early).unwrap();

        let now: Vec<i64> = pending(&conn, "i", Some(50))
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(now, vec![first]);
        let all: Vec<i64> = pending(&conn, "i", None)
            .unwrap()
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(all, vec![first, timer]);
        assert_eq!(
            wake_times(&conn).unwrap(),
            vec![("i".into(), 0), ("other".into(), 0), ("i".into(), 100)]
        );

        remove(&conn, &[first]).unwrap();
        assert_eq!(pending(&conn, "i", None).unwrap()[0].event, late);
        clear(&conn, "i").unwrap();
        assert!(pending(&conn, "i", None).unwrap().is_empty());
    }

    #[test]
    fn history_appends_in_order() {
        let conn = schema::open(&Location::Memory).unwrap();
        let a = events::orchestrator_started(1);
        let b = events::event_raised("x", None, 2);
        append_history(&conn, "i", std::slice::from_ref(&a)).unwrap();
        append_history(&conn, "i", std::slice::from_ref(&b)).unwrap();
        assert_eq!(history(&conn, "i").unwrap(), vec![a, b]);
        clear_history(&conn, "i").unwrap();
        assert!(history(&conn, "i").unwrap().is_empty());
    }
}
