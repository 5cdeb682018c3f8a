//! One in-process Keyless (in-memory SQLite, the real router) shared by the HTTP targets:
//! built once per process, then every input is one request through
//! `tower::ServiceExt::oneshot`, so paths, headers and bodies take the same code a
//! client's request takes after hyper.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{HeaderMap, Request, StatusCode};
use keyless_core::federation::{FetchError, MetadataFetcher};
use keyless_core::{Keyless, PublicUrl, Settings, SystemClock};
use keyless_jose::{Alg, JwkSet, Kek, SigningKey};
use keyless_server::AppState;
use keyless_store_sql::sqlite::SqliteStore;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The issuer of the workload assertions (`@ASSERTION@`), served by [`StaticIssuer`].
pub const ISSUER: &str = "https://issuer.fuzz.example";
/// Subject of `@ASSERTION@`, which the federated credential `fic` of `fuzz-id` trusts.
pub const SUBJECT: &str = "system:serviceaccount:default:workload";
/// Resource group, identity and vault the setup creates.
pub const RG: &str = "fuzz-rg";
/// The identity.
pub const IDENTITY: &str = "fuzz-id";
/// The vault (`fuzzkv.vault.localhost:8443`), with one secret `db`.
pub const VAULT: &str = "fuzzkv";

/// Discovery and JWKS of [`ISSUER`], without any network.
struct StaticIssuer(JwkSet);

#[async_trait::async_trait]
impl MetadataFetcher for StaticIssuer {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let doc = if url.ends_with("/.well-known/openid-configuration") {
            json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/keys")})
        } else {
            serde_json::to_value(&self.0).unwrap_or_default()
        };
        Ok(serde_json::to_vec(&doc).unwrap_or_default())
    }
}

