//! Bringing data in: `migrate-data` copies a whole Simple Chat database into an empty one (for
//! example SQLite → PostgreSQL), and `import-django` takes the original Django app's users,
//! threads and messages. Both load through the store's transfer operations, so they work on
//! either backend.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    path::Path,
};

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};

use crate::{
    clock::Timestamp,
    store::{
        Message, Store, User,
        transfer::{MemberRow, Rows, Table, ThreadRow, UserRow},
    },
};

/// Rows per page when copying.
const PAGE: i64 = 1_000;

/// Copies every table of `from` into the empty database `to`, ids and all, then reads both back
/// page by page and checks that they hold the same rows. Returns the row count per table.
pub async fn migrate_data(from: &Store, to: &Store) -> anyhow::Result<Vec<(Table, usize)>> {
    for table in Table::ALL {
        if to.count_rows(table).await? > 0 {
            bail!(
                "the target database is not empty (its {} table has rows): \
                 migrate-data copies into an empty database only",
                table.name()
            );
        }
    }
    let mut copied = Vec::new();
    for table in Table::ALL {
        let mut after = (0, 0);
        let mut count = 0;
        loop {
            let rows = from.dump(table, after, PAGE).await?;
            let Some(last) = rows.last_key() else { break };
            after = last;
            count += rows.len();
            to.load(rows).await?;
        }
        copied.push((table, count));
    }
    to.finish_load().await?;
    for table in Table::ALL {
        let mut after = (0, 0);
        loop {
            let source = from.dump(table, after, PAGE).await?;
            let target = to.dump(table, after, PAGE).await?;
            if source != target {
                bail!(
                    "verification failed: the {} rows after {after:?} differ",
                    table.name()
                );
            }
            let Some(last) = source.last_key() else { break };
            after = last;
        }
    }
    Ok(copied)
}

/// What `import-django` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub users: usize,
    pub users_already_there: usize,
    pub threads: usize,
    pub threads_already_there: usize,
    pub messages: usize,
    pub messages_already_there: usize,
    /// What could not be taken as it was, one line each.
    pub problems: Vec<String>,
}

/// Every row of a table of `store`.
async fn dump_all(store: &Store, table: Table) -> anyhow::Result<Vec<Rows>> {
    let mut pages = Vec::new();
    let mut after = (0, 0);
    loop {
        let rows = store.dump(table, after, PAGE).await?;
        let Some(last) = rows.last_key() else { break };
        after = last;
        pages.push(rows);
    }
    Ok(pages)
}

/// The wanted id when it is free, else the next id after every id taken.
fn claim_id(taken: &mut BTreeSet<i64>, wanted: i64) -> i64 {
    let id = if wanted > 0 && !taken.contains(&wanted) {
        wanted
    } else {
        taken.last().copied().unwrap_or(0) + 1
    };
    taken.insert(id);
    id
}

fn django_time(text: Option<String>, what: &str) -> anyhow::Result<Option<Timestamp>> {
    text.map(|t| {
        Timestamp::parse(&t).with_context(|| format!("{what}: cannot read the time {t:?}"))
    })
    .transpose()
}

struct DjangoUser {
    id: i64,
    user: User,
}

struct DjangoMessage {
    id: i64,
    thread: i64,
    sender: i64,
    text: String,
    created: Timestamp,
    is_read: bool,
}

/// A thread of the original: its id, created and updated times.
type DjangoThread = (i64, Option<Timestamp>, Option<Timestamp>);

/// Everything `import_django` reads from the original's database.
struct DjangoData {
    users: Vec<DjangoUser>,
    threads: Vec<DjangoThread>,
    /// Thread id → the user ids taking part.
    participants: BTreeMap<i64, BTreeSet<i64>>,
    messages: Vec<DjangoMessage>,
}

