//! Files: uploads byte-exact, the size limit (also when the client lies about or omits
//! `Content-Length`), every permission case, the headers, `Range`, thumbnails, a decompression
//! bomb, expiry of unattached uploads, deletion with the last message, and moving them along.

use std::{io::Cursor, time::Duration};

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Conversation, TestApp, id, parts, spawn_app, spawn_app_with};

/// Bytes that are the same for a given length and look like nothing in particular.
pub fn noise(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7919) ^ (i >> 3)) as u8).collect()
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([20, 120, 220]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// CRC-32 (IEEE), as PNG chunks carry.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid PNG claiming `side` x `side` pixels, with the data of one pixel.
fn bomb(side: u32) -> Vec<u8> {
    let mut bomb = png(1, 1);
    bomb[16..20].copy_from_slice(&side.to_be_bytes());
    bomb[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    bomb
}

/// Uploads `bytes` as `name` with `content_type`; returns (status, body).
pub async fn upload(
    app: &TestApp,
    token: &str,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let part = Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(content_type)
        .unwrap();
    let form = Form::new().part("file", part);
    let response = app
        .request(reqwest::Method::POST, "/api/files/", Some(token))
        .multipart(form)
        .send()
        .await
        .unwrap();
    parts(response).await
}

/// Posts one message carrying `files` (and no text).
async fn attach(app: &TestApp, chat: &Conversation, token: &str, files: &[i64]) -> (u16, Value) {
    let path = format!("/thread/{}/message/", chat.thread_id);
    let body = json!({"messages": [{"files": files}]});
    parts(app.post_json(&path, Some(token), &body).await).await
}

async fn fetch(app: &TestApp, url: &str, token: Option<&str>) -> reqwest::Response {
    let path = url.trim_start_matches(&app.address);
    app.request(reqwest::Method::GET, path, token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_upload_comes_back_byte_exact_with_guarded_headers() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let bytes = noise(700_000);
    let (status, file) = upload(
        &app,
        &chat.alice,
        "report été.pdf",
        "application/pdf",
        bytes.clone(),
    )
    .await;
    assert_eq!(status, 201, "{file}");
    for key in [
        "id",
        "name",
        "content_type",
        "size",
        "url",
        "thumbnail_url",
        "created",
    ] {
        assert!(file.get(key).is_some(), "{key} in {file}");
    }
    assert_eq!(file["name"], "report été.pdf");
    assert_eq!(file["size"], 700_000);
    assert_eq!(file["thumbnail_url"], Value::Null);

    let response = fetch(&app, file["url"].as_str().unwrap(), Some(&chat.alice)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["content-length"], "700000");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert_eq!(headers["accept-ranges"], "bytes");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''report%20%C3%A9t%C3%A9.pdf"),
        "{disposition}"
    );
    assert_eq!(response.bytes().await.unwrap().to_vec(), bytes);

    // HTML is never served as a page: a download, sandboxed, never sniffed.
    let (_, page) = upload(
        &app,
        &chat.alice,
        "x.html",
        "text/html",
        b"<script>1</script>".to_vec(),
    )
    .await;
    let response = fetch(&app, page["url"].as_str().unwrap(), Some(&chat.alice)).await;
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(response.headers()["content-security-policy"], "sandbox");
}

#[tokio::test]
async fn ranges_give_exactly_the_bytes_asked_for() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let bytes = noise(600_000);
    let (_, file) = upload(
        &app,
        &chat.alice,
        "a.bin",
        "application/octet-stream",
        bytes.clone(),
    )
    .await;
    let path = file["url"].as_str().unwrap().to_owned();
    let ranged = |range: &'static str| {
        let app = &app;
        let path = path.clone();
        let token = chat.alice.clone();
        async move {
            app.request(reqwest::Method::GET, &path, Some(&token))
                .header("range", range)
                .send()
                .await
                .unwrap()
        }
    };
    // Across the 256 KiB chunk boundary.
    let response = ranged("bytes=262000-262999").await;
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.headers()["content-range"],
        "bytes 262000-262999/600000"
    );
    assert_eq!(response.headers()["content-length"], "1000");
    assert_eq!(
        response.bytes().await.unwrap().to_vec(),
        bytes[262_000..263_000]
    );
    let suffix = ranged("bytes=-50").await;
    assert_eq!(suffix.status(), 206);
    assert_eq!(suffix.bytes().await.unwrap().to_vec(), bytes[599_950..]);
    let past = ranged("bytes=700000-").await;
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"], "bytes */600000");
}