/// The shared server.
pub struct Server {
    rt: tokio::runtime::Runtime,
    router: Router,
    values: Vec<(&'static [u8], Vec<u8>)>,
}

/// The server of this process, built on first use.
pub fn get() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::build)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Server {
    fn build() -> Server {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (router, values) = rt.block_on(Self::setup());
        Server { rt, router, values }
    }

    async fn setup() -> (Router, Vec<(&'static [u8], Vec<u8>)>) {
        let issuer_key = SigningKey::generate(Alg::RS256, "fuzz-k1".into()).expect("key");
        let fetcher = Arc::new(StaticIssuer(JwkSet {
            keys: vec![issuer_key.public_jwk()],
        }));
        let store = Arc::new(SqliteStore::open("sqlite::memory:").await.expect("store"));
        let settings = Settings::new(PublicUrl {
            host: "localhost".into(),
            port: 8443,
        });
        let keyless = Keyless::open(
            store,
            Arc::new(SystemClock),
            settings,
            Kek::generate().expect("kek"),
            fetcher,
        )
        .await
        .expect("open");
        let admin = keyless
            .bootstrap()
            .await
            .expect("bootstrap")
            .expect("admin");
        // Rate limits off: the fuzzer is one client sending as fast as it can; a 429
        // would only hide the code behind it.
        let router = keyless_server::build_router(AppState::new(
            Arc::new(keyless),
            &keyless_server::throttle::RateLimits::off(),
        ));
        let token = |scope: String| {
            let router = router.clone();
            let (client, secret, tenant) = (
                admin.client_id.clone(),
                admin.client_secret.clone(),
                admin.tenant_id.clone(),
            );
            async move {
                let form = format!(
                    "grant_type=client_credentials&client_id={client}&client_secret={secret}&scope={scope}"
                );
                let req = Request::post(format!("/{tenant}/oauth2/v2.0/token"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .expect("request");
                let (status, _, body) = send(&router, req).await;
                assert_eq!(status, 200, "token: {body}");
                body["access_token"].as_str().expect("token").to_owned()
            }
        };
        let arm_token = token("https://localhost:8443/.default".into()).await;
        let vault_token = token("https://vault.localhost:8443/.default".into()).await;
        let arm = |method: &str, path: String, body: Value| {
            let router = router.clone();
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {arm_token}"))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("request");
            async move {
                let (status, _, body) = send(&router, req).await;
                assert!(status.is_success(), "setup: {status} {body}");
                body
            }
        };
        let rg = format!(
            "/subscriptions/{}/resourceGroups/{RG}",
            admin.subscription_id
        );
        arm(
            "PUT",
            format!("{rg}?api-version=2021-04-01"),
            json!({"location": "westeurope"}),
        )
        .await;
        let id_path =
            format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{IDENTITY}");
        let identity = arm(
            "PUT",
            format!("{id_path}?api-version=2023-01-31"),
            json!({"location": "westeurope"}),
        )
        .await;
        let identity_client = identity["properties"]["clientId"]
            .as_str()
            .expect("clientId")
            .to_owned();
        arm(
            "PUT",
            format!("{id_path}/federatedIdentityCredentials/fic?api-version=2023-01-31"),
            json!({"properties": {"issuer": ISSUER, "subject": SUBJECT,
                   "audiences": ["api://AzureADTokenExchange"]}}),
        )
        .await;
        arm(
            "PUT",
            format!("{rg}/providers/Microsoft.KeyVault/vaults/{VAULT}?api-version=2023-07-01"),
            json!({"location": "westeurope"}),
        )
        .await;
        let req = Request::put("/secrets/db?api-version=7.6")
            .header("host", format!("{VAULT}.vault.localhost:8443"))
            .header("authorization", format!("Bearer {vault_token}"))
            .header("content-type", "application/json")
            .body(Body::from(r#"{"value":"s3cret"}"#))
            .expect("request");
        let (status, _, body) = send(&router, req).await;
        assert!(status.is_success(), "secret: {status} {body}");
        let t = now();
        let assertion = issuer_key
            .sign_jwt(
                "JWT",
                &json!({"iss": ISSUER, "sub": SUBJECT, "aud": "api://AzureADTokenExchange",
                        "iat": t, "nbf": t, "exp": t + 86_400, "jti": "fuzz"}),
            )
            .expect("assertion");
        let values: Vec<(&'static [u8], Vec<u8>)> = vec![
            (b"@TENANT@", admin.tenant_id.into_bytes()),
            (b"@SUB@", admin.subscription_id.into_bytes()),
            (b"@CLIENT_ID@", admin.client_id.into_bytes()),
            (b"@CLIENT_SECRET@", admin.client_secret.into_bytes()),
            (b"@IDENTITY_CLIENT_ID@", identity_client.into_bytes()),
            (b"@ASSERTION@", assertion.into_bytes()),
            (b"@ARM_TOKEN@", arm_token.into_bytes()),
            (b"@VAULT_TOKEN@", vault_token.into_bytes()),
        ];
        (router, values)
    }

    /// `data` with the placeholders replaced by this server's values.
    pub fn substitute(&self, data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        for (name, value) in &self.values {
            if crate::request::find(&out, name).is_some() {
                out = crate::request::replace(&out, name, value);
            }
        }
        out
    }

    /// Sends one input (see [`crate::request`]) and checks the answer.
    pub fn run(&self, data: &[u8]) {
        let Some(req) = crate::request::parse(data, |b| self.substitute(b)) else {
            return;
        };
        let path = req.uri().path().to_owned();
        let (status, headers, body) = self.rt.block_on(send(&self.router, req));
        if std::env::var_os("KEYLESS_FUZZ_DEBUG").is_some() {
            eprintln!("{status} {path}: {}", clip(&body.to_string()));
        }
        check(&path, status, &headers, &body);
    }
}

/// What every answer must be, whatever the request: no internal error, and every error
/// in a protocol's JSON shape.
fn check(path: &str, status: StatusCode, headers: &HeaderMap, body: &Value) {
    assert!(
        status != StatusCode::INTERNAL_SERVER_ERROR,
        "500 for {path}: {headers:?} {body}"
    );
    if status.is_client_error() || status.is_server_error() {
        assert!(
            body.is_object(),
            "{status} for {path} without a JSON error body: {headers:?} {body}"
        );
    }
}

/// One request through the router; the body as JSON (a string when it is not JSON,
/// `null` when empty).
async fn send(router: &Router, mut req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    // What hyper's connection gives the token endpoint: the client's address; a new one
    // for each request, so that per-address limits do not turn inputs into throttled
    // requests.
    static NEXT: AtomicU32 = AtomicU32::new(0x0a00_0001);
    let ip = std::net::Ipv4Addr::from(NEXT.fetch_add(1, Ordering::Relaxed));
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (parts.status, parts.headers, value)
}

fn clip(s: &str) -> &str {
    s.get(..200).unwrap_or(s)
}
