//! Files: `POST /api/files/` (multipart, one part named `file`) streams an upload into the
//! store chunk by chunk — never whole in memory, and cut off with 413 past `--max-upload`
//! whatever `Content-Length` said; `GET /api/files/<id>/content` serves the bytes (with `Range`)
//! and `/thumbnail` a small JPEG of an image. Only the uploader, the participants of a thread
//! where the file is attached, and staff may fetch a file; anyone else gets 404.

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{Multipart, Path, State, multipart::Field},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::stream;
use utoipa::{IntoParams, ToSchema};

use super::{
    error::{ApiError, ApiResult, Detail, ValidationErrors},
    extract::{AuthUser, authenticate, bearer_token, parse_id},
};
use crate::{
    AppState,
    auth::jwt::TokenType,
    domain::has_nul,
    error::{AuthProblem, Error},
    media,
    store::{
        User,
        files::{CHUNK, File, FileJson},
    },
};

/// The upload: one part named `file`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file's bytes; its part's `filename` and `Content-Type` are kept.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A `multipart/form-data` body; anything else is refused in the contract's shape (415).
pub struct Upload(Multipart);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Upload {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Upload, ApiError> {
        let media = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        Multipart::from_request(request, state)
            .await
            .map(Upload)
            .map_err(|_| ApiError::UnsupportedMediaType(media))
    }
}

/// Where links to files start: the public URL, or the server's root.
pub fn link_base(state: &AppState) -> &str {
    state.config.public_url.as_deref().unwrap_or("")
}

/// A file name as kept: the last path segment, without control characters, at most 255
/// characters; `file` when nothing is left.
fn clean_name(raw: Option<&str>) -> String {
    let last = raw
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let name: String = last.chars().filter(|c| !c.is_control()).take(255).collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." {
        "file".to_owned()
    } else {
        name.to_owned()
    }
}

/// The declared type, when it reads as one; else `application/octet-stream`.
fn clean_type(raw: Option<&str>) -> String {
    match raw {
        Some(media) if media.len() <= 255 && media.contains('/') && !has_nul(media) => {
            media.to_owned()
        }
        _ => "application/octet-stream".to_owned(),
    }
}

/// Uploads a file (to attach to messages within a day) → 201 with the file.
#[utoipa::path(post, path = "/api/files", tag = "files", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = FileJson),
        (status = 400, body = ValidationErrors),
        (status = 401, body = Detail),
        (status = 413, body = Detail, description = "Larger than --max-upload"),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Upload(mut multipart): Upload,
) -> ApiResult<(StatusCode, Json<FileJson>)> {
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::from(Error::Malformed(format!(
            "Multipart form parse error - {e}"
        )))
    };
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        if field.name() == Some("file") {
            let file = receive(&state, &user, field).await?;
            return Ok((StatusCode::CREATED, Json(file.json(link_base(&state)))));
        }
    }
    Err(Error::field("file", "No file was submitted.").into())
}

/// Streams one part into the store; on any failure the partial file is deleted.
async fn receive(state: &AppState, user: &User, mut field: Field<'_>) -> ApiResult<File> {
    let name = clean_name(field.file_name());
    let content_type = clean_type(field.content_type());
    let id = state
        .store
        .create_file(user.id, &name, &content_type)
        .await?;
    let limit = state.config.max_upload;
    let mut buffer = Vec::with_capacity(CHUNK);
    let mut seq = 0;
    let mut size: u64 = 0;
    let outcome: ApiResult<()> = async {
        loop {
            let chunk = field.chunk().await.map_err(|e| {
                ApiError::from(Error::Malformed(format!("The upload was cut off - {e}")))
            })?;
            let Some(chunk) = chunk else { break };
            size += chunk.len() as u64;
            if size > limit as u64 {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let take = (CHUNK - buffer.len()).min(rest.len());
                buffer.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buffer.len() == CHUNK {
                    let full = std::mem::replace(&mut buffer, Vec::with_capacity(CHUNK));
                    state.store.append_file_chunk(id, seq, full).await?;
                    seq += 1;
                }
            }
        }
        if !buffer.is_empty() {
            state
                .store
                .append_file_chunk(id, seq, std::mem::take(&mut buffer))
                .await?;
        }
        Ok(())
    }
    .await;
    if let Err(error) = outcome {
        let _ = state.store.delete_file(id).await;
        return Err(error);
    }
    let size = size as i64;
    let thumbnail = if media::is_inline_image(&content_type) && size <= media::MAX_THUMBNAIL_SOURCE
    {
        make_thumbnail(state, id, size).await
    } else {
        None
    };
    state.store.finish_file(id, size, thumbnail).await?;
    Ok(state.store.file(id).await?.ok_or(Error::NotFound)?)
}

/// Reads an image back and makes its thumbnail, one image at a time, off the async threads.
async fn make_thumbnail(state: &AppState, id: i64, size: i64) -> Option<Vec<u8>> {
    let _turn = media::THUMBNAILS.acquire().await.ok()?;
    let mut bytes = Vec::with_capacity(size as usize);
    let mut seq = 0;
    while let Some(chunk) = state.store.file_chunk(id, seq).await.ok()? {
        bytes.extend_from_slice(&chunk);
        seq += 1;
    }
    tokio::task::spawn_blocking(move || media::thumbnail(&bytes))
        .await
        .ok()
        .flatten()
}

/// `?token=` (for links a browser follows itself), else `Authorization: Bearer`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FileParams {
    /// An access token, for links that cannot carry a header (`<a href>`, `<img src>`).
    token: Option<String>,
}

