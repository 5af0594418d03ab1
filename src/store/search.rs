//! Full-text search of a user's own messages: every word must match (case-insensitively, in any
//! script that separates words with spaces), the last one also as a prefix; newest first.
//!
//! - SQLite: FTS5 (`messages_fts`) over terms computed here, not by a tokenizer: each word of a
//!   message once per participant, `u<user id>x<word>`, plus `t<thread id>`. A search is a
//!   lookup of the searching user's own terms (a prefix too), so it costs what the user's
//!   matches cost, however common the word is in everyone's messages (searching a word in
//!   half of a million messages: 80 ms p99 with a shared index and a user term, 1 ms this way;
//!   `cargo bench --bench search`). New and edited messages are queued in the writing
//!   transaction and indexed together by the writer ([`queue`]: within a second, or as soon
//!   as someone searches); a trigger drops deleted ones; [`rebuild`] fills it after a bulk
//!   load or when [`INDEX_VERSION`] changes.
//! - PostgreSQL: a `tsvector` of the `simple` configuration (no stemming: names and words of
//!   any language match as typed) with a GIN index, narrowed to the user's threads.
//!
//! Both keep accents (`café` does not match `cafe`), and a search on either sees every post,
//! edit and delete that was answered before it began.

mod merge;
mod queue;

use std::sync::LazyLock;

use super::{
    Counted, Store, StoreResult,
    db::{Db, Dialect, FromRow, IdList, Row, Sql, Tx},
    messages::{self, Message},
    read_apart, write,
};
pub(crate) use merge::IndexMerge;
pub(crate) use queue::{AfterCommit, SearchQueue};

/// Most words one search takes (more are ignored).
pub const MAX_WORDS: usize = 16;

/// The version of the SQLite index's terms, kept in the database's `user_version`: a binary
/// that finds another one there rebuilds the index when it opens the database.
pub const INDEX_VERSION: i64 = 2;

/// Runs of letters and digits of any script, lower-cased: the words of a text and of a query.
fn all_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The words of a query (at most [`MAX_WORDS`]).
pub fn words(query: &str) -> Vec<String> {
    all_words(query).take(MAX_WORDS).collect()
}

/// The terms a message of `thread` between `users` is indexed under (SQLite), space-separated.
fn terms(users: [i64; 2], thread: i64, text: &str) -> String {
    let mut words: Vec<String> = all_words(text).collect();
    words.sort_unstable();
    words.dedup();
    let mut terms = format!("t{thread}");
    for user in users {
        for word in &words {
            terms.push_str(&format!(" u{user}x{word}"));
        }
    }
    terms
}

/// An FTS5 query: the user's term of every word (the last as a prefix), and the thread's.
fn fts5_query(words: &[String], user: i64, thread: Option<i64>) -> String {
    let last = words.len().saturating_sub(1);
    let mut terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let star = if i == last { "*" } else { "" };
            format!("\"u{user}x{w}\"{star}")
        })
        .collect();
    if let Some(thread) = thread {
        terms.push(format!("\"t{thread}\""));
    }
    terms.join(" AND ")
}

/// A PostgreSQL tsquery: every word, the last as a prefix.
fn tsquery(words: &[String]) -> String {
    let last = words.len().saturating_sub(1);
    let terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == last {
                format!("'{w}':*")
            } else {
                format!("'{w}'")
            }
        })
        .collect();
    terms.join(" & ")
}

/// The user's matches, newest first, ids only: FTS5 hands them over in that order itself
/// (descending rowids), so nothing is sorted. A search takes them all, which counts them and
/// finds the page in one pass over the index: with the last word a prefix, FTS5 gathers every
/// match of the prefix before it hands over the first, so a count and then a page cost two
/// whole searches, and a window's count (`COUNT(*) OVER ()`) put the matches through two
/// sorts.
pub(crate) static SQLITE_MATCHES: Sql =
    Sql::new("SELECT rowid FROM messages_fts WHERE messages_fts MATCH $1 ORDER BY rowid DESC");
