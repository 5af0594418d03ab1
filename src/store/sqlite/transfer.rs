//! Moving whole databases, SQLite side (the SQL is shared, in `store::transfer`).

use rusqlite::{Row, params};

use super::{SqliteStore, message_from_row, user_from_row};
use crate::{
    clock::Timestamp,
    store::{
        StoreResult,
        transfer::{
            EventRow, INSERT_EVENT, INSERT_MEMBER, INSERT_MESSAGE, INSERT_SETTING, INSERT_THREAD,
            INSERT_USER, MemberRow, RECOUNT, Rows, SettingRow, Table, ThreadRow, UserRow,
        },
    },
};

fn collect<T>(
    statement: &mut rusqlite::CachedStatement<'_>,
    after: (i64, i64),
    limit: i64,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    statement
        .query_map(params![after.0, after.1, limit], map)?
        .collect()
}

impl SqliteStore {
    pub async fn count_rows(&self, table: Table) -> StoreResult<i64> {
        self.read(move |conn| Ok(conn.query_row(&table.count_sql(), [], |row| row.get(0))?))
            .await
    }

    pub async fn dump(&self, table: Table, after: (i64, i64), limit: i64) -> StoreResult<Rows> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(table.dump_sql())?;
            let statement = &mut statement;
            Ok(match table {
                Table::Settings => Rows::Settings(collect(statement, after, limit, |row| {
                    Ok(SettingRow {
                        key: row.get(0)?,
                        value: row.get(1)?,
                    })
                })?),
                Table::Users => Rows::Users(collect(statement, after, limit, |row| {
                    Ok(UserRow {
                        user: user_from_row(row)?,
                        event_seq: row.get(12)?,
                    })
                })?),
                Table::Threads => Rows::Threads(collect(statement, after, limit, |row| {
                    Ok(ThreadRow {
                        id: row.get(0)?,
                        user_low: row.get(1)?,
                        user_high: row.get(2)?,
                        created: row.get(3)?,
                        updated: row.get(4)?,
                        last_message_id: row.get(5)?,
                        message_count: row.get(6)?,
                    })
                })?),
                Table::Members => Rows::Members(collect(statement, after, limit, |row| {
                    Ok(MemberRow {
                        user_id: row.get(0)?,
                        thread_id: row.get(1)?,
                        updated: row.get(2)?,
                        unread: row.get(3)?,
                    })
                })?),
                Table::Messages => {
                    Rows::Messages(collect(statement, after, limit, message_from_row)?)
                }
                Table::Events => Rows::Events(collect(statement, after, limit, |row| {
                    Ok(EventRow {
                        user_id: row.get(0)?,
                        seq: row.get(1)?,
                        created: row.get(2)?,
                        payload: row.get(3)?,
                    })
                })?),
            })
        })
        .await
    }

    pub async fn load(&self, rows: Rows) -> StoreResult<()> {
        self.write(move |tx| {
            let conn = tx.conn;
            match &rows {
                Rows::Settings(rows) => {
                    let mut insert = conn.prepare_cached(INSERT_SETTING)?;
                    for r in rows {
                        insert.execute(params![r.key, r.value])?;
                    }
                }
                Rows::Users(rows) => {
                    let mut insert = conn.prepare_cached(INSERT_USER)?;
                    for r in rows {
                        let u = &r.user;
                        insert.execute(params![
                            u.id,
                            u.username,
                            u.email,
                            u.first_name,
                            u.last_name,
                            u.password,
                            u.is_active,
                            u.is_staff,
                            u.is_superuser,
                            u.date_joined.micros(),
                            u.last_login.map(Timestamp::micros),
                            u.token_version,
                            r.event_seq
                        ])?;
                    }
                }
                Rows::Threads(rows) => {
                    let mut insert = conn.prepare_cached(INSERT_THREAD)?;
                    for r in rows {
                        insert.execute(params![
                            r.id,
                            r.user_low,
                            r.user_high,
                            r.created,
                            r.updated,
                            r.last_message_id,
                            r.message_count
                        ])?;
                    }
                }
                Rows::Members(rows) => {
                    let mut insert = conn.prepare_cached(INSERT_MEMBER)?;
                    for r in rows {
                        insert.execute(params![r.user_id, r.thread_id, r.updated, r.unread])?;
                    }
                }
                Rows::Messages(rows) => {
                    let mut insert = conn.prepare_cached(INSERT_MESSAGE)?;
                    for m in rows {
                        insert.execute(params![
                            m.id,
                            m.thread,
                            m.sender,
                            m.text,
                            m.created.micros(),
                            m.is_read,
                            m.client_id
                        ])?;
                    }
                }
                Rows::Events(rows) => {
                    let mut insert = conn.prepare_cached(INSERT_EVENT)?;
                    for r in rows {
                        insert.execute(params![r.user_id, r.seq, r.created, r.payload])?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn recount(&self) -> StoreResult<()> {
        self.write(|tx| {
            for sql in RECOUNT {
                tx.conn.execute(sql, [])?;
            }
            Ok(())
        })
        .await
    }

    /// Nothing to do: AUTOINCREMENT continues after the largest id inserted.
    pub async fn finish_load(&self) -> StoreResult<()> {
        Ok(())
    }
}
