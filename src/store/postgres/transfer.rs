//! Moving whole databases, PostgreSQL side (the SQL is shared, in `store::transfer`).

use tokio_postgres::Row;

use super::{PostgresStore, message_from_row, user_from_row};
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

fn setting(row: &Row) -> SettingRow {
    SettingRow {
        key: row.get(0),
        value: row.get(1),
    }
}

fn user(row: &Row) -> UserRow {
    UserRow {
        user: user_from_row(row),
        event_seq: row.get(12),
    }
}

fn thread(row: &Row) -> ThreadRow {
    ThreadRow {
        id: row.get(0),
        user_low: row.get(1),
        user_high: row.get(2),
        created: row.get(3),
        updated: row.get(4),
        last_message_id: row.get(5),
        message_count: row.get(6),
    }
}

fn member(row: &Row) -> MemberRow {
    MemberRow {
        user_id: row.get(0),
        thread_id: row.get(1),
        updated: row.get(2),
        unread: row.get(3),
    }
}

fn event(row: &Row) -> EventRow {
    EventRow {
        user_id: row.get(0),
        seq: row.get(1),
        created: row.get(2),
        payload: row.get(3),
    }
}

impl PostgresStore {
    pub async fn count_rows(&self, table: Table) -> StoreResult<i64> {
        Ok(self
            .query_opt(&table.count_sql(), &[], |row| row.get::<_, i64>(0))
            .await?
            .unwrap_or(0))
    }

    pub async fn dump(&self, table: Table, after: (i64, i64), limit: i64) -> StoreResult<Rows> {
        let sql = table.dump_sql();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&after.0, &after.1, &limit];
        Ok(match table {
            Table::Settings => Rows::Settings(self.query_all(sql, &params, setting).await?),
            Table::Users => Rows::Users(self.query_all(sql, &params, user).await?),
            Table::Threads => Rows::Threads(self.query_all(sql, &params, thread).await?),
            Table::Members => Rows::Members(self.query_all(sql, &params, member).await?),
            Table::Messages => {
                Rows::Messages(self.query_all(sql, &params, message_from_row).await?)
            }
            Table::Events => Rows::Events(self.query_all(sql, &params, event).await?),
        })
    }

    pub async fn load(&self, rows: Rows) -> StoreResult<()> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        match &rows {
            Rows::Settings(rows) => {
                let insert = txn.prepare_cached(INSERT_SETTING).await?;
                for r in rows {
                    txn.execute(&insert, &[&r.key, &r.value]).await?;
                }
            }
            Rows::Users(rows) => {
                let insert = txn.prepare_cached(INSERT_USER).await?;
                for r in rows {
                    let u = &r.user;
                    txn.execute(
                        &insert,
                        &[
                            &u.id,
                            &u.username,
                            &u.email,
                            &u.first_name,
                            &u.last_name,
                            &u.password,
                            &u.is_active,
                            &u.is_staff,
                            &u.is_superuser,
                            &u.date_joined.micros(),
                            &u.last_login.map(Timestamp::micros),
                            &u.token_version,
                            &r.event_seq,
                        ],
                    )
                    .await?;
                }
            }
            Rows::Threads(rows) => {
                let insert = txn.prepare_cached(INSERT_THREAD).await?;
                for r in rows {
                    txn.execute(
                        &insert,
                        &[
                            &r.id,
                            &r.user_low,
                            &r.user_high,
                            &r.created,
                            &r.updated,
                            &r.last_message_id,
                            &r.message_count,
                        ],
                    )
                    .await?;
                }
            }
            Rows::Members(rows) => {
                let insert = txn.prepare_cached(INSERT_MEMBER).await?;
                for r in rows {
                    txn.execute(&insert, &[&r.user_id, &r.thread_id, &r.updated, &r.unread])
                        .await?;
                }
            }
            Rows::Messages(rows) => {
                let insert = txn.prepare_cached(INSERT_MESSAGE).await?;
                for m in rows {
                    txn.execute(
                        &insert,
                        &[
                            &m.id,
                            &m.thread,
                            &m.sender,
                            &m.text,
                            &m.created.micros(),
                            &m.is_read,
                            &m.client_id,
                        ],
                    )
                    .await?;
                }
            }
            Rows::Events(rows) => {
                let insert = txn.prepare_cached(INSERT_EVENT).await?;
                for r in rows {
                    txn.execute(&insert, &[&r.user_id, &r.seq, &r.created, &r.payload])
                        .await?;
                }
            }
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn recount(&self) -> StoreResult<()> {
        let mut client = self.client().await?;
        let txn = client.transaction().await?;
        for sql in RECOUNT {
            txn.execute(sql, &[]).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Moves the identity sequences past the loaded ids, so new rows get fresh ones.
    pub async fn finish_load(&self) -> StoreResult<()> {
        let client = self.client().await?;
        for table in ["users", "threads", "messages"] {
            client
                .execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                       COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                    ),
                    &[],
                )
                .await?;
        }
        Ok(())
    }
}
