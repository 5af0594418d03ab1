//! One HTTP/1.1 connection, watched: a client that starts a request and does not finish its
//! headers within the header timeout is cut off (slow loris), and a keep-alive connection with
//! no request for the idle timeout is closed. (hyper's own header timeout also runs while a
//! keep-alive connection waits between requests, which would make the two one; so the phases
//! are tracked here.)
//!
//! Three parts share an [`Activity`]: the socket wrapper ([`Watched`]) notices the first bytes of
//! a new request, the service wrapper notices the request reaching the router and its answer
//! being finished, and the watchdog sleeps until the current phase's deadline.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Body;
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
    time::Instant,
};

const IDLE: u8 = 0;
const READING_HEADERS: u8 = 1;
const BUSY: u8 = 2;

/// Where a connection is: between requests, reading a request's headers, or serving.
pub struct Activity {
    phase: AtomicU8,
    /// Milliseconds from `start` to when the phase began.
    since: AtomicU64,
    in_flight: AtomicUsize,
    start: Instant,
    changed: Notify,
}

/// Why the watchdog ended a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Expired {
    Idle,
    Headers,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            phase: AtomicU8::new(IDLE),
            since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            start: Instant::now(),
            changed: Notify::new(),
        })
    }

    fn enter(&self, phase: u8) {
        let now = self.start.elapsed().as_millis() as u64;
        self.since.store(now, Ordering::SeqCst);
        self.phase.store(phase, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// Bytes arrived: if the connection was between requests, a request has begun.
    fn bytes_arrived(&self) {
        if self
            .phase
            .compare_exchange(IDLE, READING_HEADERS, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            self.enter(READING_HEADERS);
        }
    }

    /// A request's headers are in and it reached the router.
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.enter(BUSY);
    }

    /// A request's answer was sent (or abandoned).
    fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.enter(IDLE);
        }
    }

    /// Resolves when the current phase outlives its limit.
    pub async fn watch(&self, header_timeout: Duration, idle_timeout: Duration) -> Expired {
        loop {
            let changed = self.changed.notified();
            let phase = self.phase.load(Ordering::SeqCst);
            let since = self.start + Duration::from_millis(self.since.load(Ordering::SeqCst));
            let (deadline, reason) = match phase {
                IDLE => (since + idle_timeout, Expired::Idle),
                READING_HEADERS => (since + header_timeout, Expired::Headers),
                _ => {
                    changed.await;
                    continue;
                }
            };
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    if self.phase.load(Ordering::SeqCst) == phase {
                        return reason;
                    }
                }
                () = changed => {}
            }
        }
    }
}

/// The socket, noticing when bytes arrive. It holds the connection's place among
/// `--max-connections` for as long as it lives, also after a WebSocket upgrade took it over.
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl<T> Watched<T> {
    pub fn new(
        inner: T,
        activity: Arc<Activity>,
        place: tokio::sync::OwnedSemaphorePermit,
    ) -> Watched<T> {
        Watched {
            inner,
            activity,
            _place: place,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Marks the request finished when the answer's body is done with (sent, or dropped).
struct Finished(Arc<Activity>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The answer's body, carrying the mark.
pub fn watch_body(body: Body, activity: Arc<Activity>) -> Body {
    let finished = Finished(activity);
    Body::new(body.map_frame(move |frame| {
        let _ = &finished;
        frame
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn phases_have_their_own_deadlines() {
        let activity = Activity::new();
        let idle = activity.watch(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(idle.await, Expired::Idle);

        let activity = Activity::new();
        activity.bytes_arrived();
        let headers = activity.watch(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(headers.await, Expired::Headers);

        let activity = Activity::new();
        activity.request_started();
        let busy = activity.watch(Duration::from_secs(1), Duration::from_secs(1));
        let waited = tokio::time::timeout(Duration::from_secs(3600), busy).await;
        assert!(waited.is_err(), "a busy connection never expires");
    }
}
