//! `GET /api/me/export/`: everything of the requester's, as a ZIP built while it is sent —
//! `user.json`, `threads.json`, `messages.json` (every message of their threads, with its
//! files listed) and `files/` with the files themselves. Memory stays flat however large the
//! history: the archive is written on a blocking thread, page by page and chunk by chunk, into
//! a small bounded channel that the response streams from, so a slow client slows the export,
//! not the server.

use std::{
    collections::BTreeMap,
    io::{self, Write},
};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use tokio::{runtime::Handle, sync::mpsc};
use zip::{CompressionMethod, ZipWriter, write::SimpleFileOptions};

use super::{error::Detail, extract::AuthUser};
use crate::{
    AppState,
    store::{MessageWindow, User},
};

/// Bytes gathered before they are handed to the response.
const PIECE: usize = 64 * 1024;
/// Pieces waiting to be sent (the archive pauses while they are full).
const PIECES_AHEAD: usize = 4;
/// Threads and messages read at a time.
const PAGE: i64 = 500;

/// A ZIP of everything of the requester's, streamed.
#[utoipa::path(get, path = "/api/me/export", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "A ZIP: user.json, threads.json, messages.json, files/",
         content_type = "application/zip"),
        (status = 401, body = Detail),
    ))]
pub async fn export(State(state): State<AppState>, AuthUser(user): AuthUser) -> Response {
    let (pieces, receiver) = mpsc::channel::<io::Result<Bytes>>(PIECES_AHEAD);
    let handle = Handle::current();
    let username = user.username.clone();
    tokio::task::spawn_blocking(move || {
        let out = Pieces {
            sender: pieces.clone(),
            buffer: Vec::with_capacity(PIECE),
        };
        if let Err(error) = write_archive(&state, &user, out, &handle) {
            tracing::warn!(%error, user = user.id, "an export stopped");
            let _ = pieces.blocking_send(Err(io::Error::other(error.to_string())));
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|piece| (piece, receiver))
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    let disposition = format!(
        "attachment; filename=\"simple-chat-{}.zip\"",
        ascii(&username)
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn ascii(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A `Write` that hands its bytes to the response in pieces.
struct Pieces {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl Pieces {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(PIECE),
        ));
        self.sender
            .blocking_send(Ok(piece))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for Pieces {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PIECE {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for Pieces {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// Writes `items` as one JSON array, each item as soon as it is read.
fn json_array_start(out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"[\n")
}

fn json_item(
    out: &mut impl Write,
    first: &mut bool,
    item: &impl serde::Serialize,
) -> anyhow::Result<()> {
    if !*first {
        out.write_all(b",\n")?;
    }
    *first = false;
    serde_json::to_writer(&mut *out, item)?;
    Ok(())
}

fn write_archive(
    state: &AppState,
    user: &User,
    out: Pieces,
    runtime: &Handle,
) -> anyhow::Result<()> {
    let store = &state.store;
    let mut zip = ZipWriter::new_stream(out);
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);

    zip.start_file("user.json", options)?;
    serde_json::to_writer_pretty(&mut zip, user)?;

    zip.start_file("threads.json", options)?;
    json_array_start(&mut zip)?;
    let mut threads = Vec::new();
    let mut first = true;
    loop {
        let page = runtime.block_on(store.threads_of(user.id, PAGE, threads.len() as i64))?;
        if page.items.is_empty() {
            break;
        }
        for thread in &page.items {
            json_item(&mut zip, &mut first, thread)?;
            threads.push(thread.id);
        }
    }
    zip.write_all(b"\n]\n")?;

    zip.start_file("messages.json", options)?;
    json_array_start(&mut zip)?;
    let mut files = BTreeMap::new();
    let mut first = true;
    for thread in threads {
        let mut after = 0;
        loop {
            let window = MessageWindow::After {
                id: after,
                limit: PAGE,
            };
            let (page, _) = runtime.block_on(store.messages(thread, window))?;
            let Some(last) = page.items.last() else { break };
            after = last.id;
            for message in &page.items {
                for file in &message.files.0 {
                    files.insert(file.id, file.name.clone());
                }
                json_item(&mut zip, &mut first, message)?;
            }
        }
    }
    zip.write_all(b"\n]\n")?;

    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    for (id, name) in files {
        zip.start_file(format!("files/{id}-{name}"), stored)?;
        let mut seq = 0;
        while let Some(chunk) = runtime.block_on(store.file_chunk(id, seq))? {
            zip.write_all(&chunk)?;
            seq += 1;
        }
    }
    zip.finish()?.flush()?;
    Ok(())
}
