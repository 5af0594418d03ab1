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
    progress::Progress,
    store::{
        Message, Store, User,
        transfer::{Record, Rows, Table, Value},
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
        let total = from.count_rows(table).await?;
        let mut progress = Progress::new(&format!("copy {}", table.name()), total as u64);
        let mut after = None;
        let mut count = 0;
        loop {
            let rows = from.dump(table, after, table.page_size()).await?;
            let Some(last) = rows.last_key() else { break };
            after = Some(last);
            count += rows.len();
            progress.add(rows.len() as u64);
            to.load(rows).await?;
        }
        progress.finish();
        copied.push((table, count));
    }
    to.finish_load().await?;
    for &(table, count) in &copied {
        let mut progress = Progress::new(&format!("verify {}", table.name()), count as u64);
        let mut after: Option<Vec<Value>> = None;
        loop {
            let source = from.dump(table, after.clone(), table.page_size()).await?;
            let target = to.dump(table, after.clone(), table.page_size()).await?;
            if source != target {
                bail!(
                    "verification failed: the {} rows after {after:?} differ",
                    table.name()
                );
            }
            let Some(last) = source.last_key() else { break };
            progress.add(source.len() as u64);
            after = Some(last);
        }
        progress.finish();
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
async fn dump_all(store: &Store, table: Table) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut after = None;
    loop {
        let rows = store.dump(table, after, PAGE).await?;
        let Some(last) = rows.last_key() else { break };
        after = Some(last);
        records.extend(rows.records);
    }
    Ok(records)
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
    for row in dump_all(store, Table::Users).await? {
        let id = row.int(Table::Users, "id");
        let username = row.text(Table::Users, "username").to_owned();
        user_ids.insert(id);
        usernames.insert(id, username.clone());
        by_username.insert(username, id);
    }
    let mut thread_ids = BTreeSet::new();
    let mut by_pair = HashMap::new();
    for row in dump_all(store, Table::Threads).await? {
        let id = row.int(Table::Threads, "id");
        let pair = (
            row.int(Table::Threads, "user_low"),
            row.int(Table::Threads, "user_high"),
        );
        thread_ids.insert(id);
        by_pair.insert(pair, id);
    }
    let mut message_ids = BTreeSet::new();
    let mut known_messages = HashSet::new();
    for row in dump_all(store, Table::Messages).await? {
        let t = Table::Messages;
        message_ids.insert(row.int(t, "id"));
        known_messages.insert((
            row.int(t, "thread_id"),
            row.int(t, "sender_id"),
            Timestamp(row.int(t, "created")),
            row.text(t, "text").to_owned(),
        ));
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
        new_users.push(Record::user(&user, 0));
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
        new_threads.push(Record::thread(thread_id, (low, high), created, updated));
        for user_id in [low, high] {
            new_members.push(Record::member(user_id, thread_id));
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
        let id = claim_id(&mut message_ids, m.id);
        let message = Message::imported(id, (thread, sender), text, created, m.is_read);
        new_messages.push(Record::message(&message));
    }
    report.messages = new_messages.len();
    for (thread, count) in skipped_by_thread {
        report
            .problems
            .push(format!("{count} message(s) of thread {thread}"));
    }

    for (table, records) in [
        (Table::Users, new_users),
        (Table::Threads, new_threads),
        (Table::Members, new_members),
        (Table::Messages, new_messages),
    ] {
        let mut progress = Progress::new(&format!("import {}", table.name()), records.len() as u64);
        for chunk in records.chunks(PAGE as usize) {
            let rows = Rows {
                table,
                records: chunk.to_vec(),
            };
            store.load(rows).await?;
            progress.add(chunk.len() as u64);
        }
        progress.finish();
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
