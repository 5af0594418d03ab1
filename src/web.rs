//! The web client at `/`: plain HTML, CSS and JavaScript modules from `web/`, embedded in the
//! binary at build time (see `build.rs`), so the client works on a LAN with no internet and
//! there is nothing to build or fetch at run time.
//!
//! Every file is served with a strong `ETag` (a hash of its bytes) and `Cache-Control: no-cache`,
//! so browsers revalidate cheaply (304) and never run a stale client after an upgrade. The pages
//! send a strict Content-Security-Policy: scripts, styles and connections only from this origin,
//! no inline script or style.
//!
//! For client development, `SIMPLE_CHAT_WEB_DIR=web` serves the files from disk instead, read
//! on each request (edit, reload; no rebuild).

use std::{collections::HashMap, path::PathBuf, sync::LazyLock};

use axum::{
    Router,
    extract::{Path, Request},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

mod files {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// Scripts, styles, images, workers and connections (HTTP and WebSocket) only from this origin;
/// images also from `blob:` (previews of files being attached).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
    worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// One embedded file with what its answer needs.
struct Asset {
    bytes: &'static [u8],
    etag: String,
    content_type: &'static str,
}

static ASSETS: LazyLock<HashMap<&'static str, Asset>> = LazyLock::new(|| {
    files::WEB
        .iter()
        .map(|(path, bytes)| {
            let asset = Asset {
                bytes,
                etag: etag_of(bytes),
                content_type: content_type(path),
            };
            (*path, asset)
        })
        .collect()
});

fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// The client's routes: the page, its assets, and the two files that must sit at the root
/// (the service worker, whose scope is its own directory, and the manifest).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/sw.js", get(|headers: HeaderMap| serve("sw.js", headers)))
        .route(
            "/manifest.webmanifest",
            get(|headers: HeaderMap| serve("manifest.webmanifest", headers)),
        )
        .route(
            "/favicon.ico",
            get(|headers: HeaderMap| serve("icon.svg", headers)),
        )
        .route("/assets/{*path}", get(asset))
        .layer(middleware::from_fn(security_headers))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", headers).await
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, headers).await
}

/// The directory to serve from instead of the embedded copy (client development only).
static DEV_DIR: LazyLock<Option<PathBuf>> =
    LazyLock::new(|| std::env::var_os("SIMPLE_CHAT_WEB_DIR").map(PathBuf::from));

async fn serve(path: &str, headers: HeaderMap) -> Response {
    if path
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'))
    {
        return not_found();
    }
    if let Some(dir) = DEV_DIR.as_ref() {
        return match tokio::fs::read(dir.join(path)).await {
            Ok(bytes) => answer(&headers, &etag_of(&bytes), content_type(path), bytes),
            Err(_) => not_found(),
        };
    }
    match ASSETS.get(path) {
        Some(asset) => answer(&headers, &asset.etag, asset.content_type, asset.bytes),
        None => not_found(),
    }
}

fn answer(
    request: &HeaderMap,
    etag: &str,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Not found.",
    )
        .into_response()
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_embedded() {
        for path in ["index.html", "sw.js", "manifest.webmanifest", "icon.svg"] {
            assert!(ASSETS.contains_key(path), "{path} is not embedded");
        }
    }

    #[test]
    fn etags_follow_the_bytes() {
        assert_eq!(etag_of(b"a"), etag_of(b"a"));
        assert_ne!(etag_of(b"a"), etag_of(b"b"));
    }
}
