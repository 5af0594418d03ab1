//! The data sets, made up deterministically (`bench/made_up.rs`) and bulk-loaded
//! straight into a fresh database through the store's `load` (not through the API), then
//! `recount` (counters, last messages, unread) and `finish_load` (search index, sequences).
//!
//! - Users `user1..userN`, all with one password whose argon2id hash is computed once.
//! - Each user starts threads with `partners` others: half its next neighbours by id, half at
//!   random, so everyone takes part in about twice that many threads.
//! - Messages of 4–15 words from a 5,000-word vocabulary (Zipf-like: a few very common words),
//!   spread uniformly over the threads, sender at random; the newest 2 % are unread.
//! - With a [`Probe`] (the scale scenario) users `1..=P` only talk among themselves and their
//!   threads get exactly the probe messages, the same texts in the same order whatever the
//!   total; every other message goes to the other users' threads. Two data sets that differ
//!   only in their total then answer the probe users' queries with the same results, so any
//!   difference in time comes from the size of the database.

use std::{collections::HashSet, time::Instant};

pub use crate::made_up::{Random, word};

use simple_chat::{
    clock::Timestamp,
    store::{
        Message, Store, User,
        transfer::{Record, Rows, Table},
    },
};

/// Every loaded user's password.
pub const PASSWORD: &str = "load-test-password-1";
/// Rows per load transaction.
const CHUNK: usize = 5_000;

/// A message text of 4–15 words.
pub fn sentence(random: &mut Random) -> String {
    let length = 4 + random.below(12);
    let words: Vec<String> = (0..length).map(|_| word(random.zipf(5_000))).collect();
    words.join(" ")
}

/// A message's `client_id`, random as the web client makes them (it sends one with every
/// message, so that a retried post is stored once).
pub fn client_id(random: &mut Random) -> String {
    format!("{:016x}{:016x}", random.next(), random.next())
}

pub fn username(id: i64) -> String {
    format!("user{id}")
}

/// Users `1..=users` whose threads get exactly `messages` messages (see the module doc).
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub users: u64,
    pub messages: u64,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub users: u64,
    pub partners: u64,
    pub messages: u64,
    pub probe: Option<Probe>,
    /// Keep each thread's message ids (scenario A marks real ones read).
    pub keep_messages: bool,
}

/// What was loaded, for picking realistic users, threads and message ids.
pub struct DataSet {
    pub users: u64,
    /// Thread `id` is `threads[id - 1]`: (lower user id, higher user id).
    pub threads: Vec<(i64, i64)>,
    user_offsets: Vec<u32>,
    user_threads: Vec<u32>,
    message_offsets: Vec<u32>,
    /// Message ids by thread, oldest first; the top bit says the higher user sent it.
    thread_messages: Vec<u32>,
}

const SENT_BY_HIGH: u32 = 1 << 31;

impl DataSet {
    /// The ids of the threads `user` takes part in.
    pub fn threads_of(&self, user: i64) -> &[u32] {
        let i = user as usize - 1;
        &self.user_threads[self.user_offsets[i] as usize..self.user_offsets[i + 1] as usize]
    }

    pub fn partner(&self, thread: i64, user: i64) -> i64 {
        let (low, high) = self.threads[thread as usize - 1];
        if user == low { high } else { low }
    }

    /// Up to `n` of the newest messages of `thread` that `user` received.
    pub fn received(&self, thread: i64, user: i64, n: usize) -> Vec<i64> {
        let Some(window) = self
            .message_offsets
            .get(thread as usize - 1..=thread as usize)
        else {
            return Vec::new();
        };
        let by_high = user == self.threads[thread as usize - 1].1;
        self.thread_messages[window[0] as usize..window[1] as usize]
            .iter()
            .rev()
            .filter(|m| (*m & SENT_BY_HIGH != 0) != by_high)
            .take(n)
            .map(|m| (m & !SENT_BY_HIGH) as i64)
            .collect()
    }
}

