//! "Export my data": a ZIP of the requester's account, threads, messages and files, read back
//! with a real ZIP reader.

use std::io::{Cursor, Read};

use serde_json::{Value, json};

use crate::{
    files::{noise, upload},
    helpers::{id, parts, spawn_app},
};

#[tokio::test]
async fn the_export_holds_the_account_threads_messages_and_files_of_the_requester_only() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let other = app.create_thread(&carol, "carol", "bob").await;
    app.post_messages(&carol, id(&other), &["not for alice"])
        .await;
    app.post_messages(&chat.alice, chat.thread_id, &["hello", "how are you?"])
        .await;
    let bytes = noise(300_000);
    let (_, file) = upload(
        &app,
        &chat.bob,
        "photo.raw",
        "application/octet-stream",
        bytes.clone(),
    )
    .await;
    let path = format!("/thread/{}/message/", chat.thread_id);
    let body = json!({"messages": [{"text": "look", "files": [id(&file)]}]});
    assert_eq!(
        parts(app.post_json(&path, Some(&chat.bob), &body).await)
            .await
            .0,
        201
    );

    let response = app.get("/api/me/export/", Some(&chat.alice)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let archive = response.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(Cursor::new(archive.to_vec())).expect("a ZIP");
    let mut read = |name: &str| {
        let mut text = Vec::new();
        zip.by_name(name)
            .unwrap_or_else(|_| panic!("{name} in the export"))
            .read_to_end(&mut text)
            .unwrap();
        text
    };
    let user: Value = serde_json::from_slice(&read("user.json")).unwrap();
    assert_eq!(user["username"], "alice");
    assert!(user.get("password").is_none());
    let threads: Value = serde_json::from_slice(&read("threads.json")).unwrap();
    assert_eq!(threads.as_array().unwrap().len(), 1);
    assert_eq!(threads[0]["id"], chat.thread_id);
    let messages: Value = serde_json::from_slice(&read("messages.json")).unwrap();
    let texts: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hello", "how are you?", "look"]);
    assert_eq!(messages[2]["files"][0]["id"], file["id"]);
    let copy = read(&format!("files/{}-photo.raw", id(&file)));
    assert_eq!(copy, bytes);
}
