//! The paginated answer of every list (Django REST framework's LimitOffsetPagination shape).

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::extract::ListQuery;
use crate::store::Counted;

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

/// A [`Page`] whose results are JSON already (a kept thread list); its schema is the
/// [`Page`] of what `results` holds.
#[derive(Serialize)]
pub struct JsonPage<'a> {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: &'a RawValue,
}

impl<'a> JsonPage<'a> {
    /// A page of `count` items with its `(next, previous)` links, `results` being this page's.
    pub fn new(
        count: i64,
        (next, previous): (Option<String>, Option<String>),
        results: &'a RawValue,
    ) -> JsonPage<'a> {
        JsonPage {
            count,
            next,
            previous,
            results,
        }
    }

    /// A page of an offset-paged list of `count` items, `results` being this page's.
    pub fn by_offset(count: i64, results: &'a RawValue, query: &ListQuery) -> JsonPage<'a> {
        JsonPage::new(count, query.offset_links(count), results)
    }
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