fn read_django(path: &Path) -> anyhow::Result<DjangoData> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut users = Vec::new();
    let mut statement = conn
        .prepare(
            "SELECT id, password, last_login, is_superuser, username, first_name, last_name,
                    email, is_staff, is_active, date_joined
             FROM auth_user ORDER BY id",
        )
        .context("reading auth_user (is this the original's db.sqlite3?)")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let what = format!("auth_user {id}");
        users.push(DjangoUser {
            id,
            user: User {
                id,
                password: row.get(1)?,
                last_login: django_time(row.get(2)?, &what)?,
                is_superuser: row.get(3)?,
                username: row.get(4)?,
                first_name: row.get(5)?,
                last_name: row.get(6)?,
                email: row.get(7)?,
                is_staff: row.get(8)?,
                is_active: row.get(9)?,
                date_joined: django_time(row.get(10)?, &what)?.unwrap_or_else(Timestamp::now),
                token_version: 0,
            },
        });
    }
    let mut threads = Vec::new();
    let has_times = conn
        .prepare("SELECT created, updated FROM chat_thread LIMIT 0")
        .is_ok();
    let sql = if has_times {
        "SELECT id, created, updated FROM chat_thread ORDER BY id"
    } else {
        "SELECT id, NULL, NULL FROM chat_thread ORDER BY id"
    };
    let mut statement = conn.prepare(sql).context("reading chat_thread")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let what = format!("chat_thread {id}");
        threads.push((
            id,
            django_time(row.get(1)?, &what)?,
            django_time(row.get(2)?, &what)?,
        ));
    }
    let mut participants: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    let mut statement = conn
        .prepare("SELECT thread_id, user_id FROM chat_thread_participants ORDER BY id")
        .context("reading chat_thread_participants")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        participants
            .entry(row.get(0)?)
            .or_default()
            .insert(row.get(1)?);
    }
    let mut messages = Vec::new();
    let mut statement = conn
        .prepare(
            "SELECT id, thread_id, sender_id, text, created, is_read FROM chat_message ORDER BY id",
        )
        .context("reading chat_message")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let created: Option<String> = row.get(4)?;
        messages.push(DjangoMessage {
            id,
            thread: row.get(1)?,
            sender: row.get(2)?,
            text: row.get(3)?,
            created: django_time(created, &format!("chat_message {id}"))?
                .unwrap_or_else(Timestamp::now),
            is_read: row.get::<_, Option<bool>>(5)?.unwrap_or(false),
        });
    }
    Ok(DjangoData {
        users,
        threads,
        participants,
        messages,
    })
}