/// The listed messages (JSON ids in `$1`), newest first.
pub(crate) static SQLITE_BY_IDS: LazyLock<Sql> = LazyLock::new(|| {
    Sql::owned(format!(
        "SELECT {} FROM messages WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id DESC",
        messages::columns("messages")
    ))
});
const POSTGRES_MATCHES: &str = "FROM messages m
     WHERE m.search @@ to_tsquery('simple', $1)
       AND m.thread_id IN (SELECT thread_id FROM thread_members WHERE user_id = $2)
       AND (CAST($3 AS BIGINT) IS NULL OR m.thread_id = $3)";
static POSTGRES_COUNT: LazyLock<Sql> =
    LazyLock::new(|| Sql::owned(format!("SELECT COUNT(*) {POSTGRES_MATCHES}")));
static POSTGRES_PAGE: LazyLock<Sql> = LazyLock::new(|| {
    Sql::owned(format!(
        "SELECT {} {POSTGRES_MATCHES} ORDER BY m.id DESC LIMIT $4 OFFSET $5",
        messages::columns("m")
    ))
});

static INDEX: Sql = Sql::new("INSERT INTO messages_fts (rowid, terms) VALUES ($1, $2)");
static UNINDEX: Sql = Sql::new("DELETE FROM messages_fts WHERE rowid = $1");
static CLEAR: Sql = Sql::new("INSERT INTO messages_fts (messages_fts) VALUES ('delete-all')");
/// Merges the index into one segment. Each term of a query is looked up in every segment, and
/// indexing half a million messages in one transaction left eleven of them.
static OPTIMIZE: Sql = Sql::new("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')");
static TO_INDEX: Sql = Sql::new(
    "SELECT m.id, m.thread_id, t.user_low, t.user_high, m.text
     FROM messages m JOIN threads t ON t.id = m.thread_id
     WHERE m.id > $1 ORDER BY m.id LIMIT 5000",
);
static INDEX_VERSION_NOW: Sql = Sql::new("PRAGMA user_version");
static SET_INDEX_VERSION: LazyLock<Sql> =
    LazyLock::new(|| Sql::owned(format!("PRAGMA user_version = {INDEX_VERSION}")));

/// Queues a new message for the index (SQLite; PostgreSQL computes its column itself).
pub(crate) async fn index(tx: &mut impl Tx, message: &Message) -> StoreResult<()> {
    if tx.dialect() == Dialect::Sqlite {
        tx.execute(&queue::QUEUE, &[&message.id]).await?;
    }
    Ok(())
}

/// Takes an edited message out of the index and queues it again, to be indexed as it is then.
pub(crate) async fn reindex(tx: &mut impl Tx, message: &Message) -> StoreResult<()> {
    if tx.dialect() == Dialect::Sqlite {
        tx.execute(&UNINDEX, &[&message.id]).await?;
    }
    index(tx, message).await
}

/// A message as the index needs it.
struct ToIndex {
    id: i64,
    thread: i64,
    users: [i64; 2],
    text: String,
}

impl FromRow for ToIndex {
    fn from_row(row: &impl Row) -> StoreResult<ToIndex> {
        Ok(ToIndex {
            id: row.get("id")?,
            thread: row.get("thread_id")?,
            users: [row.get("user_low")?, row.get("user_high")?],
            text: row.get("text")?,
        })
    }
}

/// Builds the SQLite index of every message afresh (after a bulk load, or a new
/// [`INDEX_VERSION`]), in one transaction, and records the version.
pub(crate) async fn rebuild(tx: &impl Tx) -> StoreResult<()> {
    if tx.dialect() != Dialect::Sqlite {
        return Ok(());
    }
    tx.execute(&CLEAR, &[]).await?;
    tx.execute(&queue::EMPTY, &[]).await?;
    let mut after = 0_i64;
    loop {
        let batch: Vec<ToIndex> = tx.rows(&TO_INDEX, &[&after]).await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        for message in &batch {
            let terms = terms(message.users, message.thread, &message.text);
            tx.execute(&INDEX, &[&message.id, &terms]).await?;
        }
    }
    tx.execute(&OPTIMIZE, &[]).await?;
    tx.execute(&SET_INDEX_VERSION, &[]).await?;
    Ok(())
}

