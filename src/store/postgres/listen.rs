//! How PostgreSQL instances learn of each other's commits: `NOTIFY simple_chat` inside each
//! writing transaction, and one dedicated `LISTEN` connection per instance that tells the
//! local commit hook.
//!
//! A note is `{"e": [user ids whose logs grew], "s": [user ids signed out], "u": [user ids whose
//! rows changed]}` with at most
//! [`IDS_PER_NOTE`] ids, so a transaction that touches thousands of users (deleting a user
//! with thousands of threads) sends several notes instead of one PostgreSQL would refuse.
//! Ephemeral frames (typing, presence) travel the same way as `{"x": frame, "to": [ids]}`.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use serde_json::{Value, json};
use tokio_postgres::NoTls;

use super::{CHANNEL, CommitHook, IDS_PER_NOTE};
use crate::store::{Commit, Ephemeral, user_cache::UserCache};

/// The notes that tell other instances about `commit`, each small enough for `NOTIFY`.
pub fn notes(commit: &Commit) -> Vec<String> {
    let mut notes = Vec::new();
    for events in commit.events_for.chunks(IDS_PER_NOTE) {
        notes.push(json!({"e": events, "s": []}).to_string());
    }
    for signed_out in commit.signed_out.chunks(IDS_PER_NOTE) {
        notes.push(json!({"e": [], "s": signed_out}).to_string());
    }
    for changed in commit.users_changed.chunks(IDS_PER_NOTE) {
        notes.push(json!({"e": [], "s": [], "u": changed}).to_string());
    }
    notes
}

/// The notes that carry an ephemeral frame to the sockets of its users on every instance.
pub fn ephemeral_notes(ephemeral: &Ephemeral) -> Vec<String> {
    ephemeral
        .to
        .chunks(IDS_PER_NOTE)
        .map(|to| json!({"x": &*ephemeral.frame, "to": to}).to_string())
        .collect()
}

pub fn parse_note(text: &str) -> Option<Commit> {
    let note: Value = serde_json::from_str(text).ok()?;
    if let Some(frame) = note.get("x").and_then(Value::as_str) {
        let to = note
            .get("to")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        return Some(Commit {
            frames: vec![Ephemeral {
                frame: frame.into(),
                to,
            }],
            ..Commit::default()
        });
    }
    let ids = |key: &str| -> Vec<i64> {
        note.get(key)
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    Some(Commit {
        events_for: ids("e"),
        signed_out: ids("s"),
        users_changed: ids("u"),
        ..Commit::default()
    })
}

pub async fn listen_loop(
    config: tokio_postgres::Config,
    hook: Arc<OnceLock<CommitHook>>,
    users: Arc<UserCache>,
) {
    use futures_util::StreamExt;
    let mut delay = Duration::from_millis(200);
    let mut first = true;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let listening = async { client.batch_execute(&format!("LISTEN {CHANNEL}")).await };
                // The connection must be driven while LISTEN runs.
                let mut listen = std::pin::pin!(listening);
                let ready = loop {
                    tokio::select! {
                        result = &mut listen => break result.is_ok(),
                        message = messages.next() => if message.is_none() { break false },
                    }
                };
                if ready {
                    if first {
                        tracing::info!("listening for other instances' commits");
                    } else {
                        tracing::warn!("re-established the notification connection");
                        // Anything may have been missed meanwhile: wake every connection.
                        let everything = Commit {
                            everyone: true,
                            ..Commit::default()
                        };
                        users.apply(&everything);
                        if let Some(hook) = hook.get() {
                            hook(&everything);
                        }
                    }
                    first = false;
                    delay = Duration::from_millis(200);
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                                if let Some(commit) = parse_note(note.payload()) {
                                    users.apply(&commit);
                                    if let Some(hook) = hook.get() {
                                        hook(&commit);
                                    }
                                }
                            }
                            Ok(_) => {}
                            Err(error) => {
                                tracing::warn!(%error, "notification connection failed");
                                break;
                            }
                        }
                    }
                }
                tracing::warn!("lost the notification connection; reconnecting");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot open the notification connection; retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_stay_under_postgres_payload_limit() {
        let commit = Commit {
            events_for: (i64::MAX - 5_000..i64::MAX).collect(),
            signed_out: vec![1],
            ..Commit::default()
        };
        let notes = notes(&commit);
        assert_eq!(notes.len(), 5_000_usize.div_ceil(IDS_PER_NOTE) + 1);
        let mut seen = Vec::new();
        for note in &notes {
            assert!(note.len() < 8_000, "{} bytes", note.len());
            let parsed = parse_note(note).unwrap();
            seen.extend(parsed.events_for);
        }
        assert_eq!(seen, commit.events_for);
    }

    #[test]
    fn ephemeral_frames_travel_whole_to_every_listed_user() {
        let ephemeral = Ephemeral {
            frame: r#"{"type":"typing","thread":1,"user":2}"#.into(),
            to: (1..=1_000).collect(),
        };
        let notes = ephemeral_notes(&ephemeral);
        let mut to = Vec::new();
        for note in &notes {
            assert!(note.len() < 8_000);
            let commit = parse_note(note).unwrap();
            assert_eq!(commit.frames[0].frame, ephemeral.frame);
            to.extend(commit.frames[0].to.clone());
        }
        assert_eq!(to, ephemeral.to);
    }
}