/// Imports the original Django app's data from its `db.sqlite3`: users (their password hashes
/// keep working), two-person threads and their messages, keeping ids where they are free.
/// Threads that are not exactly two people are reported, not imported. Running it again
/// imports nothing twice: users are matched by username, threads by their pair, messages by
/// thread, sender, time and text.
pub async fn import_django(store: &Store, path: &Path) -> anyhow::Result<ImportReport> {
    let DjangoData {
        users,
        threads,
        participants,
        messages,
    } = read_django(path)?;
    let mut report = ImportReport::default();

    // What the target already holds.
    let mut user_ids = BTreeSet::new();
    let mut by_username = HashMap::new();
    let mut usernames = HashMap::new();
    for page in dump_all(store, Table::Users).await? {
        if let Rows::Users(rows) = page {
            for row in rows {
                user_ids.insert(row.user.id);
                usernames.insert(row.user.id, row.user.username.clone());
                by_username.insert(row.user.username, row.user.id);
            }
        }
    }
    let mut thread_ids = BTreeSet::new();
    let mut by_pair = HashMap::new();
    for page in dump_all(store, Table::Threads).await? {
        if let Rows::Threads(rows) = page {
            for row in rows {
                thread_ids.insert(row.id);
                by_pair.insert((row.user_low, row.user_high), row.id);
            }
        }
    }
    let mut message_ids = BTreeSet::new();
    let mut known_messages = HashSet::new();
    for page in dump_all(store, Table::Messages).await? {
        if let Rows::Messages(rows) = page {
            for m in rows {
                message_ids.insert(m.id);
                known_messages.insert((m.thread, m.sender, m.created, m.text));
            }
        }
    }

    // Users.
    let mut user_map = HashMap::new();
    let mut new_users = Vec::new();
    for DjangoUser { id, mut user } in users {
        if let Some(&existing) = by_username.get(&user.username) {
            user_map.insert(id, existing);
            report.users_already_there += 1;
            continue;
        }
        user.id = claim_id(&mut user_ids, id);
        user_map.insert(id, user.id);
        usernames.insert(user.id, user.username.clone());
        by_username.insert(user.username.clone(), user.id);
        new_users.push(UserRow { user, event_seq: 0 });
    }
    report.users = new_users.len();

    // Threads of exactly two people.
    let name = |django_id: &i64| {
        user_map
            .get(django_id)
            .and_then(|id| usernames.get(id))
            .cloned()
            .unwrap_or_else(|| format!("user {django_id}"))
    };
    let mut thread_map = HashMap::new();
    let mut new_threads = Vec::new();
    let mut new_members = Vec::new();
    for (id, created, updated) in threads {
        let people: Vec<i64> = participants
            .get(&id)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let mapped: BTreeSet<i64> = people
            .iter()
            .filter_map(|p| user_map.get(p))
            .copied()
            .collect();
        if people.len() != 2 || mapped.len() != 2 {
            let names: Vec<String> = people.iter().map(name).collect();
            report.problems.push(format!(
                "thread {id} ({} participant(s): {}): a thread is exactly two people",
                people.len(),
                names.join(", ")
            ));
            continue;
        }
        let pair: Vec<i64> = mapped.into_iter().collect();
        let (low, high) = (pair[0], pair[1]);
        if let Some(&existing) = by_pair.get(&(low, high)) {
            thread_map.insert(id, (existing, low, high));
            report.threads_already_there += 1;
            continue;
        }
        let now = Timestamp::now();
        let created = created.or(updated).unwrap_or(now).micros();
        let updated = updated.map_or(created, Timestamp::micros);
        let thread_id = claim_id(&mut thread_ids, id);
        by_pair.insert((low, high), thread_id);
        thread_map.insert(id, (thread_id, low, high));
        new_threads.push(ThreadRow {
            id: thread_id,
            user_low: low,
            user_high: high,
            created,
            updated,
            last_message_id: None,
            message_count: 0,
        });
        for user_id in [low, high] {
            new_members.push(MemberRow {
                user_id,
                thread_id,
                updated,
                unread: 0,
            });
        }
    }
    report.threads = new_threads.len();

    // Messages of the threads taken.
    let mut skipped_by_thread: BTreeMap<i64, usize> = BTreeMap::new();
    let mut new_messages = Vec::new();
    for m in messages {
        let Some(&(thread, low, high)) = thread_map.get(&m.thread) else {
            *skipped_by_thread.entry(m.thread).or_default() += 1;
            continue;
        };
        let sender = match user_map.get(&m.sender) {
            Some(&sender) if sender == low || sender == high => sender,
            _ => {
                report.problems.push(format!(
                    "message {}: its sender {} is not in thread {}",
                    m.id,
                    name(&m.sender),
                    m.thread
                ));
                continue;
            }
        };
        let key = (thread, sender, m.created, m.text);
        if known_messages.contains(&key) {
            report.messages_already_there += 1;
            continue;
        }
        let (thread, sender, created, text) = key.clone();
        known_messages.insert(key);
        new_messages.push(Message {
            id: claim_id(&mut message_ids, m.id),
            thread,
            sender,
            text,
            created,
            is_read: m.is_read,
            client_id: None,
        });
    }
    report.messages = new_messages.len();
    for (thread, count) in skipped_by_thread {
        report
            .problems
            .push(format!("{count} message(s) of thread {thread}"));
    }

    for chunk in new_users.chunks(PAGE as usize) {
        store.load(Rows::Users(chunk.to_vec())).await?;
    }
    for chunk in new_threads.chunks(PAGE as usize) {
        store.load(Rows::Threads(chunk.to_vec())).await?;
    }
    for chunk in new_members.chunks(PAGE as usize) {
        store.load(Rows::Members(chunk.to_vec())).await?;
    }
    for chunk in new_messages.chunks(PAGE as usize) {
        store.load(Rows::Messages(chunk.to_vec())).await?;
    }
    store.recount().await?;
    store.finish_load().await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_when_free_and_fresh_otherwise() {
        let mut taken = BTreeSet::from([1, 2, 5]);
        assert_eq!(claim_id(&mut taken, 3), 3);
        assert_eq!(claim_id(&mut taken, 2), 6);
        assert_eq!(claim_id(&mut taken, 0), 7);
        assert_eq!(claim_id(&mut BTreeSet::new(), 9), 9);
    }
}
