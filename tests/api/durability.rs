//! Acknowledged means durable: clients post to a `serve` process that is killed with SIGKILL
//! in the middle of the load; a new process on the same database finds every message that was
//! answered 201 (and on SQLite the file passes `PRAGMA integrity_check`).

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::json;

use crate::helpers::{parts, results, serve_process, spawn_app};

fn serve_command(database_url: &str) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_simple-chat"));
    command.env("DATABASE_URL", database_url);
    command.env("SIMPLE_CHAT_POST_RATE", "1000000");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_a_kill_9() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (mut server, address) = serve_process(serve_command(&app.database_url)).await;
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let client = reqwest::Client::new();
    let posters: Vec<_> = (0..4)
        .map(|poster| {
            let client = client.clone();
            let url = format!("{address}/thread/{}/message/", chat.thread_id);
            let token = if poster % 2 == 0 {
                chat.alice.clone()
            } else {
                chat.bob.clone()
            };
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                for n in 0.. {
                    let text = format!("poster {poster} message {n}");
                    let body = json!({"messages": [{"text": text, "client_id": text}]});
                    let Ok(response) = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                    else {
                        return; // the server is gone
                    };
                    if response.status() == 201 {
                        acknowledged.lock().unwrap().insert(text);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    for poster in posters {
        let _ = tokio::time::timeout(Duration::from_secs(10), poster).await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "only {} posts before the kill",
        acknowledged.len()
    );

    let (_server, address) = serve_process(serve_command(&app.database_url)).await;
    let mut stored = BTreeSet::new();
    let mut next = Some(format!(
        "{address}/thread/{}/message/?limit=200",
        chat.thread_id
    ));
    while let Some(url) = next {
        let response = client
            .get(&url)
            .bearer_auth(&chat.alice)
            .send()
            .await
            .unwrap();
        let (status, page) = parts(response).await;
        assert_eq!(status, 200, "{page}");
        for message in results(&page) {
            stored.insert(message["text"].as_str().unwrap().to_owned());
        }
        next = page["next"].as_str().map(str::to_owned);
    }
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages were lost: {lost:?}",
        lost.len()
    );

    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
}