async fn search(
    db: &impl Db,
    user: i64,
    words: &[String],
    thread: Option<i64>,
    (limit, offset): (i64, i64),
) -> StoreResult<Counted<Message>> {
    match db.dialect() {
        Dialect::Sqlite => {
            let query = fts5_query(words, user, thread);
            let matches: Vec<i64> = db.rows(&SQLITE_MATCHES, &[&query]).await?;
            let page: Vec<i64> = matches
                .iter()
                .copied()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(usize::try_from(limit).unwrap_or(0))
                .collect();
            let items = if page.is_empty() {
                Vec::new()
            } else {
                db.rows(&SQLITE_BY_IDS, &[&IdList::new(&page).0]).await?
            };
            Ok(Counted {
                count: matches.len() as i64,
                items,
            })
        }
        Dialect::Postgres => {
            let query = tsquery(words);
            Ok(Counted {
                count: db.one(&POSTGRES_COUNT, &[&query, &user, &thread]).await?,
                items: db
                    .rows(&POSTGRES_PAGE, &[&query, &user, &thread, &limit, &offset])
                    .await?,
            })
        }
    }
}

/// [`search`], or `None` when messages wait in the SQLite index's queue (in this snapshot).
async fn search_unless_queued(
    db: &impl Db,
    user: i64,
    words: &[String],
    thread: Option<i64>,
    page: (i64, i64),
) -> StoreResult<Option<Counted<Message>>> {
    if db.dialect() == Dialect::Sqlite && db.one::<bool>(&queue::WAITING, &[]).await? {
        return Ok(None);
    }
    search(db, user, words, thread, page).await.map(Some)
}

impl Store {
    /// Builds the SQLite search index when it is missing or of another [`INDEX_VERSION`]
    /// (a database that an older binary migrated, or a fresh one).
    pub(crate) async fn ensure_search_index(&self) -> StoreResult<()> {
        if !matches!(self, Store::Sqlite(_)) {
            return Ok(());
        }
        let version: i64 = read_apart!(self, |db| db.one(&INDEX_VERSION_NOW, &[]).await)?;
        if version != INDEX_VERSION {
            tracing::info!(
                from = version,
                to = INDEX_VERSION,
                "building the search index"
            );
            write!(self, |tx| rebuild(tx).await)?;
        }
        Ok(())
    }

    /// `user`'s messages (optionally in one thread) that contain every word, newest first.
    pub async fn search_messages(
        &self,
        user: i64,
        words: Vec<String>,
        thread: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<Message>> {
        let words = std::sync::Arc::new(words);
        let first = words.clone();
        let found = read_apart!(self, |db| search_unless_queued(
            db,
            user,
            &first,
            thread,
            (limit, offset)
        )
        .await)?;
        if let Some(found) = found {
            return Ok(found);
        }
        if let Store::Sqlite(engine) = self {
            engine.index_search_queue().await?;
        }
        read_apart!(self, |db| search(db, user, &words, thread, (limit, offset))
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letters_and_digits_of_any_script() {
        assert_eq!(words("Lunch at 12?"), ["lunch", "at", "12"]);
        assert_eq!(words("Привет, Café!"), ["привет", "café"]);
        assert_eq!(words("\" OR 1=1 -- *"), ["or", "1", "1"]);
        assert!(words("  ?! ").is_empty());
    }

    #[test]
    fn messages_are_indexed_under_each_participants_words_once() {
        assert_eq!(
            terms([2, 5], 9, "Hi, hi Café!"),
            "t9 u2xcafé u2xhi u5xcafé u5xhi"
        );
        assert_eq!(terms([2, 5], 9, ""), "t9");
    }

    #[test]
    fn queries_quote_every_word_and_prefix_the_last() {
        let w = words("see you lun");
        assert_eq!(
            fts5_query(&w, 7, Some(3)),
            r#""u7xsee" AND "u7xyou" AND "u7xlun"* AND "t3""#
        );
        assert_eq!(tsquery(&w), "'see' & 'you' & 'lun':*");
    }
}
