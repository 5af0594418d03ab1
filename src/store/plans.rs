//! The query plans of the hot paths on SQLite: the unread count, a user's thread list (with
//! last message and unread count per thread), a page of messages, marking read, event replay,
//! numbering a new event, and a page of search results all use indexes; none of them scans a
//! whole table.
//! `docs/STORAGE.md` shows these plans (`cargo test --lib hot_queries -- --nocapture` prints
//! them).

use super::{
    events, messages, search,
    sqlite::tests::{assert_no_scan, planning_database},
    threads,
};

#[test]
fn hot_queries_never_scan_whole_tables() {
    let (_dir, conn) = planning_database();
    let queries: [(&str, &super::db::Sql); 22] = [
        ("unread total", &messages::UNREAD_TOTAL),
        ("thread count", &threads::COUNT),
        ("thread list", &threads::LIST),
        ("thread view", &threads::VIEW),
        ("members", &threads::MEMBERS),
        ("unread in a thread", &threads::UNREAD_IN),
        ("message total", &messages::pages::TOTAL),
        ("page head", &messages::pages::PAGE_HEAD),
        ("messages by offset", &messages::pages::BY_OFFSET),
        (
            "messages by offset from the end",
            &messages::pages::BY_OFFSET_FROM_END,
        ),
        ("messages after", &messages::pages::AFTER),
        ("messages before", &messages::pages::BEFORE),
        ("messages between", &messages::pages::BETWEEN),
        ("count before", &messages::pages::COUNT_BEFORE),
        ("count from", &messages::pages::COUNT_FROM),
        ("count up to", &messages::pages::COUNT_UP_TO),
        ("mark read", &messages::MARK_READ),
        ("events after", &events::AFTER),
        ("next event seq", &events::NEXT_SEQ_SQLITE),
        ("redact a message's events", &events::REDACT_MESSAGE),
        ("search matches", &search::SQLITE_MATCHES),
        ("search page", &search::SQLITE_BY_IDS),
    ];
    for (name, sql) in queries {
        assert_no_scan(&conn, name, sql);
    }
}
