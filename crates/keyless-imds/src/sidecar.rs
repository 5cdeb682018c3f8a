//! Request handling: which path, which checks, in which order.

use axum::body::Body;
use http::{HeaderMap, Method, Request, Response, StatusCode};

use crate::claims::IdentityClaims;
use crate::protocol::{Protocol, Refusal, token_response};
use crate::request::{SelectorKind, TokenQuery, scope_for};
use crate::tokens::TokenSource;
use crate::{APP_SERVICE_API_VERSION, APP_SERVICE_TOKEN_PATH, IMDS_TOKEN_PATH};

/// Longest query string accepted (real ones are under 300 bytes).
const MAX_QUERY: usize = 4096;

/// What the sidecar serves, and as whom.
#[derive(Clone)]
pub struct SidecarConfig {
    /// The identity's client id (`AZURE_CLIENT_ID`): the one `client_id` accepted, and
    /// the `client_id` of every answer.
    pub client_id: String,
    /// The App Service secret (`IDENTITY_HEADER`); `None` turns `/msi/token` off.
    pub identity_header: Option<String>,
    /// Whether `/metadata/identity/oauth2/token` is served. Its only guard is the
    /// `Metadata: true` header, so it should be off where untrusted processes share
    /// the network namespace (`hostNetwork` pods).
    pub imds: bool,
}

impl std::fmt::Debug for SidecarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarConfig")
            .field("client_id", &self.client_id)
            .field(
                "identity_header",
                &self.identity_header.as_ref().map(|_| "<set>"),
            )
            .field("imds", &self.imds)
            .finish()
    }
}

/// The managed-identity endpoints of one identity.
#[derive(Debug)]
pub struct Sidecar {
    config: SidecarConfig,
    tokens: TokenSource,
}

impl Sidecar {
    /// Serves `config`'s identity with tokens from `tokens`.
    pub fn new(config: SidecarConfig, tokens: TokenSource) -> Self {
        Self { config, tokens }
    }