#[tokio::test]
async fn an_upload_over_the_limit_is_413_and_leaves_nothing_even_without_content_length() {
    let app = spawn_app_with(|config| config.max_upload = 100_000).await;
    let chat = app.conversation().await;
    let (status, body) = upload(
        &app,
        &chat.alice,
        "big.bin",
        "application/octet-stream",
        noise(150_000),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = upload(
        &app,
        &chat.alice,
        "ok.bin",
        "application/octet-stream",
        noise(90_000),
    )
    .await;
    assert_eq!(status, 201);

    // A chunked body with no Content-Length at all, far over the limit.
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let boundary = "XyZ";
    let head = format!(
        "POST /api/files/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        chat.alice
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut send_chunk = async |data: &[u8]| {
        let framed = [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat();
        socket.write_all(&framed).await
    };
    let preamble = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"lie.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    send_chunk(preamble.as_bytes()).await.unwrap();
    for _ in 0..40 {
        if send_chunk(&noise(8_192)).await.is_err() {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Only the file within the limit was kept.
    let store = app.app().store();
    assert_eq!(
        store
            .count_rows(simple_chat::store::transfer::Table::Files)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn only_the_uploader_the_threads_people_and_staff_fetch_a_file() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let (_, staff) = app.login_new_staff("stella").await;
    let (_, file) = upload(
        &app,
        &chat.alice,
        "notes.txt",
        "text/plain",
        b"hello".to_vec(),
    )
    .await;
    let url = file["url"].as_str().unwrap().to_owned();
    let status = |token: Option<String>| {
        let app = &app;
        let url = url.clone();
        async move { fetch(app, &url, token.as_deref()).await.status().as_u16() }
    };
    assert_eq!(status(Some(chat.alice.clone())).await, 200);
    assert_eq!(
        status(Some(chat.bob.clone())).await,
        404,
        "not attached yet"
    );
    assert_eq!(status(None).await, 401);

    // Bob cannot attach Alice's upload; Alice can, without text.
    let (code, body) = attach(&app, &chat, &chat.bob, &[id(&file)]).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["messages"][0]["files"].is_array(), "{body}");
    let (code, posted) = attach(&app, &chat, &chat.alice, &[id(&file)]).await;
    assert_eq!(code, 201, "{posted}");
    assert_eq!(posted[0]["text"], "");
    assert_eq!(posted[0]["files"][0], file);

    assert_eq!(status(Some(chat.bob.clone())).await, 200);
    assert_eq!(status(Some(carol.clone())).await, 404);
    assert_eq!(status(Some(staff)).await, 200);
    // A link that cannot carry a header carries the token instead.
    let linked = fetch(&app, &format!("{url}?token={}", chat.bob), None).await;
    assert_eq!(linked.status(), 200);
    assert_eq!(
        fetch(&app, &format!("{url}?token={carol}"), None)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn at_most_ten_files_per_message_and_text_or_files_is_required() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let mut ids = Vec::new();
    for i in 0..11 {
        let (_, file) = upload(
            &app,
            &chat.alice,
            &format!("{i}.txt"),
            "text/plain",
            vec![b'x'; 10],
        )
        .await;
        ids.push(id(&file));
    }
    let (status, _) = attach(&app, &chat, &chat.alice, &ids).await;
    assert_eq!(status, 400);
    let (status, _) = attach(&app, &chat, &chat.alice, &ids[..10]).await;
    assert_eq!(status, 201);
    let path = format!("/thread/{}/message/", chat.thread_id);
    let empty = json!({"messages": [{"text": "  "}]});
    assert_eq!(
        parts(app.post_json(&path, Some(&chat.alice), &empty).await)
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn images_get_a_thumbnail_of_at_most_400_pixels_and_bombs_none() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (status, file) = upload(&app, &chat.alice, "wide.png", "image/png", png(1600, 900)).await;
    assert_eq!(status, 201);
    let response = fetch(&app, file["url"].as_str().unwrap(), Some(&chat.alice)).await;
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    let thumbnail = fetch(
        &app,
        file["thumbnail_url"].as_str().unwrap(),
        Some(&chat.alice),
    )
    .await;
    assert_eq!(thumbnail.status(), 200);
    assert_eq!(thumbnail.headers()["content-type"], "image/jpeg");
    let decoded = image::load_from_memory(&thumbnail.bytes().await.unwrap()).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (400, 225));

    // A 1 KB PNG claiming 50,000 x 50,000 pixels: stored, never decoded, no thumbnail.
    let bomb = bomb(50_000);
    assert!(bomb.len() < 1024);
    let (status, file) = upload(&app, &chat.alice, "bomb.png", "image/png", bomb).await;
    assert_eq!(status, 201, "{file}");
    assert_eq!(file["thumbnail_url"], Value::Null);
    assert_eq!(parts(app.get("/healthz", None).await).await.0, 200);
}

#[tokio::test]
async fn unattached_uploads_expire_and_attached_ones_stay() {
    let app = spawn_app_with(|config| config.unattached_files_ttl = Duration::ZERO).await;
    let chat = app.conversation().await;
    let (_, loose) = upload(&app, &chat.alice, "loose.txt", "text/plain", b"1".to_vec()).await;
    let (_, kept) = upload(&app, &chat.alice, "kept.txt", "text/plain", b"2".to_vec()).await;
    attach(&app, &chat, &chat.alice, &[id(&kept)]).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(app.app().expire_uploads_now().await.unwrap(), 1);
    assert_eq!(
        fetch(&app, loose["url"].as_str().unwrap(), Some(&chat.alice))
            .await
            .status(),
        404
    );
    assert_eq!(
        fetch(&app, kept["url"].as_str().unwrap(), Some(&chat.alice))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_file_goes_with_the_last_message_or_thread_that_uses_it() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (_, file) = upload(
        &app,
        &chat.alice,
        "shared.txt",
        "text/plain",
        b"shared".to_vec(),
    )
    .await;
    let (_, first) = attach(&app, &chat, &chat.alice, &[id(&file)]).await;
    let (_, second) = attach(&app, &chat, &chat.alice, &[id(&file)]).await;
    let url = file["url"].as_str().unwrap().to_owned();
    let delete = |message: i64| {
        let app = &app;
        let token = chat.alice.clone();
        async move {
            app.delete(&format!("/api/messages/{message}/"), Some(&token))
                .await
                .status()
        }
    };
    assert_eq!(delete(id(&first[0])).await, 204);
    assert_eq!(
        fetch(&app, &url, Some(&chat.alice)).await.status(),
        200,
        "still used"
    );
    assert_eq!(delete(id(&second[0])).await, 204);
    assert_eq!(
        fetch(&app, &url, Some(&chat.alice)).await.status(),
        404,
        "gone with the last"
    );

    let (_, other) = upload(&app, &chat.alice, "t.txt", "text/plain", b"t".to_vec()).await;
    attach(&app, &chat, &chat.alice, &[id(&other)]).await;
    app.delete(
        &format!("/chat/thread/{}/", chat.thread_id),
        Some(&chat.alice),
    )
    .await;
    assert_eq!(
        fetch(&app, other["url"].as_str().unwrap(), Some(&chat.alice))
            .await
            .status(),
        404
    );
}
