//! What a management request says: its decoded path segments, query parameters,
//! `api-version` and JSON body, each refused in ARM's error shape when malformed.

use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use super::versions::{Family, check};
use crate::errors::ArmResponseError;

/// ARM compares path keywords and parameter names case-insensitively.
pub(super) fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Decodes one path segment. `+` stays a plus (form decoding is for queries only), and
/// bytes that are not UTF-8 are refused rather than replaced, so two different paths
/// can never decode to the same name.
pub(super) fn decode_segment(raw: &str) -> Result<String, ArmResponseError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| {
            ArmResponseError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequestUri",
                format!(
                    "The path segment '{}' does not decode to UTF-8 text. Percent-encode names as UTF-8.",
                    keyless_core::names::printable(raw)
                ),
            )
        })
}

/// The non-empty segments of `path`, decoded. Splitting comes first, so an encoded
/// `%2F` stays inside its segment.
pub(super) fn path_segments(path: &str) -> Result<Vec<String>, ArmResponseError> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(decode_segment)
        .collect()
}

/// Query parameters with decoded keys (clients may percent-encode `api-version`).
pub(super) fn query_params(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

/// The value of the first parameter called `name` (any case).
pub(super) fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| eq(k, name)).map(|(_, v)| v.as_str())
}

/// Checks the `api-version` parameter against the versions `family` accepts.
pub(super) fn check_api_version(
    family: Family,
    q: &[(String, String)],
) -> Result<(), ArmResponseError> {
    let version = param(q, "api-version").ok_or_else(|| {
        ArmResponseError::new(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    })?;
    check(family, version).map_err(|supported| {
        ArmResponseError::new(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{}' is invalid. The supported versions are: {supported}.",
                keyless_core::names::printable(version)
            ),
        )
    })
}

/// The request body as `T`; an empty body is refused (every ARM write takes one).
pub(super) fn json_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ArmResponseError> {
    if body.is_empty() {
        return Err(ArmResponseError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request body is required and must be a JSON object.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ArmResponseError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}."),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn decoded(raw: &str) -> String {
        decode_segment(raw).unwrap()
    }

    #[test]
    fn ampersand_and_equals_are_part_of_the_segment() {
        assert_eq!(decoded("rg&x=other"), "rg&x=other");
        assert_eq!(decoded("rg%26x%3Dother"), "rg&x=other");
    }

    #[test]
    fn percent_and_plus() {
        assert_eq!(decoded("100%25"), "100%");
        assert_eq!(decoded("a+b"), "a+b");
        assert_eq!(decoded("a%2Bb"), "a+b");
        assert_eq!(decoded("a%20b"), "a b");
        // Not an escape: kept as written.
        assert_eq!(decoded("50%zz"), "50%zz");
    }

    #[test]
    fn encoded_slash_stays_in_its_segment() {
        assert_eq!(decoded("a%2Fb"), "a/b");
        assert_eq!(decoded("a%2fb"), "a/b");
        assert_eq!(
            path_segments("/subscriptions/s/resourceGroups/a%2Fb").unwrap(),
            ["subscriptions", "s", "resourceGroups", "a/b"]
        );
    }

    #[test]
    fn non_ascii() {
        assert_eq!(decoded("caf%C3%A9"), "café");
        assert_eq!(decoded("café"), "café");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let e = decode_segment("%ff%fe").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.code, "InvalidRequestUri");
        assert!(e.message.contains("%ff%fe"), "{}", e.message);
        assert!(path_segments("/subscriptions/%C3").is_err());
    }

    #[test]
    fn empty_segments_are_skipped() {
        assert_eq!(path_segments("//tenants/").unwrap(), ["tenants"]);
    }
}
