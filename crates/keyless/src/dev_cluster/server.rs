//! The dev cluster's HTTPS API.
//!
//! | route | what |
//! |---|---|
//! | `GET {issuer-path}/.well-known/openid-configuration` | discovery, as the kube-apiserver serves it |
//! | `GET {issuer-path}/openid/v1/jwks` | the published keys (`application/jwk-set+json`) |
//! | `GET /healthz` | `ok` |
//! | `POST /mint` | a token on demand (loopback listeners only) |
//! | `POST /rotate` | rotate the signing key now (loopback only) |
//!
//! `/mint` and `/rotate` hand out credentials and change the keys without any
//! authentication, so they exist only when the listener is bound to a loopback
//! address, where only local processes can reach them; otherwise they answer 403.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::cluster::DevCluster;
use super::issuer::TokenRequest;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024;

/// What `/mint` fills in when the request leaves a field out: the server's token file
/// settings.
#[derive(Debug, Clone)]
pub struct MintDefaults {
    /// `namespace` default.
    pub namespace: String,
    /// `serviceAccount` default.
    pub service_account: String,
    /// `audiences` default.
    pub audiences: Vec<String>,
    /// `expirationSeconds` default.
    pub expiration_seconds: i64,
}

struct AppState {
    cluster: Arc<DevCluster>,
    defaults: MintDefaults,
    local_api: bool,
}

/// The router. `issuer_path` is `""` or a path starting with `/` without a trailing
/// slash (already validated); `local_api` enables `/mint` and `/rotate`.
pub fn router(
    cluster: Arc<DevCluster>,
    issuer_path: &str,
    defaults: MintDefaults,
    local_api: bool,
) -> Router {
    let state = Arc::new(AppState {
        cluster,
        defaults,
        local_api,
    });
    Router::new()
        .route(
            &format!("{issuer_path}/.well-known/openid-configuration"),
            get(discovery),
        )
        .route(&format!("{issuer_path}/openid/v1/jwks"), get(jwks))
        .route("/healthz", get(|| async { "ok" }))
        .route("/mint", post(mint))
        .route("/rotate", post(rotate))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route".to_owned(),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Caching as the kube-apiserver does for both documents.
const CACHE_CONTROL: &str = "public, max-age=3600";

fn json_with(content_type: &'static str, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(CACHE_CONTROL),
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "message": message})),
    )
        .into_response()
}

async fn discovery(State(s): State<Arc<AppState>>) -> Response {
    json_with("application/json", &s.cluster.discovery())
}

async fn jwks(State(s): State<Arc<AppState>>) -> Response {
    json_with("application/jwk-set+json", &s.cluster.jwks())
}

fn refuse_remote(s: &AppState, route: &str) -> Option<Response> {
    (!s.local_api).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{route} is only served when keyless dev-cluster listens on a loopback address (e.g. --listen 127.0.0.1:8444); use `keyless dev-cluster mint` on the host instead"
            ),
        )
    })
}

/// Body of `POST /mint`; every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MintBody {
    namespace: Option<String>,
    service_account: Option<String>,
    audiences: Option<Vec<String>>,
    expiration_seconds: Option<i64>,
    pod_name: Option<String>,
}

#[derive(Serialize)]
struct MintResponse {
    token: String,
}

async fn mint(State(s): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    if let Some(refused) = refuse_remote(&s, "POST /mint") {
        return refused;
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return error(e.status(), "invalid_request", e.body_text()),
    };
    let parsed: MintBody = if body.iter().all(u8::is_ascii_whitespace) {
        MintBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!(
                        "the body must be a JSON object with namespace, serviceAccount, audiences, expirationSeconds, podName: {e}"
                    ),
                );
            }
        }
    };
    let d = &s.defaults;
    let request = TokenRequest {
        namespace: parsed.namespace.unwrap_or_else(|| d.namespace.clone()),
        service_account: parsed
            .service_account
            .unwrap_or_else(|| d.service_account.clone()),
        pod_name: parsed.pod_name,
        audiences: parsed.audiences.unwrap_or_else(|| d.audiences.clone()),
        expiration_seconds: parsed.expiration_seconds.unwrap_or(d.expiration_seconds),
    };
    if let Err(message) = request.validate() {
        return error(StatusCode::BAD_REQUEST, "invalid_request", message);
    }
    match s.cluster.mint(&request) {
        Ok(token) => axum::Json(MintResponse { token }).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{e:#}"),
        ),
    }
}

#[derive(Serialize)]
struct RotateResponse {
    /// The new current kid.
    kid: String,
    /// Every published kid, current first.
    keys: Vec<String>,
}