/// Thread pairs among users `first..first + count`: neighbours, then random partners.
fn pairs_among(
    first: i64,
    count: i64,
    partners: u64,
    random: &mut Random,
    out: &mut Vec<(i64, i64)>,
) {
    if count < 2 {
        return;
    }
    let mut seen = HashSet::new();
    let neighbours = partners.div_ceil(2) as i64;
    for user in first..first + count {
        for k in 0..partners as i64 {
            let offset = if k < neighbours {
                k + 1
            } else {
                1 + random.below(count as u64 - 1) as i64
            };
            let other = first + (user - first + offset) % count;
            let pair = (user.min(other), user.max(other));
            if other != user && seen.insert(pair) {
                out.push(pair);
            }
        }
    }
}

async fn load(store: &Store, table: Table, records: Vec<Record>) {
    for chunk in records.chunks(CHUNK) {
        let rows = Rows {
            table,
            records: chunk.to_vec(),
        };
        store.load(rows).await.expect("bulk-load rows");
    }
}

/// Which thread and stream the `index`-th message of a stream goes to.
struct Stream {
    random: Random,
    threads: std::ops::Range<u64>,
    total: u64,
    made: u64,
}

impl Stream {
    fn next(&mut self, id: i64, pairs: &[(i64, i64)], created: i64) -> Message {
        let span = self.threads.end - self.threads.start;
        let index = self.threads.start + self.random.below(span);
        let (low, high) = pairs[index as usize];
        let sender = if self.random.below(2) == 0 { low } else { high };
        let text = sentence(&mut self.random);
        let unread = self.made * 50 >= self.total * 49;
        self.made += 1;
        Message::imported(
            id,
            (index as i64 + 1, sender),
            text,
            Timestamp(created),
            !unread,
        )
    }
}

