//! One simulated user of scenario B (see `users.rs` for the mix and the think time): its
//! socket, whose reader task matches the markers of messages meant for it and remembers the
//! last `seq` (a reconnect resumes from it, so nothing is missed), and its actions, each timed
//! through the shared [`Shared::request`].

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use hyper::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{Socket, ws_connect},
    data::{Random, client_id, sentence, username},
    endpoints::LATEST_PAGE,
    tracking::{Pending, Phase, Shared},
};

/// A user's open socket: the writing half here, the reading half in its own task.
struct Live {
    sink: SplitSink<Socket, Message>,
    reader: tokio::task::JoinHandle<()>,
    last_seq: Arc<AtomicI64>,
}

impl Live {
    async fn open(shared: &Arc<Shared>, me: i64, since: Option<i64>) -> Option<Live> {
        let started = Instant::now();
        let opened = ws_connect(&shared.ws_base, &shared.tokens[me as usize - 1], since).await;
        shared.record(
            "ws connect",
            started.elapsed(),
            opened.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let (socket, seq) = opened.ok()?;
        let last_seq = Arc::new(AtomicI64::new(since.unwrap_or(seq)));
        let (sink, stream) = socket.split();
        shared.connected[me as usize - 1].store(true, Ordering::SeqCst);
        let reader = tokio::spawn(read(shared.clone(), me, stream, last_seq.clone()));
        Some(Live {
            sink,
            reader,
            last_seq,
        })
    }

    async fn close(mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
        if tokio::time::timeout(Duration::from_secs(5), &mut self.reader)
            .await
            .is_err()
        {
            self.reader.abort();
        }
    }
}

#[derive(serde::Deserialize)]
struct Seq {
    seq: Option<i64>,
}

async fn read(
    shared: Arc<Shared>,
    me: i64,
    mut stream: futures_util::stream::SplitStream<Socket>,
    last_seq: Arc<AtomicI64>,
) {
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        if let Some(marker) = marker_in(&text) {
            shared.delivered(marker, me);
        }
        if let Ok(Seq { seq: Some(seq) }) = serde_json::from_str::<Seq>(&text) {
            last_seq.fetch_max(seq, Ordering::SeqCst);
        }
    }
    shared.connected[me as usize - 1].store(false, Ordering::SeqCst);
}

fn marker_in(text: &str) -> Option<u64> {
    let start = text.find("[m:")? + 3;
    let digits = &text[start..];
    let end = digits.find(']')?;
    digits[..end].parse().ok()
}

fn think(random: &mut Random, mean: f64) -> Duration {
    let seconds = -mean * (1.0 - random.unit()).ln();
    Duration::from_secs_f64(seconds.clamp(mean / 20.0, mean * 3.0))
}

#[derive(Clone, Copy)]
enum Action {
    Open,
    Scroll,
    Post,
    Unread,
    New,
    Reconnect,
}

const MIX: [(Action, f64); 6] = [
    (Action::Open, 6.5),
    (Action::Scroll, 2.0),
    (Action::Post, 1.0),
    (Action::Unread, 1.0),
    (Action::New, 1.0),
    (Action::Reconnect, 0.14),
];

fn pick(random: &mut Random) -> Action {
    let total: f64 = MIX.iter().map(|(_, w)| w).sum();
    let mut x = random.unit() * total;
    for (action, weight) in MIX {
        if x < weight {
            return action;
        }
        x -= weight;
    }
    Action::Open
}

