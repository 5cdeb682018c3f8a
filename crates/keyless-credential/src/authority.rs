//! Authority hosts, tenant ids and the token endpoint URL.

use reqwest::Url;

use crate::error::Error;

/// The authority host of Microsoft Entra ID's public cloud, the default when neither
/// the options nor `AZURE_AUTHORITY_HOST` name one.
pub const AZURE_PUBLIC_CLOUD: &str = "https://login.microsoftonline.com";

/// Environment variable naming the authority host (`https://login.microsoftonline.com`,
/// or a Keyless server such as `https://keyless.example:8443`).
pub const ENV_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
/// Environment variable naming the tenant (directory) id.
pub const ENV_TENANT_ID: &str = "AZURE_TENANT_ID";
/// Environment variable naming the application (client) id.
pub const ENV_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// Environment variable naming the projected service-account token file.
pub const ENV_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";

/// Longest tenant id accepted (GUIDs are 36 characters; domain names up to 253).
const MAX_TENANT_LEN: usize = 256;

/// Parses an authority host the way azure-identity does: surrounding spaces and trailing
/// slashes are dropped, a bare host gets `https://`, and anything but `https` is refused
/// (secrets and assertions never travel in clear text). A path prefix is kept (a Keyless
/// behind a reverse proxy at `/keyless`); query and fragment are refused.
pub(crate) fn parse_authority(raw: &str) -> Result<Url, Error> {
    let trimmed = raw.trim();
    if trimmed.trim_end_matches('/').is_empty() {
        return Err(Error::invalid(
            "authority host",
            "it is empty; expected an https URL such as https://login.microsoftonline.com",
        ));
    }
    let text = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let mut url = Url::parse(&text).map_err(|e| {
        Error::invalid(
            "authority host",
            format!("'{}' is not a URL ({e})", clip(trimmed)),
        )
    })?;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    if url.scheme() != "https" {
        return Err(Error::invalid(
            "authority host",
            format!(
                "'{}' must use https: client secrets and assertions are never sent in clear text",
                clip(trimmed)
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(
            "authority host",
            format!("'{}' has no host", clip(trimmed)),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Error::invalid(
            "authority host",
            format!(
                "'{}' must be scheme, host, port and optional path only (no query, fragment or user)",
                clip(trimmed)
            ),
        ));
    }
    Ok(url)
}

/// Checks a tenant id: a GUID or a domain name, `[A-Za-z0-9.-]` only, so it can never
/// change the shape of the token endpoint's path.
pub(crate) fn validate_tenant(tenant: &str) -> Result<(), Error> {
    if tenant.is_empty() {
        return Err(Error::invalid("tenant id", "it is empty"));
    }
    if tenant.len() > MAX_TENANT_LEN {
        return Err(Error::invalid(
            "tenant id",
            format!("it is {} characters long", tenant.len()),
        ));
    }
    if let Some(bad) = tenant
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        return Err(Error::invalid(
            "tenant id",
            format!(
                "'{}' contains {bad:?}; expected a GUID or a domain name (letters, digits, '.' and '-')",
                clip(tenant)
            ),
        ));
    }
    Ok(())
}

/// Checks a client id: non-empty, printable, no surrounding whitespace.
pub(crate) fn validate_client_id(client_id: &str) -> Result<(), Error> {
    if client_id.is_empty() {
        return Err(Error::invalid("client id", "it is empty"));
    }
    if client_id.trim() != client_id || client_id.chars().any(char::is_control) {
        return Err(Error::invalid(
            "client id",
            "it has surrounding whitespace or control characters",
        ));
    }
    if client_id.len() > MAX_TENANT_LEN {
        return Err(Error::invalid(
            "client id",
            format!("it is {} characters long", client_id.len()),
        ));
    }
    Ok(())
}

/// `{authority}/{tenant}/oauth2/v2.0/token`.
pub(crate) fn token_endpoint(authority: &Url, tenant: &str) -> Result<Url, Error> {
    let base = authority.as_str().trim_end_matches('/');
    let text = format!("{base}/{tenant}/oauth2/v2.0/token");
    Url::parse(&text).map_err(|e| {
        Error::invalid(
            "authority host",
            format!("cannot build the token endpoint from it ({e})"),
        )
    })
}

/// The authority as the cache keys it: scheme, host, port and path, no trailing slash.
pub(crate) fn authority_key(authority: &Url) -> String {
    authority
        .as_str()
        .trim_end_matches('/')
        .to_ascii_lowercase()
}

/// Bounds user text copied into an error.
pub(crate) fn clip(s: &str) -> String {
    const MAX_CHARS: usize = 100;
    match s.char_indices().nth(MAX_CHARS) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}...", s.get(..cut).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        match parse_authority(raw) {
            Ok(url) => url.to_string(),
            Err(e) => unreachable!("{raw}: {e}"),
        }
    }

    #[test]
    fn authorities_are_normalised_like_azure_identity() {
        assert_eq!(
            ok(" https://login.microsoftonline.com/ "),
            "https://login.microsoftonline.com/"
        );
        assert_eq!(ok("localhost:8443"), "https://localhost:8443/");
        assert_eq!(
            ok("https://proxy.example/keyless//"),
            "https://proxy.example/keyless"
        );
        for bad in [
            "",
            "  / ",
            "http://localhost:8443",
            "ftp://x",
            "https://",
            "https://h/?a=b",
            "https://h/#f",
            "https://user@h",
            "https://exa mple",
        ] {
            assert!(parse_authority(bad).is_err(), "{bad:?} should be refused");
        }
        let Err(e) = parse_authority("http://localhost") else {
            unreachable!()
        };
        assert!(e.to_string().contains("must use https"), "{e}");
    }

    #[test]
    fn token_endpoint_keeps_a_path_prefix() {
        let at = |a: &str, t: &str| {
            let url = parse_authority(a).and_then(|a| token_endpoint(&a, t));
            url.map(|u| u.to_string()).unwrap_or_else(|e| e.to_string())
        };
        assert_eq!(
            at("https://localhost:8443", "tid"),
            "https://localhost:8443/tid/oauth2/v2.0/token"
        );
        assert_eq!(
            at("https://proxy.example/keyless/", "contoso.onmicrosoft.com"),
            "https://proxy.example/keyless/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }

    #[test]
    fn tenants_cannot_change_the_path() {
        assert!(validate_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47").is_ok());
        assert!(validate_tenant("contoso.onmicrosoft.com").is_ok());
        for bad in ["", "a/b", "../x", "t?x=1", "t#", "t t", &"a".repeat(300)] {
            assert!(validate_tenant(bad).is_err(), "{bad:?}");
        }
        assert!(validate_client_id("c").is_ok());
        for bad in ["", " c", "c\n", "a\u{0}b"] {
            assert!(validate_client_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clip_bounds_long_text() {
        let long = "é".repeat(500);
        assert_eq!(clip(&long).chars().count(), 103);
        assert_eq!(clip("short"), "short");
    }
}