/// Creates the data set of `plan` in the (fresh, migrated) database of `store`.
pub async fn build(store: &Store, plan: &Plan, password_hash: &str, label: &str) -> DataSet {
    let started = Instant::now();
    let now = Timestamp::now().micros();
    let long_ago = now - 60 * 86_400_000_000;
    let users: Vec<Record> = (1..=plan.users as i64)
        .map(|id| {
            let user = User {
                id,
                username: username(id),
                email: String::new(),
                first_name: String::new(),
                last_name: String::new(),
                password: password_hash.to_owned(),
                is_active: true,
                is_staff: false,
                is_superuser: false,
                date_joined: Timestamp(long_ago),
                last_login: None,
                token_version: 0,
            };
            Record::user(&user, 0)
        })
        .collect();
    load(store, Table::Users, users).await;

    let probe_users = plan.probe.map_or(0, |p| p.users.min(plan.users)) as i64;
    let mut random = Random::new(7);
    let mut pairs = Vec::new();
    pairs_among(1, probe_users, plan.partners, &mut random, &mut pairs);
    let probe_threads = pairs.len() as u64;
    let rest = plan.users as i64 - probe_users;
    pairs_among(
        probe_users + 1,
        rest,
        plan.partners,
        &mut random,
        &mut pairs,
    );
    let threads: Vec<Record> = pairs
        .iter()
        .enumerate()
        .map(|(i, &pair)| Record::thread(i as i64 + 1, pair, long_ago, long_ago))
        .collect();
    let members: Vec<Record> = pairs
        .iter()
        .enumerate()
        .flat_map(|(i, &(low, high))| {
            let id = i as i64 + 1;
            [Record::member(low, id), Record::member(high, id)]
        })
        .collect();
    load(store, Table::Threads, threads).await;
    load(store, Table::Members, members).await;

    let probe_messages = plan.probe.map_or(0, |p| p.messages.min(plan.messages));
    let mut probe = Stream {
        random: Random::new(11),
        threads: 0..probe_threads,
        total: probe_messages,
        made: 0,
    };
    let mut background = Stream {
        random: Random::new(13),
        threads: if plan.probe.is_some() {
            probe_threads
        } else {
            0
        }..pairs.len() as u64,
        total: plan.messages - probe_messages,
        made: 0,
    };
    // Probe message j has id (j + 1) * total / probe_messages: spread over the whole range.
    let probe_id =
        |j: u64| ((j + 1) as u128 * plan.messages as u128 / probe_messages.max(1) as u128) as i64;
    let mut next_probe = 0;
    let spacing = (30 * 86_400_000_000 / plan.messages.max(1) as i64).clamp(1, 100_000);
    let mut thread_of: Vec<(u32, u32)> = Vec::new();
    let mut batch = Vec::with_capacity(CHUNK * 2);
    let mut pending: Option<tokio::task::JoinHandle<()>> = None;
    // A progress line about every tenth, at a batch boundary.
    let report_every = ((plan.messages / 10).max(100_000) as usize).div_ceil(CHUNK * 2) as u64
        * (CHUNK * 2) as u64;
    for id in 1..=plan.messages as i64 {
        let created = now - (plan.messages as i64 - id) * spacing;
        let message = if next_probe < probe_messages && probe_id(next_probe) == id {
            next_probe += 1;
            probe.next(id, &pairs, created)
        } else {
            background.next(id, &pairs, created)
        };
        if plan.keep_messages {
            let high = pairs[message.thread as usize - 1].1 == message.sender;
            let flag = if high { SENT_BY_HIGH } else { 0 };
            thread_of.push((message.thread as u32 - 1, id as u32 | flag));
        }
        batch.push(Record::message(&message));
        if batch.len() == CHUNK * 2 || id == plan.messages as i64 {
            // Load this batch while the next one is made.
            if let Some(previous) = pending.take() {
                previous.await.expect("load messages");
            }
            let rows = std::mem::take(&mut batch);
            let store = store.clone();
            pending = Some(tokio::spawn(async move {
                load(&store, Table::Messages, rows).await;
            }));
            if (id as u64).is_multiple_of(report_every) {
                let rate = id as f64 / started.elapsed().as_secs_f64();
                eprintln!(
                    "  [{label}] {id} of {} messages loaded ({:.0?}, {rate:.0}/s)",
                    plan.messages,
                    started.elapsed()
                );
            }
        }
    }
    if let Some(previous) = pending {
        previous.await.expect("load messages");
    }
    let loaded = started.elapsed();
    store.recount().await.expect("recount");
    let counted = started.elapsed();
    store.finish_load().await.expect("finish the load");
    eprintln!(
        "  [{label}] {} users, {} threads, {} messages: loaded {loaded:.1?}, counters {:.1?}, \
         search index {:.1?}",
        plan.users,
        pairs.len(),
        plan.messages,
        counted - loaded,
        started.elapsed() - counted
    );
    index(plan.users, pairs, thread_of)
}

/// The lookups of a data set: threads by user, message ids by thread.
fn index(users: u64, threads: Vec<(i64, i64)>, mut thread_of: Vec<(u32, u32)>) -> DataSet {
    let mut user_offsets = vec![0u32; users as usize + 1];
    for &(low, high) in &threads {
        user_offsets[low as usize] += 1;
        user_offsets[high as usize] += 1;
    }
    for i in 1..user_offsets.len() {
        user_offsets[i] += user_offsets[i - 1];
    }
    // user_offsets[u] is now the end of user u's range and user_offsets[u - 1] its start.
    let mut fill = user_offsets.clone();
    let mut user_threads = vec![0u32; *user_offsets.last().unwrap_or(&0) as usize];
    for (i, &(low, high)) in threads.iter().enumerate().rev() {
        for user in [low, high] {
            fill[user as usize] -= 1;
            user_threads[fill[user as usize] as usize] = i as u32 + 1;
        }
    }

    thread_of.sort_by_key(|&(thread, id)| (thread, id & !SENT_BY_HIGH));
    let mut message_offsets = vec![0u32; threads.len() + 1];
    for &(thread, _) in &thread_of {
        message_offsets[thread as usize + 1] += 1;
    }
    for i in 1..message_offsets.len() {
        message_offsets[i] += message_offsets[i - 1];
    }
    DataSet {
        users,
        threads,
        user_offsets,
        user_threads,
        message_offsets,
        thread_messages: thread_of.into_iter().map(|(_, id)| id).collect(),
    }
}
