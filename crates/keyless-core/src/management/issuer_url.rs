//! What an issuer URL may look like when a credential or a static issuer is written.
//! Tokens are matched by exact `iss`, and Keyless fetches `{issuer}/.well-known/…`,
//! so anything that would make that URL ambiguous is refused up front.

use crate::error::ManagementError;
use crate::names::printable;

/// Longest issuer accepted (Entra's limit).
const MAX_ISSUER_LEN: usize = 600;

/// An absolute `https` URL with a host, no user info, no query and no fragment, no
/// spaces or control characters, at most 600 characters. A query or fragment would
/// end up inside the discovery URL Keyless builds, pointing the fetch somewhere the
/// issuer's own `iss` does not name.
pub(crate) fn check_issuer(issuer: &str) -> Result<(), ManagementError> {
    let problem = if issuer.len() > MAX_ISSUER_LEN {
        Some("it is longer than 600 characters")
    } else if issuer.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains spaces or control characters")
    } else if let Some(rest) = issuer.strip_prefix("https://") {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() {
            Some("it has no host")
        } else if host.contains('@') {
            Some("it carries user information")
        } else if rest.contains('?') {
            Some("it has a query string")
        } else if rest.contains('#') {
            Some("it has a fragment")
        } else {
            None
        }
    } else {
        Some("it must be an https URL")
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(ManagementError::bad_request(
            "BadRequest",
            format!(
                "The issuer '{}' is invalid: {why}. Use the issuer URL exactly as the platform's tokens carry it in 'iss' (https, a host, an optional path).",
                printable(issuer)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check_issuer;

    #[test]
    fn accepts_https_urls_with_a_host_and_a_path() {
        for ok in [
            "https://oidc.example",
            "https://oidc.example/",
            "https://oidc.example:8443/tenant/abc/",
            "https://token.actions.githubusercontent.com",
        ] {
            assert!(check_issuer(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_queries_fragments_and_other_oddities() {
        for (bad, why) in [
            ("https://oidc.example/?x=1", "query"),
            ("https://oidc.example?x", "query"),
            ("https://oidc.example/#frag", "fragment"),
            ("http://oidc.example", "https"),
            ("https://", "no host"),
            ("https://user@oidc.example", "user information"),
            ("https://oidc.example/a b", "spaces"),
            ("https://oidc.example/\u{1b}", "control"),
        ] {
            let e = check_issuer(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(check_issuer(&format!("https://o.example/{}", "a".repeat(600))).is_err());
    }
}
