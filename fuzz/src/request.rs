//! The input format of the HTTP targets: a small HTTP/1.1-like request, so that the
//! fuzzer mutates the method, path, headers and body alike.
//!
//! ```text
//! PUT /subscriptions/@SUB@/resourceGroups/rg?api-version=2021-04-01
//! Authorization: Bearer @ARM_TOKEN@
//! Content-Type: application/json
//!
//! {"location": "westeurope"}
//! ```
//!
//! Placeholders (`@NAME@`) are replaced by values only known once the in-process server
//! exists (ids, secrets, tokens): see [`crate::server::Server::substitute`]. An input
//! whose request line or headers `http` itself refuses is skipped: those never reach
//! Keyless from a real client either.

use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, Uri};

/// Builds the request, after `subst` has replaced the placeholders; `None` when the
/// input is no HTTP request at all.
pub fn parse(data: &[u8], subst: impl Fn(&[u8]) -> Vec<u8>) -> Option<Request<Body>> {
    let (head, body) = match find(data, b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next()?;
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let sp = first.iter().position(|&b| b == b' ')?;
    let method = Method::from_bytes(&first[..sp]).ok()?;
    let uri = Uri::try_from(subst(&first[sp + 1..])).ok()?;
    let mut builder = Request::builder().method(method).uri(uri);
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = line.iter().position(|&b| b == b':')?;
        let name = HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = subst(line[colon + 1..].trim_ascii());
        let value = HeaderValue::from_bytes(&value).ok()?;
        builder = builder.header(name, value);
    }
    builder.body(Body::from(subst(body))).ok()
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `hay` with every `from` replaced by `to`.
pub fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut rest = hay;
    while let Some(i) = find(rest, from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}