/// The signed-in user from the header or `?token=`.
async fn requester(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> ApiResult<Arc<User>> {
    let from_query = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let token = match from_query {
        Some(token) => token,
        None => headers
            .get(header::AUTHORIZATION)
            .and_then(|h| bearer_token(h.as_bytes()))
            .map(str::to_owned)
            .ok_or(Error::Unauthenticated(AuthProblem::NotProvided))?,
    };
    Ok(authenticate(state, &token, TokenType::Access).await?)
}

/// A complete file the requester may read, or 404.
async fn readable(state: &AppState, user: &User, id: &str) -> ApiResult<File> {
    let id = parse_id(id).ok_or(Error::NotFound)?;
    let file = state.store.file(id).await?.ok_or(Error::NotFound)?;
    if !file.complete {
        return Err(Error::NotFound.into());
    }
    if !user.is_staff && !state.store.may_read_file(id, user.id).await? {
        return Err(Error::NotFound.into());
    }
    Ok(file)
}

/// A file's JSON.
#[utoipa::path(get, path = "/api/files/{id}", tag = "files", security(("bearer" = [])),
    params(("id" = i64, Path), FileParams),
    responses(
        (status = 200, body = FileJson),
        (status = 401, body = Detail),
        (status = 404, body = Detail),
    ))]
pub async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Json<FileJson>> {
    let user = requester(&state, &headers, uri.query()).await?;
    let file = readable(&state, &user, &id).await?;
    Ok(Json(file.json(link_base(&state))))
}

/// The headers every file answer carries: never sniffed, never run as a page.
fn guarded(mut response: Response, content_type: &str, disposition: &str) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_DISPOSITION, disposition),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, "sandbox"),
        (header::CACHE_CONTROL, "private, max-age=86400"),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// The file's bytes, with the type it was uploaded with; `Range: bytes=` gives 206.
#[utoipa::path(get, path = "/api/files/{id}/content", tag = "files", security(("bearer" = [])),
    params(("id" = i64, Path), FileParams),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for"),
        (status = 401, body = Detail),
        (status = 404, body = Detail),
        (status = 416, description = "A range past the end"),
    ))]
pub async fn content(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let user = requester(&state, &headers, uri.query()).await?;
    let file = readable(&state, &user, &id).await?;
    let size = file.size as u64;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => match http_range_header::parse_range_header(value)
            .and_then(|ranges| ranges.validate(size))
        {
            Ok(ranges) => ranges.into_iter().next(),
            Err(_) => {
                let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                return Ok(response);
            }
        },
    };
    let (start, end) = range
        .as_ref()
        .map_or((0, size.saturating_sub(1)), |r| (*r.start(), *r.end()));
    let length = if size == 0 { 0 } else { end - start + 1 };
    let body = Body::from_stream(chunks(state.clone(), file.id, start, length));
    let mut response = Response::new(body);
    if let Some(range) = &range {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {}-{}/{size}", range.start(), range.end());
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let disposition = media::content_disposition(&file.content_type, &file.name);
    Ok(guarded(response, &file.content_type, &disposition))
}

/// `length` bytes of a file from `start`, read one stored chunk at a time.
fn chunks(
    state: AppState,
    file: i64,
    start: u64,
    length: u64,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let first = start / CHUNK as u64;
    let skip = (start % CHUNK as u64) as usize;
    stream::unfold((first, skip, length), move |(seq, skip, left)| {
        let state = state.clone();
        async move {
            if left == 0 {
                return None;
            }
            let chunk = match state.store.file_chunk(file, seq as i64).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    let missing = std::io::Error::other("a chunk of the file is missing");
                    return Some((Err(missing), (seq, 0, 0)));
                }
                Err(error) => return Some((Err(std::io::Error::other(error)), (seq, 0, 0))),
            };
            let available = chunk.len().saturating_sub(skip);
            let take = (available as u64).min(left) as usize;
            let piece = chunk[skip..skip + take].to_vec();
            Some((Ok(piece), (seq + 1, 0, left - take as u64)))
        }
    })
}

/// A JPEG at most 400 px on its longest side (images only).
#[utoipa::path(get, path = "/api/files/{id}/thumbnail", tag = "files", security(("bearer" = [])),
    params(("id" = i64, Path), FileParams),
    responses(
        (status = 200, description = "A JPEG", content_type = "image/jpeg"),
        (status = 401, body = Detail),
        (status = 404, body = Detail, description = "No such file, or no thumbnail"),
    ))]
pub async fn thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> ApiResult<Response> {
    let user = requester(&state, &headers, uri.query()).await?;
    let file = readable(&state, &user, &id).await?;
    let bytes = state
        .store
        .file_thumbnail(file.id)
        .await?
        .ok_or(Error::NotFound)?;
    let response = Response::new(Body::from(bytes));
    let disposition = media::content_disposition("image/jpeg", &format!("{}.jpg", file.name));
    Ok(guarded(response, "image/jpeg", &disposition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_paths_and_controls() {
        assert_eq!(clean_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_name(Some("C:\\Users\\me\\photo.png")), "photo.png");
        assert_eq!(clean_name(Some("a\u{0}b\nc.txt")), "abc.txt");
        assert_eq!(clean_name(Some("..")), "file");
        assert_eq!(clean_name(None), "file");
        assert_eq!(clean_type(Some("image/png")), "image/png");
        assert_eq!(clean_type(Some("nonsense")), "application/octet-stream");
    }
}
