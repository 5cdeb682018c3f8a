//! The query of a token request: resource, api-version and identity selectors.

/// Which parameter names an identity, and what it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SelectorKind {
    /// `client_id`: the configured client id.
    Client,
    /// `object_id` / `principal_id`: the token's `oid`.
    Object,
    /// `msi_res_id` (IMDS) / `mi_res_id` (App Service): the token's `xms_mirid`.
    Resource,
}

/// One identity selector of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector {
    pub kind: SelectorKind,
    /// The parameter as the client spelled it (for messages).
    pub name: &'static str,
    pub value: String,
}

/// A parsed token request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TokenQuery {
    pub resource: Option<String>,
    pub api_version: Option<String>,
    pub selectors: Vec<Selector>,
}

/// Why a query is unusable (the message goes to the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError(pub String);

const SELECTORS: [(&str, SelectorKind); 5] = [
    ("client_id", SelectorKind::Client),
    ("object_id", SelectorKind::Object),
    ("principal_id", SelectorKind::Object),
    ("msi_res_id", SelectorKind::Resource),
    ("mi_res_id", SelectorKind::Resource),
];

impl TokenQuery {
    /// Parses a query string (without `?`). Parameter names are matched in any letter
    /// case, so a selector cannot slip past as `Client_Id`; a parameter given twice is
    /// refused rather than guessing which one the client meant.
    pub(crate) fn parse(query: &str) -> Result<Self, QueryError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| QueryError("the query string is not form-encoded".to_owned()))?;
        let mut out = TokenQuery::default();
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in pairs {
            let lower = name.to_ascii_lowercase();
            let known = matches!(lower.as_str(), "resource" | "api-version")
                || SELECTORS.iter().any(|(n, _)| *n == lower);
            if !known {
                continue;
            }
            if seen.contains(&lower) {
                return Err(QueryError(format!(
                    "the parameter '{lower}' is given more than once"
                )));
            }
            seen.push(lower.clone());
            match lower.as_str() {
                "resource" => out.resource = Some(value),
                "api-version" => out.api_version = Some(value),
                _ => {
                    if let Some((n, kind)) = SELECTORS.iter().find(|(n, _)| *n == lower)
                        && !value.trim().is_empty()
                    {
                        out.selectors.push(Selector {
                            kind: *kind,
                            name: n,
                            value: value.trim().to_owned(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The `client_credentials` scope for an IMDS `resource`: `{resource}/.default`, as az
/// and the SDKs build it (so `https://management.azure.com/` keeps its slash and gives
/// `https://management.azure.com//.default`, the resource manager's v2 scope). A
/// resource already ending in `/.default` is taken as a scope. `None` for a resource
/// that cannot be one: empty, or holding whitespace or control characters (which would
/// make several scopes).
pub(crate) fn scope_for(resource: &str) -> Option<String> {
    let resource = resource.trim();
    if resource.is_empty()
        || resource
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    if resource.ends_with("/.default") {
        Some(resource.to_owned())
    } else {
        Some(keyless_credential::scope_for_resource(resource))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resource_version_and_selectors_in_any_case() {
        let q = TokenQuery::parse(
            "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&Client_ID=ABC&x=1&mi_res_id=%2Fsub",
        )
        .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(q.resource.as_deref(), Some("https://vault.azure.net"));
        assert_eq!(q.api_version.as_deref(), Some("2018-02-01"));
        assert_eq!(
            q.selectors,
            vec![
                Selector {
                    kind: SelectorKind::Client,
                    name: "client_id",
                    value: "ABC".into()
                },
                Selector {
                    kind: SelectorKind::Resource,
                    name: "mi_res_id",
                    value: "/sub".into()
                },
            ]
        );
        assert_eq!(TokenQuery::parse(""), Ok(TokenQuery::default()));
        // An empty selector names nothing (azure-identity sends none rather than empty).
        assert!(
            TokenQuery::parse("client_id=")
                .map(|q| q.selectors.is_empty())
                .unwrap_or(false)
        );
    }

    #[test]
    fn refuses_repeated_parameters() {
        for query in [
            "resource=a&resource=b",
            "client_id=a&CLIENT_ID=b",
            "api-version=1&api-version=1",
        ] {
            assert!(TokenQuery::parse(query).is_err(), "{query}");
        }
    }

    #[test]
    fn scopes_keep_the_resource_as_given() {
        assert_eq!(
            scope_for("https://vault.azure.net").as_deref(),
            Some("https://vault.azure.net/.default")
        );
        assert_eq!(
            scope_for("https://management.azure.com/").as_deref(),
            Some("https://management.azure.com//.default")
        );
        assert_eq!(
            scope_for("https://vault.azure.net/.default").as_deref(),
            Some("https://vault.azure.net/.default")
        );
        for bad in ["", "  ", "a b", "https://x/.default https://y", "a\u{0}b"] {
            assert_eq!(scope_for(bad), None, "{bad:?}");
        }
    }
}
