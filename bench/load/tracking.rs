//! What the simulated users of scenario B share, and what is measured of them, step by step:
//! the HTTP client (its connections capped; waiting for one counts in a request's time), the
//! tokens, who is connected, the run's phase, each step's request tally, and the delivery of
//! marked messages: a post to a connected simulated user is `Pending` until that user's socket
//! reader sees its marker, and counts as late when that takes more than 2 s (or never
//! happens).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64},
    },
    time::{Duration, Instant},
};

use hyper::Method;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use crate::{
    data::DataSet,
    http::{ANY_2XX, Body, Http},
    stats::{Histogram, Tally},
};

pub const DELIVERY_LIMIT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq)]
pub enum Phase {
    Acting,
    Quiet,
    Close,
}

#[derive(Default)]
pub struct StepStats {
    pub tally: Tally,
    /// Latencies by kind of request, to tell which got slow.
    pub kinds: Vec<(&'static str, Histogram)>,
    pub tracked: u64,
    pub in_time: Histogram,
    pub late: u64,
}

pub struct Pending {
    pub recipient: i64,
    pub sent: Instant,
    pub step: usize,
    pub counted_late: bool,
}

pub struct Shared {
    pub http: Http,
    pub ws_base: String,
    pub data: Arc<DataSet>,
    pub tokens: Arc<Vec<String>>,
    pub started: Instant,
    pub step_len: Duration,
    pub think_mean: f64,
    pub steps: Mutex<Vec<StepStats>>,
    pub connected: Vec<AtomicBool>,
    pub pending: Mutex<HashMap<u64, Pending>>,
    pub next_marker: AtomicU64,
    pub connections: Semaphore,
    pub phase: watch::Receiver<Phase>,
}

impl Shared {
    pub fn step_now(&self) -> usize {
        let step = self.started.elapsed().as_secs_f64() / self.step_len.as_secs_f64();
        (step as usize).min(self.steps.lock().unwrap().len() - 1)
    }

    pub fn record(&self, kind: &'static str, elapsed: Duration, outcome: Result<(), String>) {
        let step = self.step_now();
        let mut steps = self.steps.lock().unwrap();
        let stats = &mut steps[step];
        stats.tally.record(elapsed, outcome);
        match stats.kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, histogram)) => histogram.record(elapsed),
            None => {
                let mut histogram = Histogram::default();
                histogram.record(elapsed);
                stats.kinds.push((kind, histogram));
            }
        }
    }

    pub async fn request(
        &self,
        kind: &'static str,
        method: Method,
        path: &str,
        token: &str,
        body: Body,
    ) -> Result<Value, String> {
        let started = Instant::now();
        let answer = {
            let _connection = self.connections.acquire().await.expect("open semaphore");
            self.http
                .json(method, path, Some(token), body, ANY_2XX)
                .await
        };
        self.record(
            kind,
            started.elapsed(),
            answer.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        answer
    }

    /// A frame with `marker` reached `me`'s socket.
    pub fn delivered(&self, marker: u64, me: i64) {
        let mut pending = self.pending.lock().unwrap();
        if pending.get(&marker).is_none_or(|p| p.recipient != me) {
            return;
        }
        let p = pending.remove(&marker).expect("checked above");
        drop(pending);
        let took = p.sent.elapsed();
        let mut steps = self.steps.lock().unwrap();
        // Counted late already when it was expired.
        if !p.counted_late {
            if took <= DELIVERY_LIMIT {
                steps[p.step].in_time.record(took);
            } else {
                steps[p.step].late += 1;
            }
        }
    }

    /// Counts the messages of `step` still undelivered after the limit as late.
    pub fn expire(&self, step: usize) {
        let mut late = 0;
        for p in self.pending.lock().unwrap().values_mut() {
            if p.step == step && !p.counted_late && p.sent.elapsed() > DELIVERY_LIMIT {
                p.counted_late = true;
                late += 1;
            }
        }
        self.steps.lock().unwrap()[step].late += late;
    }
}
