//! The paginated answer of every list (Django REST framework's LimitOffsetPagination shape).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::{error::ApiResult, extract::ListQuery};
use crate::store::{Counted, StoreError, packed::KeptJson};

/// `{"count", "next", "previous", "results"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// How many items the whole list has.
    pub count: i64,
    /// The URL of the next page, if any.
    pub next: Option<String>,
    /// The URL of the previous page, if any.
    pub previous: Option<String>,
    pub results: Vec<T>,
}

impl<T> Page<T> {
    /// A page of an offset-paged list.
    pub fn by_offset(page: Counted<T>, query: &ListQuery) -> Page<T> {
        let (next, previous) = query.offset_links(page.count);
        Page {
            count: page.count,
            next,
            previous,
            results: page.items,
        }
    }
}

/// A [`Page`] whose results are JSON already (a thread list or message page that may be
/// kept, packed when it is); its schema is the [`Page`] of what `results` holds.
pub struct JsonPage<'a> {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: &'a KeptJson,
}

/// What comes before a [`JsonPage`]'s results.
#[derive(Serialize)]
struct Head<'a> {
    count: i64,
    next: &'a Option<String>,
    previous: &'a Option<String>,
}

impl<'a> JsonPage<'a> {
    /// A page of `count` items with its `(next, previous)` links, `results` being this page's.
    pub fn new(
        count: i64,
        (next, previous): (Option<String>, Option<String>),
        results: &'a KeptJson,
    ) -> JsonPage<'a> {
        JsonPage {
            count,
            next,
            previous,
            results,
        }
    }

    /// A page of an offset-paged list of `count` items, `results` being this page's.
    pub fn by_offset(count: i64, results: &'a KeptJson, query: &ListQuery) -> JsonPage<'a> {
        JsonPage::new(count, query.offset_links(count), results)
    }

    /// The page as a 200 answer: `{"count", "next", "previous", "results"}`, the results
    /// written (unpacked, if packed) straight into the body.
    pub fn into_response(self) -> ApiResult<Response> {
        let head = Head {
            count: self.count,
            next: &self.next,
            previous: &self.previous,
        };
        let mut body = Vec::with_capacity(128 + self.results.len());
        serde_json::to_writer(&mut body, &head).map_err(|e| StoreError::Other(e.into()))?;
        body.pop(); // the head's closing brace: the results go in before it
        body.extend_from_slice(b",\"results\":");
        self.results.write_to(&mut body)?;
        body.push(b'}');
        Ok(json_response(StatusCode::OK, body))
    }
}

/// `body`, JSON already, as an answer with `status`.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let json = HeaderValue::from_static("application/json");
    (status, [(header::CONTENT_TYPE, json)], body).into_response()
}

/// `?limit=&offset=` (default 50, at most 200).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// Items per page: default 50, at most 200 (larger is clamped).
    limit: Option<i64>,
    /// Items to skip.
    offset: Option<i64>,
}
