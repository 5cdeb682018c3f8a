//! Paging of list responses: `maxresults`, `$skiptoken` and an absolute `nextLink`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::reply::{Reply, bad, json_response};

/// Items per page when the caller does not say (Key Vault's maximum).
const PAGE_DEFAULT: usize = 25;

/// Paging parameters of a list request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Paging<'a> {
    /// `maxresults`.
    pub(super) max: Option<&'a str>,
    /// `$skiptoken`: the index of the first item.
    pub(super) skip: Option<&'a str>,
    /// Repeated in `nextLink`, as Key Vault does.
    pub(super) api_version: &'a str,
}

/// One page of a list, with an absolute `nextLink`.
pub(super) fn paged(
    origin: &str,
    path: &str,
    items: Vec<Value>,
    Paging {
        max,
        skip,
        api_version,
    }: Paging<'_>,
) -> Reply {
    let size = match max {
        None => PAGE_DEFAULT,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=25).contains(&n) => n,
            _ => return Err(Box::new(bad("maxresults must be an integer from 1 to 25."))),
        },
    };
    let start = match skip {
        None => 0,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| Box::new(bad("The $skiptoken is invalid.")))?,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let next = (start + size < total).then(|| {
        format!(
            "{origin}/{path}?api-version={api_version}&maxresults={size}&$skiptoken={}",
            start + size
        )
    });
    Ok(json_response(
        StatusCode::OK,
        json!({"value": page, "nextLink": next}),
    ))
}
