//! Queries over many instances: QueryInstances, ListInstanceIds and the purge filter.
//!
//! Pages are keyset pages: the continuation token is `"<time>|<instance id>"` of the last row
//! returned, so a page never repeats or skips rows when instances are added meanwhile.

use rusqlite::Connection;
use rusqlite::types::Value;

use super::instances::{InstanceRow, select_sql};
use crate::durabletask::proto::OrchestrationStatus;
use crate::taskhub::error::Result;
use crate::taskhub::time::Micros;

/// Which instances a query selects. Every field that is set must match.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    /// Any of these statuses (empty: any).
    pub statuses: Vec<i32>,
    /// Created at or after.
    pub created_from: Option<Micros>,
    /// Created before.
    pub created_to: Option<Micros>,
    /// Completed at or after.
    pub completed_from: Option<Micros>,
    /// Completed before.
    pub completed_to: Option<Micros>,
    /// The instance id starts with this.
    pub id_prefix: Option<String>,
    /// Only terminal instances.
    pub terminal_only: bool,
}

/// Which time orders a page.
#[derive(Debug, Clone, Copy)]
pub enum Order {
    /// By creation time (QueryInstances).
    Created,
    /// By completion time (ListInstanceIds).
    Completed,
}

/// One page of instances and the token of the next page, if there is one.
#[derive(Debug, Clone)]
pub struct Page {
    /// The instances of this page, in order.
    pub rows: Vec<InstanceRow>,
    /// The token to pass for the next page.
    pub next: Option<String>,
}

const TERMINAL: [OrchestrationStatus; 4] = [
    OrchestrationStatus::Completed,
    OrchestrationStatus::Failed,
    OrchestrationStatus::Terminated,
    OrchestrationStatus::Canceled,
];

/// A page of at most `limit` instances (0: no limit) after the row named by `token`.
pub fn page(
    conn: &Connection,
    filter: &InstanceFilter,
    order: Order,
    limit: usize,
    token: Option<&str>,
) -> Result<Page> {
    let column = match order {
        Order::Created => "created_at",
        Order::Completed => "completed_at",
    };
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();

    let mut statuses = filter.statuses.clone();
    if filter.terminal_only {
        let terminal: Vec<i32> = TERMINAL.iter().map(|s| *s as i32).collect();
        statuses = if statuses.is_empty() {
            terminal
        } else {
            statuses
                .into_iter()
                .filter(|s| terminal.contains(s))
                .collect()
        };
        if statuses.is_empty() {
            return Ok(Page {
                rows: Vec::new(),
                next: None,
            });
        }
    }
    if !statuses.is_empty() {
        let marks = vec!["?"; statuses.len()].join(", ");
        clauses.push(format!("status IN ({marks})"));
        args.extend(statuses.into_iter().map(|s| Value::Integer(s.into())));
    }
    let mut bound = |sql: &str, value: Option<Micros>| {
        if let Some(value) = value {
            clauses.push(sql.to_owned());
            args.push(Value::Integer(value));
        }
    };
    bound("created_at >= ?", filter.created_from);
    bound("created_at < ?", filter.created_to);
    bound("completed_at >= ?", filter.completed_from);
    bound("completed_at < ?", filter.completed_to);
    if let Some(prefix) = &filter.id_prefix {
        clauses.push("substr(instance_id, 1, ?) = ?".into());
        args.push(Value::Integer(prefix.chars().count() as i64));
        args.push(Value::Text(prefix.clone()));
    }
    if let Some((time, id)) = token.and_then(parse_token) {
        clauses.push(format!("({column}, instance_id) > (?, ?)"));
        args.push(Value::Integer(time));
        args.push(Value::Text(id));
    }
    if matches!(order, Order::Completed) {
        clauses.push("completed_at IS NOT NULL".into());
    }

    let mut sql = String::new();
    if !clauses.is_empty() {
        sql = format!("WHERE {}", clauses.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY {column}, instance_id"));
    if limit > 0 {
        sql.push_str(&format!(" LIMIT {}", limit + 1));
    }

    let mut stmt = conn.prepare(&select_sql(&sql))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), InstanceRow::from_row)?;
    let mut rows: Vec<InstanceRow> = rows.collect::<rusqlite::Result<_>>()?;
    let mut next = None;
    if limit > 0 && rows.len() > limit {
        rows.truncate(limit);
        let last = rows.last().expect("a full page has a last row");
        let time = match order {
            Order::Created => last.created_at,
            Order::Completed => last.completed_at.unwrap_or_default(),
        };
        next = Some(format!("{time}|{}", last.instance_id));
    }
    Ok(Page { rows, next })
}

fn parse_token(token: &str) -> Option<(Micros, String)> {
    let (time, id) = token.split_once('|')?;
    Some((time.parse().ok()?, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskhub::store::instances::{save, tests::sample};
    use crate::taskhub::store::{Location, schema};

    fn ids(page: &Page) -> Vec<&str> {
        page.rows.iter().map(|r| r.instance_id.as_str()).collect()
    }

    #[test]
    fn filters_and_pages() {
        let conn = schema::open(&Location::Memory).unwrap();
        for (i, id) in ["job-1", "job-2", "job-3", "other"].iter().enumerate() {
            let mut row = sample(id);
            row.created_at = 100 + i as i64;
            if i % 2 == 0 {
                row.status = OrchestrationStatus::Completed as i32;
                row.completed_at = Some(200 - i as i64);
            }
            save(&conn, &row).unwrap();
        }

        let prefix = InstanceFilter {
            id_prefix: Some("job-".into()),
            ..Default::default()
        };
        let first = page(&conn, &prefix, Order::Created, 2, None).unwrap();
        assert_eq!(ids(&first), vec!["job-1", "job-2"]);
        let second = page(&conn, &prefix, Order::Created, 2, first.next.as_deref()).unwrap();
        assert_eq!(ids(&second), vec!["job-3"]);
        assert!(second.next.is_none());

        let range = InstanceFilter {
            created_from: Some(101),
            created_to: Some(103),
            ..Default::default()
        };
        assert_eq!(
            ids(&page(&conn, &range, Order::Created, 0, None).unwrap()),
            vec!["job-2", "job-3"]
        );

        let done = InstanceFilter {
            terminal_only: true,
            ..Default::default()
        };
        assert_eq!(
            ids(&page(&conn, &done, Order::Completed, 0, None).unwrap()),
            vec!["job-3", "job-1"]
        );

        let running_terminal = InstanceFilter {
            statuses: vec![OrchestrationStatus::Running as i32],
            terminal_only: true,
            ..Default::default()
        };
        assert!(
            page(&conn, &running_terminal, Order::Created, 0, None)
                .unwrap()
                .rows
                .is_empty()
        );
    }
}