    /// Answers one request. Never fails: every problem is an answer in the shape of
    /// the protocol the path belongs to.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body> {
        let path = request.uri().path();
        let protocol = if path == IMDS_TOKEN_PATH || path.strip_suffix('/') == Some(IMDS_TOKEN_PATH)
        {
            Protocol::Imds
        } else if path == APP_SERVICE_TOKEN_PATH {
            Protocol::AppService
        } else {
            return Refusal::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "not found: the token endpoints are /metadata/identity/oauth2/token and /msi/token",
            )
            .render(Protocol::Imds);
        };
        let query = request.uri().query().unwrap_or("");
        match self
            .answer(protocol, request.method(), request.headers(), query)
            .await
        {
            Ok(response) => response,
            Err(refusal) => {
                tracing::info!(
                    path = ?protocol,
                    status = refusal.status.as_u16(),
                    reason = %refusal.description,
                    "token request refused"
                );
                refusal.render(protocol)
            }
        }
    }

    async fn answer(
        &self,
        protocol: Protocol,
        method: &Method,
        headers: &HeaderMap,
        query: &str,
    ) -> Result<Response<Body>, Refusal> {
        match protocol {
            Protocol::Imds => self.check_imds(headers)?,
            Protocol::AppService => self.check_app_service(headers)?,
        }
        if method != Method::GET {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "only GET is supported",
            ));
        }
        if query.len() > MAX_QUERY {
            return Err(Refusal::bad_request(format!(
                "the query string is longer than {MAX_QUERY} bytes"
            )));
        }
        let query = TokenQuery::parse(query).map_err(|e| Refusal::bad_request(e.0))?;
        match (protocol, query.api_version.as_deref()) {
            (_, None) => {
                return Err(Refusal::bad_request(
                    "Required query variable 'api-version' is missing",
                ));
            }
            (Protocol::AppService, Some(v)) if v != APP_SERVICE_API_VERSION => {
                return Err(Refusal::bad_request(format!(
                    "api-version '{v}' is not supported; use {APP_SERVICE_API_VERSION}"
                )));
            }
            _ => {}
        }
        let resource = query
            .resource
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| Refusal::bad_request("Required audience parameter not specified"))?;
        let scope = scope_for(resource).ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_resource",
                "the resource is not a resource identifier (it holds whitespace)",
            )
        })?;
        // Cheap refusal first: another client id needs no token to tell.
        for selector in &query.selectors {
            if selector.kind == SelectorKind::Client
                && !selector.value.eq_ignore_ascii_case(&self.config.client_id)
            {
                return Err(identity_not_found(selector.name));
            }
        }
        let token = self
            .tokens
            .get(&scope)
            .await
            .map_err(|e| Refusal::from_error(&e))?;
        let claims = IdentityClaims::of(token.secret());
        for selector in &query.selectors {
            let own = match selector.kind {
                SelectorKind::Client => continue,
                SelectorKind::Object => claims.object_id.as_deref(),
                SelectorKind::Resource => claims.resource_id.as_deref(),
            };
            if !own.is_some_and(|own| own.eq_ignore_ascii_case(&selector.value)) {
                return Err(identity_not_found(selector.name));
            }
        }
        tracing::debug!(path = ?protocol, %scope, "token served");
        Ok(token_response(
            protocol,
            &token,
            resource.trim(),
            &self.config.client_id,
            claims.not_before,
        ))
    }

    /// IMDS' request-forgery guards: `Metadata: true`, and no `X-Forwarded-For` (a
    /// request relayed by a proxy is not the workload's own).
    fn check_imds(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if !self.config.imds {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the IMDS endpoint is turned off on this sidecar; use IDENTITY_ENDPOINT",
            ));
        }
        let metadata = headers
            .get("metadata")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if !metadata {
            return Err(Refusal::bad_request(
                "Required metadata header not specified",
            ));
        }
        if headers.contains_key("x-forwarded-for") {
            return Err(Refusal::bad_request(
                "requests relayed by a proxy (X-Forwarded-For) are not accepted",
            ));
        }
        Ok(())
    }

    /// App Service's guard: `X-IDENTITY-HEADER` equal to `IDENTITY_HEADER`.
    fn check_app_service(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(secret) = &self.config.identity_header else {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the App Service endpoint is off: IDENTITY_HEADER is not set for this sidecar",
            ));
        };
        let given = headers
            .get("x-identity-header")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !constant_time_eq(given, secret.as_bytes()) {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized_client",
                "the X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER",
            ));
        }
        Ok(())
    }
}

fn identity_not_found(selector: &str) -> Refusal {
    Refusal::bad_request(format!(
        "Identity not found: the {selector} given does not name the identity assigned to this pod"
    ))
}

