//! Full-text search of a user's own messages: every word must match (case-insensitively, in any
//! script that separates words with spaces), the last one also as a prefix; newest first.
//!
//! - SQLite: FTS5 (`messages_fts`, unicode61 tokenizer, kept by triggers). Each message is
//!   indexed with scope tokens `u<id>` for both participants and `t<thread>`, so the user's
//!   messages are one more term of the same query, not a join over all matches.
//! - PostgreSQL: a `tsvector` of the `simple` configuration (no stemming: names and words of
//!   any language match as typed) with a GIN index, narrowed to the user's threads.
//!
//! Both keep accents (`café` does not match `cafe`), and both see an edit or a delete in the
//! same transaction.

use std::sync::LazyLock;

use super::{
    Counted, Store, StoreResult,
    db::{Db, Dialect, Sql},
    messages::{self, Message},
    read,
};

/// Most words one search takes (more are ignored).
pub const MAX_WORDS: usize = 16;

/// The words of a query: runs of letters and digits of any script, lower-cased.
pub fn words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(str::to_lowercase)
        .collect()
}

/// An FTS5 query: the words in the text column (the last as a prefix), in the user's scope.
fn fts5_query(words: &[String], user: i64, thread: Option<i64>) -> String {
    let last = words.len().saturating_sub(1);
    let terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == last {
                format!("\"{w}\"*")
            } else {
                format!("\"{w}\"")
            }
        })
        .collect();
    let mut query = format!("text: ({}) AND scope: \"u{user}\"", terms.join(" AND "));
    if let Some(thread) = thread {
        query.push_str(&format!(" AND scope: \"t{thread}\""));
    }
    query
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

static SQLITE_COUNT: Sql =
    Sql::new("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH $1");
static SQLITE_PAGE: LazyLock<Sql> = LazyLock::new(|| {
    Sql::owned(format!(
        "SELECT {} FROM messages WHERE id IN (
             SELECT rowid FROM messages_fts WHERE messages_fts MATCH $1
             ORDER BY rowid DESC LIMIT $2 OFFSET $3
         ) ORDER BY id DESC",
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
            Ok(Counted {
                count: db.one(&SQLITE_COUNT, &[&query]).await?,
                items: db.rows(&SQLITE_PAGE, &[&query, &limit, &offset]).await?,
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

impl Store {
    /// `user`'s messages (optionally in one thread) that contain every word, newest first.
    pub async fn search_messages(
        &self,
        user: i64,
        words: Vec<String>,
        thread: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Counted<Message>> {
        read!(self, |db| search(db, user, &words, thread, (limit, offset))
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
    fn queries_quote_every_word_and_prefix_the_last() {
        let w = words("see you lun");
        assert_eq!(
            fts5_query(&w, 7, Some(3)),
            r#"text: ("see" AND "you" AND "lun"*) AND scope: "u7" AND scope: "t3""#
        );
        assert_eq!(tsquery(&w), "'see' & 'you' & 'lun':*");
    }
}