async fn rotate(State(s): State<Arc<AppState>>) -> Response {
    if let Some(refused) = refuse_remote(&s, "POST /rotate") {
        return refused;
    }
    match s.cluster.rotate("POST /rotate").await {
        Ok(keys) => axum::Json(RotateResponse {
            kid: keys.first().cloned().unwrap_or_default(),
            keys,
        })
        .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{e:#}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use keyless_core::SystemClock;
    use keyless_jose::{Alg, JwkSet, UnverifiedJwt, VerifyingKey};
    use tower::ServiceExt;

    fn app(dir: &std::path::Path, local: bool) -> Router {
        let cluster = DevCluster::open(
            dir,
            "https://localhost:8444/c1".into(),
            Arc::new(SystemClock),
            None,
        )
        .unwrap();
        let defaults = MintDefaults {
            namespace: "default".into(),
            service_account: "workload-identity-sa".into(),
            audiences: vec!["api://AzureADTokenExchange".into()],
            expiration_seconds: 3600,
        };
        router(Arc::new(cluster), "/c1", defaults, local)
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, Vec<u8>, Option<String>) {
        let res = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_owned()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = res.status();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, bytes.to_vec(), ct)
    }

    async fn jwks_keys(app: &Router) -> Vec<VerifyingKey> {
        let (_, body, _) = call(app, "GET", "/c1/openid/v1/jwks", "").await;
        VerifyingKey::from_jwk_set(&JwkSet::parse(&body, 100).unwrap()).0
    }

    #[tokio::test]
    async fn discovery_jwks_mint_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), true);

        let (status, body, ct) =
            call(&app, "GET", "/c1/.well-known/openid-configuration", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some("application/json"));
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["issuer"], "https://localhost:8444/c1");
        assert_eq!(doc["jwks_uri"], "https://localhost:8444/c1/openid/v1/jwks");

        let (status, _, ct) = call(&app, "GET", "/c1/openid/v1/jwks", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some("application/jwk-set+json"));
        assert_eq!(
            call(&app, "GET", "/.well-known/openid-configuration", "")
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(call(&app, "GET", "/healthz", "").await.0, StatusCode::OK);

        let (status, body, _) = call(
            &app,
            "POST",
            "/mint",
            r#"{"namespace":"ns1","serviceAccount":"sa1","audiences":["a","b"],"expirationSeconds":600,"podName":"p1"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let token = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let jwt = UnverifiedJwt::parse(&token, 16 * 1024).unwrap();
        jwt.verify_with(&jwks_keys(&app).await, &[Alg::RS256])
            .unwrap();
        let claims = jwt.claims();
        assert_eq!(claims["sub"], "system:serviceaccount:ns1:sa1");
        assert_eq!(claims["aud"], serde_json::json!(["a", "b"]));
        assert_eq!(claims["iss"], "https://localhost:8444/c1");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            600
        );
        assert_eq!(claims["kubernetes.io"]["pod"]["name"], "p1");

        // Defaults fill the gaps; no podName means no pod claim.
        let (status, body, _) = call(&app, "POST", "/mint", "").await;
        assert_eq!(status, StatusCode::OK);
        let token = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let jwt = UnverifiedJwt::parse(&token, 16 * 1024).unwrap();
        assert_eq!(
            jwt.claims()["sub"],
            "system:serviceaccount:default:workload-identity-sa"
        );
        assert_eq!(
            jwt.claims()["aud"],
            serde_json::json!(["api://AzureADTokenExchange"])
        );
        assert!(jwt.claims()["kubernetes.io"].get("pod").is_none());

        // Bad requests say what is wrong.
        for (body, needle) in [
            (r#"{"expirationSeconds":60}"#, "600"),
            (r#"{"audience":"x"}"#, "audience"),
            (r#"{"namespace":"Bad_NS"}"#, "namespace"),
            ("not json", "JSON"),
        ] {
            let (status, text, _) = call(&app, "POST", "/mint", body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            let text = String::from_utf8(text).unwrap();
            assert!(text.contains(needle), "{text}");
        }
        let (status, _, _) = call(&app, "POST", "/mint", &"x".repeat(MAX_BODY + 1)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

        // Rotation: old token still verifies, new tokens use the new kid.
        let (status, body, _) = call(&app, "POST", "/rotate", "").await;
        assert_eq!(status, StatusCode::OK);
        let rotated: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(rotated["keys"].as_array().unwrap().len(), 2);
        assert_eq!(rotated["keys"][1], jwt.kid().unwrap());
        let keys = jwks_keys(&app).await;
        assert_eq!(keys.len(), 2);
        jwt.verify_with(&keys, &[Alg::RS256]).unwrap();
        let (_, body, _) = call(&app, "POST", "/mint", "{}").await;
        let token = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let new = UnverifiedJwt::parse(&token, 16 * 1024).unwrap();
        assert_eq!(Some(rotated["kid"].as_str().unwrap()), new.kid());
        new.verify_with(&keys, &[Alg::RS256]).unwrap();
    }

    #[tokio::test]
    async fn mint_and_rotate_are_refused_off_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), false);
        for route in ["/mint", "/rotate"] {
            let (status, body, _) = call(&app, "POST", route, "{}").await;
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert!(String::from_utf8(body).unwrap().contains("loopback"));
        }
        assert_eq!(
            call(&app, "GET", "/c1/openid/v1/jwks", "").await.0,
            StatusCode::OK
        );
    }
}
