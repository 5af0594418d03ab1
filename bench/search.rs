//! Search speed at scale: `cargo bench --bench search` loads 1,000,000 messages spread over
//! 10,000 users (about ten partners each, words drawn from a 5,000-word vocabulary with a few
//! very common ones) straight into a fresh SQLite database through the store's bulk load, then
//! times searches of random users for one or two words (common, rare, and a prefix) and prints
//! p50/p99 per kind. `SEARCH_DATABASE_URL=postgres://...` runs it on an empty PostgreSQL
//! database instead; `SEARCH_MESSAGES` and `SEARCH_USERS` change the size.

use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "made_up.rs"]
mod made_up;

use made_up::{Random, word};

use simple_chat::{
    clock::Timestamp,
    store::{
        Message, Store, User,
        search::words,
        transfer::{Record, Rows, Table},
    },
};

async fn load(store: &Store, table: Table, records: Vec<Record>) {
    for chunk in records.chunks(1_000) {
        store
            .load(Rows {
                table,
                records: chunk.to_vec(),
            })
            .await
            .expect("load rows");
    }
}

/// Makes one search query of a kind.
type MakeQuery = fn(&mut Random) -> String;

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let messages: u64 = std::env::var("SEARCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let users: u64 = std::env::var("SEARCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = std::env::var("SEARCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("search.sqlite3").display()));
    let (store, _) = Store::open(&url).await.expect("open the database");
    let started = Instant::now();
    let now = Timestamp::now().micros();

    let user_rows: Vec<Record> = (1..=users as i64)
        .map(|id| {
            let user = User {
                id,
                username: format!("user{id}"),
                email: String::new(),
                first_name: String::new(),
                last_name: String::new(),
                password: "unused".into(),
                is_active: true,
                is_staff: false,
                is_superuser: false,
                date_joined: Timestamp(now),
                last_login: None,
                token_version: 0,
            };
            Record::user(&user, 0)
        })
        .collect();
    load(&store, Table::Users, user_rows).await;

    // Each user talks with the next five (by id, wrapping): about ten partners each.
    let mut threads = Vec::new();
    let mut members = Vec::new();
    for low in 1..=users as i64 {
        for step in 1..=5 {
            let high = (low - 1 + step) % users as i64 + 1;
            let pair = (low.min(high), low.max(high));
            let id = threads.len() as i64 + 1;
            threads.push(Record::thread(id, pair, now, now));
            members.push(Record::member(pair.0, id));
            members.push(Record::member(pair.1, id));
        }
    }
    let thread_pairs: Vec<(i64, i64)> = threads
        .iter()
        .map(|t| {
            (
                t.int(Table::Threads, "user_low"),
                t.int(Table::Threads, "user_high"),
            )
        })
        .collect();
    load(&store, Table::Threads, threads).await;
    load(&store, Table::Members, members).await;

    let mut random = Random(0x5EED);
    let mut batch = Vec::with_capacity(10_000);
    for id in 1..=messages as i64 {
        let thread = random.below(thread_pairs.len() as u64) as usize;
        let (low, high) = thread_pairs[thread];
        let sender = if random.below(2) == 0 { low } else { high };
        let length = 4 + random.below(12);
        let text: Vec<String> = (0..length).map(|_| word(random.zipf(5_000))).collect();
        let message = Message::imported(
            id,
            (thread as i64 + 1, sender),
            text.join(" "),
            Timestamp(now + id),
            true,
        );
        batch.push(Record::message(&message));
        if batch.len() == 10_000 {
            load(&store, Table::Messages, std::mem::take(&mut batch)).await;
            if id % 100_000 == 0 {
                eprintln!("loaded {id} messages ({:.0?})", started.elapsed());
            }
        }
    }
    load(&store, Table::Messages, batch).await;
    store.finish_load().await.expect("finish the load");
    println!(
        "{messages} messages, {users} users, {} threads loaded in {:.1?}",
        thread_pairs.len(),
        started.elapsed()
    );

    let kinds: [(&str, MakeQuery); 4] = [
        ("common word", |r| word(r.below(3))),
        ("rare word", |r| word(1_000 + r.below(4_000))),
        ("two words", |r| {
            format!("{} {}", word(r.below(50)), word(r.below(500)))
        }),
        ("prefix", |r| word(r.below(200))[..4].to_owned()),
    ];
    println!(
        "{:<12} {:>8} {:>10} {:>10} {:>12}",
        "query", "searches", "p50", "p99", "mean hits"
    );
    for (name, make) in kinds {
        let mut times = Vec::new();
        let mut hits = 0;
        for _ in 0..500 {
            let user = 1 + random.below(users) as i64;
            let query = make(&mut random);
            let started = Instant::now();
            let page = store
                .search_messages(user, words(&query), None, 50, 0)
                .await
                .expect("search");
            times.push(started.elapsed());
            hits += page.count;
        }
        times.sort();
        println!(
            "{name:<12} {:>8} {:>10.2?} {:>10.2?} {:>12.1}",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            hits as f64 / times.len() as f64
        );
    }
}