/// One simulated user, from its first socket to the end of the run.
pub async fn simulate(shared: Arc<Shared>, me: i64) {
    let mut random = Random::new(me as u64 + 0xB00);
    let token = shared.tokens[me as usize - 1].clone();
    let mut threads: Vec<(i64, i64)> = shared
        .data
        .threads_of(me)
        .iter()
        .map(|&t| (t as i64, shared.data.partner(t as i64, me)))
        .collect();
    let mut live = Live::open(&shared, me, None).await;
    // The open conversation and the oldest message shown in it.
    let mut open: Option<(i64, i64, Option<i64>)> = None;
    let mut phase = shared.phase.clone();
    loop {
        let wait = think(&mut random, shared.think_mean);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = phase.wait_for(|p| *p != Phase::Acting) => break,
        }
        if live.is_some() && !shared.connected[me as usize - 1].load(Ordering::SeqCst) {
            shared.record(
                "ws closed",
                Duration::ZERO,
                Err("the server closed a socket".into()),
            );
            let since = live.take().map(|l| l.last_seq.load(Ordering::SeqCst));
            live = Live::open(&shared, me, since).await;
        }
        let random_thread =
            |random: &mut Random| threads[random.below(threads.len() as u64) as usize];
        match pick(&mut random) {
            Action::Open if !threads.is_empty() => {
                let (thread, partner) = random_thread(&mut random);
                open = Some((
                    thread,
                    partner,
                    open_conversation(&shared, me, &token, thread).await,
                ));
            }
            Action::Scroll => match open {
                Some((thread, partner, Some(oldest))) => {
                    let path = format!("/thread/{thread}/message/?before={oldest}&limit=20");
                    let page = shared
                        .request("scroll back", Method::GET, &path, &token, None)
                        .await;
                    let older = page.ok().and_then(|p| p["results"][0]["id"].as_i64());
                    open = Some((thread, partner, older));
                }
                _ if !threads.is_empty() => {
                    let (thread, partner) = random_thread(&mut random);
                    open = Some((
                        thread,
                        partner,
                        open_conversation(&shared, me, &token, thread).await,
                    ));
                }
                _ => {}
            },
            Action::Post if open.is_some() || !threads.is_empty() => {
                let (thread, partner) =
                    open.map_or_else(|| random_thread(&mut random), |(t, p, _)| (t, p));
                if let Some(live) = live.as_mut() {
                    let typing = json!({"type": "typing", "thread": thread}).to_string();
                    let _ = live.sink.send(Message::text(typing)).await;
                }
                post(&shared, &token, thread, partner, &mut random).await;
            }
            Action::Unread => {
                let path = format!("/user/{me}/message/");
                let _ = shared
                    .request("unread count", Method::GET, &path, &token, None)
                    .await;
            }
            Action::New => {
                let other =
                    1 + (me as u64 + random.below(shared.data.users - 1)) % shared.data.users;
                let other = other as i64;
                let body = json!({"user1": username(me), "user2": username(other)}).to_string();
                let thread = shared
                    .request(
                        "create-or-get thread",
                        Method::POST,
                        "/chat/thread/",
                        &token,
                        Some(body),
                    )
                    .await;
                if let Some(thread) = thread.ok().and_then(|t| t["id"].as_i64()) {
                    if !threads.iter().any(|&(t, _)| t == thread) {
                        threads.push((thread, other));
                    }
                    open = Some((
                        thread,
                        other,
                        open_conversation(&shared, me, &token, thread).await,
                    ));
                }
            }
            Action::Reconnect => {
                let since = match live.take() {
                    Some(old) => {
                        shared.connected[me as usize - 1].store(false, Ordering::SeqCst);
                        let since = old.last_seq.load(Ordering::SeqCst);
                        old.close().await;
                        Some(since)
                    }
                    None => None,
                };
                live = Live::open(&shared, me, since).await;
            }
            _ => {}
        }
    }
    let _ = phase.wait_for(|p| *p == Phase::Close).await;
    if let Some(live) = live {
        live.close().await;
    }
}

/// The latest page of a thread, then its unread messages marked read; the oldest id shown.
async fn open_conversation(shared: &Shared, me: i64, token: &str, thread: i64) -> Option<i64> {
    let path = format!("/thread/{thread}/message/?{LATEST_PAGE}");
    let page = shared
        .request("latest page", Method::GET, &path, token, None)
        .await
        .ok()?;
    let results = page["results"].as_array()?;
    let unread: Vec<i64> = results
        .iter()
        .filter(|m| m["sender"].as_i64() != Some(me) && m["is_read"] == false)
        .filter_map(|m| m["id"].as_i64())
        .collect();
    if !unread.is_empty() {
        let body = json!({ "messages_ids": unread }).to_string();
        let _ = shared
            .request("mark read", Method::POST, "/message/", token, Some(body))
            .await;
    }
    results.first().and_then(|m| m["id"].as_i64())
}

/// Posts one message with a unique marker; tracks its delivery when the partner is here.
async fn post(shared: &Shared, token: &str, thread: i64, partner: i64, random: &mut Random) {
    let marker = shared.next_marker.fetch_add(1, Ordering::SeqCst);
    let text = format!("{} [m:{marker}]", sentence(random));
    let tracked = partner <= shared.connected.len() as i64
        && shared.connected[partner as usize - 1].load(Ordering::SeqCst);
    if tracked {
        let step = shared.step_now();
        shared.steps.lock().unwrap()[step].tracked += 1;
        let pending = Pending {
            recipient: partner,
            sent: Instant::now(),
            step,
            counted_late: false,
        };
        shared.pending.lock().unwrap().insert(marker, pending);
    }
    let body = json!({"messages": [{"text": text, "client_id": client_id(random)}]}).to_string();
    let path = format!("/thread/{thread}/message/");
    if shared
        .request("post", Method::POST, &path, token, Some(body))
        .await
        .is_err()
        && tracked
    {
        // Never stored: nothing to deliver (the error is counted already).
        if let Some(p) = shared.pending.lock().unwrap().remove(&marker) {
            shared.steps.lock().unwrap()[p.step].tracked -= 1;
        }
    }
}