/// Compares without an early exit, so the time taken does not tell how much of a
/// guess was right (the length may show; the secret is a fixed-length random value).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, SystemTime};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use keyless_credential::{AccessToken, BoxFuture, Error, TokenCredential};
    use serde_json::Value;

    use super::*;

    const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
    const OID: &str = "aaaaaaaa-0000-0000-0000-000000000001";
    const MIRID: &str = "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app";

    /// Issues a JWT-shaped token naming `OID`/`MIRID` for any scope, or a refusal.
    #[derive(Debug, Default)]
    struct Fake {
        calls: AtomicU32,
        refuse: bool,
    }

    impl TokenCredential for Fake {
        fn get_token<'a>(&'a self, scope: &'a str) -> BoxFuture<'a, Result<AccessToken, Error>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.refuse {
                    let body = serde_json::json!({
                        "error": "invalid_client",
                        "error_description": "AADSTS700024: Client assertion is not within its valid time range.",
                        "error_codes": [700024],
                        "correlation_id": "corr-1",
                    });
                    return Err(service_error(401, &body));
                }
                let payload = serde_json::json!({"oid": OID, "xms_mirid": MIRID, "nbf": 1_700_000_000u64, "aud": scope});
                let jwt = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload.to_string()));
                Ok(AccessToken::new(
                    jwt,
                    SystemTime::now() + Duration::from_secs(3600),
                ))
            })
        }
    }

    fn service_error(status: u16, body: &Value) -> Error {
        Error::Service(Box::new(keyless_credential::ServiceError::from_response(
            "https://keyless.test/t/oauth2/v2.0/token",
            status,
            body.to_string().as_bytes(),
        )))
    }

    fn sidecar(fake: Arc<Fake>, header: Option<&str>) -> Sidecar {
        Sidecar::new(
            SidecarConfig {
                client_id: CLIENT.into(),
                identity_header: header.map(str::to_owned),
                imds: true,
            },
            TokenSource::new(fake, None, Duration::from_secs(2)),
        )
    }

    async fn call(s: &Sidecar, uri: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = Request::get(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(()).unwrap_or_else(|e| unreachable!("{e}"));
        let response = s.handle(request).await;
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_else(|e| unreachable!("{e}")),
        )
    }

    const META: &[(&str, &str)] = &[("Metadata", "true")];
    const IMDS: &str = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

    #[tokio::test]
    async fn imds_answers_string_fields_on_both_path_forms() {
        let s = sidecar(Arc::new(Fake::default()), None);
        for uri in [IMDS.to_owned(), IMDS.replacen("token?", "token/?", 1)] {
            let (status, body) = call(&s, &uri, META).await;
            assert_eq!(status, 200, "{uri}: {body}");
            for field in [
                "access_token",
                "client_id",
                "expires_in",
                "expires_on",
                "ext_expires_in",
                "not_before",
                "resource",
                "token_type",
            ] {
                assert!(body[field].is_string(), "{field}: {body}");
            }
            assert_eq!(body["resource"], "https://vault.azure.net");
            assert_eq!(body["client_id"], CLIENT);
            assert_eq!(body["not_before"], "1700000000");
            let expires_in: u64 = body["expires_in"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            assert!((3590..=3600).contains(&expires_in), "{body}");
        }
    }

    #[tokio::test]
    async fn imds_guards_come_before_any_exchange() {
        let fake = Arc::new(Fake::default());
        let s = sidecar(fake.clone(), None);
        // The JavaScript probe: no query, no header.
        let (status, body) = call(&s, "/metadata/identity/oauth2/token", &[]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request"))
        );
        assert_eq!(
            body["error_description"],
            "Required metadata header not specified"
        );
        // The Python probe: the query without the header.
        assert_eq!(call(&s, IMDS, &[]).await.0, 400);
        assert_eq!(call(&s, IMDS, &[("Metadata", "false")]).await.0, 400);
        assert_eq!(
            call(
                &s,
                IMDS,
                &[("Metadata", "true"), ("X-Forwarded-For", "1.2.3.4")]
            )
            .await
            .0,
            400
        );
        let (status, body) = call(
            &s,
            "/metadata/identity/oauth2/token?api-version=2018-02-01",
            META,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = call(&s, &format!("{IMDS}&client_id=someone-else"), META).await;
        assert_eq!(status, 400);
        let long = format!("{IMDS}&x={}", "a".repeat(MAX_QUERY));
        assert_eq!(call(&s, &long, META).await.0, 400);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn own_identity_is_accepted_by_every_selector_and_others_refused() {
        let s = sidecar(Arc::new(Fake::default()), Some("secret"));
        let upper = CLIENT.to_ascii_uppercase();
        let own = [
            ("client_id", upper.as_str()),
            ("object_id", OID),
            ("principal_id", OID),
            ("msi_res_id", MIRID),
            ("mi_res_id", &MIRID.to_ascii_lowercase()),
        ];
        for (name, value) in own {
            let q = format!("{name}={}", value.replace('/', "%2F"));
            let (status, body) = call(&s, &format!("{IMDS}&{q}"), META).await;
            assert_eq!(status, 200, "{q}: {body}");
            let uri =
                format!("/msi/token?api-version=2019-08-01&resource=https://vault.azure.net&{q}");
            let (status, body) = call(&s, &uri, &[("X-IDENTITY-HEADER", "secret")]).await;
            assert_eq!(status, 200, "{q}: {body}");
        }
        for name in [
            "object_id",
            "principal_id",
            "msi_res_id",
            "mi_res_id",
            "client_id",
        ] {
            let q = format!("{name}=00000000-0000-0000-0000-00000000dead");
            let (status, body) = call(&s, &format!("{IMDS}&{q}"), META).await;
            assert_eq!(status, 400, "{q}");
            assert!(
                body["error_description"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("Identity not found")),
                "{body}"
            );
            let uri = format!("/msi/token?api-version=2019-08-01&resource=r&{q}");
            let (status, body) = call(&s, &uri, &[("X-IDENTITY-HEADER", "secret")]).await;
            assert_eq!(status, 400, "{q}");
            assert_eq!(body["statusCode"], 400, "{body}");
            assert!(
                body["message"].as_str().is_some_and(|m| m.contains(name)),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn app_service_checks_the_secret_and_answers_its_shape() {
        let s = sidecar(Arc::new(Fake::default()), Some("secret"));
        let uri = "/msi/token?api-version=2019-08-01&resource=https://management.azure.com/";
        let (status, body) = call(&s, uri, &[("X-IDENTITY-HEADER", "secret")]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["resource"], "https://management.azure.com/");
        assert_eq!(body["client_id"], CLIENT);
        assert!(
            body["expires_on"]
                .as_str()
                .is_some_and(|v| v.parse::<u64>().is_ok()),
            "{body}"
        );
        for headers in [
            &[][..],
            &[("X-IDENTITY-HEADER", "secreT")][..],
            &[("X-IDENTITY-HEADER", "secret2")][..],
        ] {
            let (status, body) = call(&s, uri, headers).await;
            assert_eq!(status, 401, "{headers:?}");
            assert_eq!(body["statusCode"], 401);
            assert!(body["correlationId"].is_string());
        }
        let (status, _) = call(
            &s,
            "/msi/token?api-version=2017-09-01&resource=r",
            &[("X-IDENTITY-HEADER", "secret")],
        )
        .await;
        assert_eq!(status, 400);
        // Off without IDENTITY_HEADER.
        let off = sidecar(Arc::new(Fake::default()), None);
        assert_eq!(call(&off, uri, &[("X-IDENTITY-HEADER", "")]).await.0, 404);
    }

    #[tokio::test]
    async fn keyless_refusals_pass_through_as_4xx_with_the_aadsts_text() {
        let fake = Arc::new(Fake {
            refuse: true,
            ..Fake::default()
        });
        let s = sidecar(fake.clone(), Some("secret"));
        let (status, body) = call(&s, IMDS, META).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| d.starts_with("AADSTS700024"))
        );
        assert_eq!(body["error_codes"][0], 700024);
        assert_eq!(body["correlation_id"], "corr-1");
        let (status, body) = call(
            &s,
            "/msi/token?api-version=2019-08-01&resource=https://vault.azure.net",
            &[("X-IDENTITY-HEADER", "secret")],
        )
        .await;
        assert_eq!(status, 401, "{body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|d| d.starts_with("AADSTS700024"))
        );
        assert_eq!(body["correlationId"], "corr-1");
        // The same scope within the failure memory: one exchange.
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn other_paths_and_methods_are_refused() {
        let s = sidecar(Arc::new(Fake::default()), Some("secret"));
        assert_eq!(call(&s, "/", META).await.0, 404);
        assert_eq!(
            call(&s, "/metadata/instance?api-version=2021-02-01", META)
                .await
                .0,
            404
        );
        let request = Request::post(IMDS)
            .header("Metadata", "true")
            .body(())
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(s.handle(request).await.status().as_u16(), 405);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}
