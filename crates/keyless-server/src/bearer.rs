//! The bearer token of an `Authorization` header, for the management API and the vault.

use axum::http::{HeaderMap, header};

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC
/// 7235), trimmed; `None` when the header is missing, not text, of another scheme or
/// empty.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn reads_the_token_of_a_bearer_header_only() {
        assert_eq!(bearer_token(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&with("BEARER abc")), Some("abc"));
        for refused in ["Bearer ", "Bearer", "Basic YWJj", "token abc", "Bearerabc"] {
            assert_eq!(bearer_token(&with(refused)), None, "{refused}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
