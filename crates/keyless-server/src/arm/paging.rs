//! Paging of management lists as ARM does it: `$top` (page size), `$skipToken` (where
//! the page starts) and an absolute `nextLink` carrying both, which az, Terraform and
//! the SDKs follow until it is absent.

use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::reply::Listing;
use super::request::{eq, query_params};
use crate::errors::ArmResponseError;

/// Page size when the caller gives no `$top`.
pub const DEFAULT_PAGE: usize = 1000;
/// Largest `$top` accepted.
pub const MAX_PAGE: usize = 1000;

/// Turns a [`Listing`] reply into its page; other replies pass through.
pub(super) fn page(mut response: Response, public_authority: &str, uri: &Uri) -> Response {
    let Some(Listing(values)) = response.extensions_mut().remove::<Listing>() else {
        return response;
    };
    match page_of(values, public_authority, uri) {
        Ok(body) => (StatusCode::OK, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn bad(message: &str) -> ArmResponseError {
    ArmResponseError::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
}

fn page_of(
    values: Vec<Value>,
    public_authority: &str,
    uri: &Uri,
) -> Result<Value, ArmResponseError> {
    let q = query_params(uri);
    let get = |name: &str| q.iter().find(|(k, _)| eq(k, name)).map(|(_, v)| v.as_str());
    let size = match get("$top") {
        None => DEFAULT_PAGE,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| bad(&format!("$top must be an integer from 1 to {MAX_PAGE}.")))?,
    };
    // The token is the offset of the page's first item, opaque to clients.
    let start = match get("$skipToken") {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            bad("The $skipToken is invalid; use the nextLink of the previous page.")
        })?,
    };
    let total = values.len();
    let page: Vec<Value> = values.into_iter().skip(start).take(size).collect();
    let mut body = json!({ "value": page });
    if start.saturating_add(size) < total {
        // The request's own query, with the paging parameters replaced.
        let mut next: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| !eq(k, "$top") && !eq(k, "$skipToken"))
            .cloned()
            .collect();
        next.push(("$top".into(), size.to_string()));
        next.push(("$skipToken".into(), (start + size).to_string()));
        let query = serde_urlencoded::to_string(&next).unwrap_or_default();
        if let Some(o) = body.as_object_mut() {
            o.insert(
                "nextLink".into(),
                json!(format!("{public_authority}{}?{query}", uri.path())),
            );
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!(i)).collect()
    }

    #[test]
    fn pages_follow_next_links_to_the_end() {
        let mut uri: Uri = "/subscriptions/s/resourcegroups?api-version=2021-04-01&$top=2"
            .parse()
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..10 {
            let body = page_of(values(5), "https://kl.example:8443", &uri).unwrap();
            seen.extend(body["value"].as_array().unwrap().iter().cloned());
            match body["nextLink"].as_str() {
                Some(next) => {
                    let rest = next.strip_prefix("https://kl.example:8443").unwrap();
                    assert!(rest.contains("api-version=2021-04-01"), "{next}");
                    uri = rest.parse().unwrap();
                }
                None => break,
            }
        }
        assert_eq!(seen, values(5));
    }

    #[test]
    fn a_short_list_has_no_next_link_and_bad_parameters_are_refused() {
        let uri: Uri = "/x?api-version=1".parse().unwrap();
        let body = page_of(values(3), "https://h", &uri).unwrap();
        assert!(body.get("nextLink").is_none());
        assert_eq!(body["value"].as_array().unwrap().len(), 3);
        for q in [
            "$top=0",
            "$top=1001",
            "$top=x",
            "$skipToken=-1",
            "$skipToken=abc",
        ] {
            let uri: Uri = format!("/x?api-version=1&{q}").parse().unwrap();
            assert!(page_of(values(3), "https://h", &uri).is_err(), "{q}");
        }
        // Past the end: an empty page.
        let uri: Uri = "/x?api-version=1&$skipToken=99".parse().unwrap();
        assert_eq!(
            page_of(values(3), "https://h", &uri).unwrap()["value"],
            json!([])
        );
    }
}
