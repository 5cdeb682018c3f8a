//! The credentials against a scripted token service: a tiny HTTPS server on loopback
//! with its own CA, which records every request and answers from a script. Covers the
//! wire format, caching, refresh timing (injected clock), single flight, token file
//! rotation, retries with `Retry-After`, and error reporting.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keyless_credential::{
    ClientAssertionCredential, ClientSecretCredential, CredentialOptions, Error, ManualClock,
    RefreshPolicy, RetryPolicy, TokenCache, TokenCredential, WorkloadIdentityCredential,
    WorkloadIdentityOptions,
};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "00000000-0000-0000-0000-0000000000c1";
const SCOPE: &str = "https://vault.example/.default";

/// One scripted answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: body.to_string(),
        }
    }

    fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    fn token(name: &str, expires_in: i64) -> Reply {
        Reply::json(
            200,
            serde_json::json!({"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": name}),
        )
    }

    fn entra_error(status: u16, error: &str, code: u64, text: &str) -> Reply {
        Reply::json(
            status,
            serde_json::json!({
                "error": error,
                "error_description": format!("AADSTS{code}: {text} Trace ID: 0b1d Correlation ID: c0ffee Timestamp: 2025-01-01 00:00:00Z"),
                "error_codes": [code],
                "timestamp": "2025-01-01 00:00:00Z",
                "trace_id": "0b1d",
                "correlation_id": "c0ffee",
                "error_uri": format!("https://login.example/error?code={code}"),
            }),
        )
    }
}

/// A recorded request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    form: HashMap<String, String>,
    request_id: Option<String>,
    at: Instant,
}

#[derive(Default)]
struct FakeState {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<VecDeque<Reply>>,
    /// Answer with this when the script is empty (`token-N`, an hour).
    lifetime: Mutex<i64>,
    delay: Mutex<Duration>,
}

/// A running fake token service.
struct Fake {
    state: Arc<FakeState>,
    authority: String,
    ca_pem: String,
    dir: tempfile::TempDir,
}

impl Fake {
    async fn start() -> Fake {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let state = Arc::new(FakeState::default());
        *state.lifetime.lock().unwrap() = 3600;
        let router = axum::Router::new()
            .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
            .with_state(state.clone());
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = axum_server::from_tcp_rustls(
            listener,
            axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls)),
        )
        .unwrap();
        tokio::spawn(async move {
            let _ = server.serve(router.into_make_service()).await;
        });
        Fake {
            state,
            authority: format!("https://localhost:{port}"),
            ca_pem: ca.pem(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    fn delay(&self, d: Duration) {
        *self.state.delay.lock().unwrap() = d;
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.state.seen.lock().unwrap().len()
    }

    /// Options trusting this server, with fast retries.
    fn options(&self) -> CredentialOptions {
        CredentialOptions::new()
            .authority_host(&self.authority)
            .ca_pem(self.ca_pem.clone())
            .retry_policy(
                RetryPolicy::default()
                    .initial_delay(Duration::from_millis(10))
                    .max_delay(Duration::from_millis(50)),
            )
    }

    /// A token file in a scratch directory.
    fn token_file(&self, content: &str) -> PathBuf {
        let path = self.dir.path().join("azure-identity-token");
        replace_atomically(&path, content);
        path
    }

    fn workload(
        &self,
        token_file: &Path,
        options: CredentialOptions,
    ) -> WorkloadIdentityCredential {
        WorkloadIdentityCredential::new(
            WorkloadIdentityOptions::new()
                .tenant_id(TENANT)
                .client_id(CLIENT)
                .token_file_path(token_file)
                .options(options),
        )
        .unwrap()
    }
}

/// Like the kubelet: write a new file, then rename it over the old one.
fn replace_atomically(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn token(
    State(state): State<Arc<FakeState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let n = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            path: uri.path().to_owned(),
            form,
            request_id: headers
                .get("client-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            at: Instant::now(),
        });
        seen.len()
    };
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let scripted = state.script.lock().unwrap().pop_front();
    let reply = scripted
        .unwrap_or_else(|| Reply::token(&format!("token-{n}"), *state.lifetime.lock().unwrap()));
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/json; charset=utf-8")],
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

fn start_time() -> SystemTime {
    SystemTime::now()
}

#[tokio::test]
async fn sends_what_the_azure_sdks_send_and_caches_the_token() {
    let fake = Fake::start().await;
    let file = fake.token_file("header.payload.signature\n");
    let credential = fake.workload(&file, fake.options());

    let first = credential.get_token(SCOPE).await.unwrap();
    assert_eq!(first.secret(), "token-1");
    let lifetime = first
        .expires_on()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(lifetime > Duration::from_secs(3590) && lifetime <= Duration::from_secs(3600));

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, format!("/{TENANT}/oauth2/v2.0/token"));
    let form = &seen[0].form;
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], CLIENT);
    assert_eq!(form["scope"], SCOPE);
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(
        form["client_assertion"], "header.payload.signature",
        "trimmed"
    );
    assert!(!form.contains_key("client_secret"));
    assert!(
        seen[0]
            .request_id
            .as_deref()
            .is_some_and(|id| id.len() == 36)
    );

    // Cached: no second request, same token; another scope is another entry.
    for _ in 0..5 {
        assert_eq!(credential.get_token(SCOPE).await.unwrap(), first);
    }
    assert_eq!(fake.count(), 1);
    let other = credential
        .get_token("https://other.example/.default")
        .await
        .unwrap();
    assert_eq!(other.secret(), "token-2");
    assert_eq!(fake.count(), 2);
    // Clones share the cache.
    assert_eq!(credential.clone().get_token(SCOPE).await.unwrap(), first);
    assert_eq!(fake.count(), 2);
}

#[tokio::test]
async fn refreshes_ahead_of_expiry_by_the_injected_clock() {
    let fake = Fake::start().await;
    let file = fake.token_file("assertion");
    let clock = Arc::new(ManualClock::new(start_time()));
    let credential = fake.workload(&file, fake.options().clock(clock.clone()));

    let first = credential.get_token(SCOPE).await.unwrap();
    assert_eq!(
        first.refresh_on(),
        clock_now(&clock) + Duration::from_secs(1800)
    );
    clock.advance(Duration::from_secs(1799));
    assert_eq!(
        credential.get_token(SCOPE).await.unwrap().secret(),
        "token-1"
    );
    assert_eq!(fake.count(), 1);
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        credential.get_token(SCOPE).await.unwrap().secret(),
        "token-2"
    );
    assert_eq!(fake.count(), 2);

    // The service's refresh_in wins over the policy.
    fake.script([Reply::json(
        200,
        serde_json::json!({"token_type": "Bearer", "expires_in": 86_400, "refresh_in": 600, "access_token": "long"}),
    )]);
    let long = credential
        .get_token("https://long.example/.default")
        .await
        .unwrap();
    assert_eq!(
        long.refresh_on(),
        clock_now(&clock) + Duration::from_secs(600)
    );
    clock.advance(Duration::from_secs(601));
    assert_eq!(
        credential
            .get_token("https://long.example/.default")
            .await
            .unwrap()
            .secret(),
        "token-4"
    );

    // A policy that refreshes at 90 % of the lifetime.
    let late = fake.workload(
        &file,
        fake.options().clock(clock.clone()).refresh_policy(
            RefreshPolicy::default()
                .lifetime_fraction(0.9)
                .before_expiry(Duration::from_secs(60)),
        ),
    );
    let t = late.get_token(SCOPE).await.unwrap();
    assert_eq!(
        t.refresh_on(),
        clock_now(&clock) + Duration::from_secs(3240)
    );
}

fn clock_now(clock: &ManualClock) -> SystemTime {
    use keyless_credential::Clock;
    clock.now()
}

#[tokio::test]
async fn a_failed_early_refresh_keeps_serving_the_valid_token() {
    let fake = Fake::start().await;
    let file = fake.token_file("assertion");
    let clock = Arc::new(ManualClock::new(start_time()));
    let credential = fake.workload(
        &file,
        fake.options()
            .clock(clock.clone())
            .retry_policy(RetryPolicy::none()),
    );
    assert_eq!(
        credential.get_token(SCOPE).await.unwrap().secret(),
        "token-1"
    );
    clock.advance(Duration::from_secs(2000));
    fake.script([Reply::entra_error(
        503,
        "temporarily_unavailable",
        0,
        "down",
    )]);
    assert_eq!(
        credential.get_token(SCOPE).await.unwrap().secret(),
        "token-1"
    );
    assert_eq!(fake.count(), 2);
    // Past expiry the failure would be the caller's; here the next try succeeds.
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        credential.get_token(SCOPE).await.unwrap().secret(),
        "token-3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_cause_one_request() {
    let fake = Fake::start().await;
    let file = fake.token_file("assertion");
    let credential = Arc::new(fake.workload(&file, fake.options()));
    // Keep the request in flight long enough for every caller to arrive.
    fake.delay(Duration::from_millis(300));
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (credential, barrier) = (credential.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                credential
                    .get_token(SCOPE)
                    .await
                    .map(|t| t.secret().to_owned())
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), "token-1");
    }
    assert_eq!(fake.count(), 1, "100 concurrent callers, one token request");

    // The same through the trait object, with a failing service: one request, and
    // every caller gets its error.
    let dyn_credential: Arc<dyn TokenCredential> =
        Arc::new(fake.workload(&file, fake.options().retry_policy(RetryPolicy::none())));
    fake.script([Reply::entra_error(
        401,
        "invalid_client",
        700213,
        "No matching federated identity record found.",
    )]);
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (credential, barrier) = (dyn_credential.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                credential.get_token("https://new.example/.default").await
            })
        })
        .collect();
    for task in tasks {
        let error = task.await.unwrap().unwrap_err();
        assert_eq!(error.aadsts_codes(), &[700213]);
    }
    assert_eq!(fake.count(), 2);
}

#[tokio::test]
async fn a_rotated_token_file_is_used_for_the_next_request() {
    let fake = Fake::start().await;
    let file = fake.token_file("first.assertion.sig");
    let clock = Arc::new(ManualClock::new(start_time()));
    let credential = fake.workload(&file, fake.options().clock(clock.clone()));
    credential.get_token(SCOPE).await.unwrap();
    replace_atomically(&file, "second.assertion.sig");
    // Cached tokens need no file: the rotation alone sends nothing.
    credential.get_token(SCOPE).await.unwrap();
    assert_eq!(fake.count(), 1);
    clock.advance(Duration::from_secs(3500));
    credential.get_token(SCOPE).await.unwrap();
    let assertions: Vec<String> = fake
        .seen()
        .iter()
        .map(|s| s.form["client_assertion"].clone())
        .collect();
    assert_eq!(assertions, ["first.assertion.sig", "second.assertion.sig"]);

    // A file that disappeared is a clear error once a request is needed.
    std::fs::remove_file(&file).unwrap();
    let error = credential
        .get_token("https://x.example/.default")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::TokenFile { .. }), "{error}");
    assert!(error.to_string().contains("does not exist"), "{error}");
}

#[tokio::test]
async fn retries_honour_retry_after_then_succeed() {
    let fake = Fake::start().await;
    let file = fake.token_file("assertion");
    let credential = fake.workload(&file, fake.options());
    fake.script([
        Reply::entra_error(503, "temporarily_unavailable", 0, "busy")
            .with_header("retry-after", "1"),
        Reply::json(500, serde_json::json!({})),
    ]);
    let started = Instant::now();
    let token = credential.get_token(SCOPE).await.unwrap();
    assert_eq!(token.secret(), "token-3");
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    let waited = seen[1].at.duration_since(seen[0].at);
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 was honoured ({waited:?})"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // One logical request: the same client-request-id on every attempt.
    assert!(seen.iter().all(|s| s.request_id == seen[0].request_id));

    // 429 with an HTTP date (whole seconds: two from now is at least one).
    let when = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    fake.script([Reply::json(429, serde_json::json!({"error": "throttled"}))
        .with_header("retry-after", when)]);
    credential
        .get_token("https://b.example/.default")
        .await
        .unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 5);
    assert!(seen[4].at.duration_since(seen[3].at) >= Duration::from_millis(900));
}

#[tokio::test]
async fn retries_are_bounded_and_only_for_transient_statuses() {
    let fake = Fake::start().await;
    let file = fake.token_file("assertion");
    let credential = fake.workload(
        &file,
        fake.options().retry_policy(
            RetryPolicy::default()
                .max_retries(2)
                .initial_delay(Duration::from_millis(10))
                .max_retry_after(Duration::from_secs(5)),
        ),
    );
    // Exhausted: three attempts, then the last error with its count.
    fake.script(std::iter::repeat_n(
        Reply::json(502, serde_json::json!({})),
        3,
    ));
    let error = credential.get_token(SCOPE).await.unwrap_err();
    let service = error.service_error().unwrap();
    assert_eq!((service.status, service.attempts), (502, 3));
    assert_eq!(fake.count(), 3);

    // A Retry-After longer than the policy accepts ends the retries at once.
    fake.script([Reply::json(503, serde_json::json!({})).with_header("retry-after", "120")]);
    let error = credential.get_token(SCOPE).await.unwrap_err();
    let service = error.service_error().unwrap();
    assert_eq!(service.retry_after, Some(Duration::from_secs(120)));
    assert_eq!(service.attempts, 1);
    assert!(error.to_string().contains("retry after 120 s"), "{error}");
    assert_eq!(fake.count(), 4);

    // 400 and 401 are final.
    fake.script([Reply::entra_error(
        400,
        "invalid_request",
        90002,
        "Tenant 'x' not found.",
    )]);
    let error = credential.get_token(SCOPE).await.unwrap_err();
    assert_eq!(error.aadsts_codes(), &[90002]);
    assert_eq!(fake.count(), 5);
}

#[tokio::test]
async fn service_errors_carry_code_class_description_and_ids() {
    let fake = Fake::start().await;
    let file = fake.token_file("assertion");
    let credential = fake.workload(&file, fake.options());
    fake.script([Reply::entra_error(
        401,
        "invalid_client",
        700213,
        "No matching federated identity record found for presented assertion subject 'system:serviceaccount:default:other'.",
    )]);
    let error = credential.get_token(SCOPE).await.unwrap_err();
    let s = error.service_error().unwrap();
    assert_eq!(s.status, 401);
    assert_eq!(s.error.as_deref(), Some("invalid_client"));
    assert_eq!(s.error_codes, vec![700213]);
    assert_eq!(s.correlation_id.as_deref(), Some("c0ffee"));
    assert_eq!(s.trace_id.as_deref(), Some("0b1d"));
    assert!(
        s.error_uri
            .as_deref()
            .is_some_and(|u| u.ends_with("code=700213"))
    );
    let msg = error.to_string();
    assert!(
        msg.starts_with(&format!("token request to {}/{TENANT}/oauth2/v2.0/token failed: HTTP 401 invalid_client: AADSTS700213: No matching", fake.authority)),
        "{msg}"
    );

    // A body that is not Entra's: kept (short), with the id this client sent.
    fake.script([Reply {
        status: 404,
        headers: vec![],
        body: "no such route".into(),
    }]);
    let error = credential.get_token(SCOPE).await.unwrap_err();
    let s = error.service_error().unwrap();
    assert_eq!(s.body.as_deref(), Some("no such route"));
    assert_eq!(s.correlation_id, fake.seen().last().unwrap().request_id);

    // Success without a token is not a token.
    fake.script([Reply::json(200, serde_json::json!({"expires_in": 60}))]);
    let error = credential.get_token(SCOPE).await.unwrap_err();
    assert!(
        matches!(error, Error::InvalidResponse { status: 200, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("no access_token"), "{error}");
}

#[tokio::test]
async fn client_secret_and_fixed_assertion_credentials() {
    let fake = Fake::start().await;
    let cache = TokenCache::new();
    let secret = ClientSecretCredential::new(
        TENANT,
        CLIENT,
        "s3cret",
        fake.options().token_cache(cache.clone()),
    )
    .unwrap();
    assert_eq!(secret.get_token(SCOPE).await.unwrap().secret(), "token-1");
    let form = &fake.seen()[0].form;
    assert_eq!(form["client_secret"], "s3cret");
    assert!(!form.contains_key("client_assertion"));
    assert_eq!(cache.len(), 1);

    let assertion = ClientAssertionCredential::new(
        TENANT,
        "other-client",
        " a.b.c\n",
        fake.options().token_cache(cache.clone()),
    )
    .unwrap();
    assert_eq!(
        assertion.get_token(SCOPE).await.unwrap().secret(),
        "token-2"
    );
    let form = &fake.seen()[1].form;
    assert_eq!(form["client_assertion"], "a.b.c");
    assert_eq!(form["client_id"], "other-client");
    assert_eq!(cache.len(), 2, "entries are per client");
    cache.clear();
    assert_eq!(secret.get_token(SCOPE).await.unwrap().secret(), "token-3");
}

#[tokio::test]
async fn an_untrusted_certificate_fails_fast_and_says_so() {
    let fake = Fake::start().await;
    let file = fake.token_file("assertion");
    // Trusting a different CA than the server's.
    let other = Fake::start().await;
    let credential = fake.workload(
        &file,
        CredentialOptions::new()
            .authority_host(&fake.authority)
            .ca_pem(other.ca_pem.clone()),
    );
    let started = Instant::now();
    let error = credential.get_token(SCOPE).await.unwrap_err();
    let Error::Transport {
        attempts, message, ..
    } = &error
    else {
        panic!("expected a transport error: {error}")
    };
    assert_eq!(
        *attempts, 1,
        "certificate errors are not retried: {message}"
    );
    assert!(message.contains("certificate"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(fake.count(), 0);
}

#[tokio::test]
async fn an_unreachable_service_is_retried_then_reported() {
    let fake = Fake::start().await;
    let file = fake.token_file("assertion");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let credential = fake.workload(
        &file,
        fake.options()
            .authority_host(format!("https://localhost:{port}"))
            .retry_policy(
                RetryPolicy::default()
                    .max_retries(2)
                    .initial_delay(Duration::from_millis(10)),
            ),
    );
    let error = credential.get_token(SCOPE).await.unwrap_err();
    let Error::Transport {
        attempts, endpoint, ..
    } = &error
    else {
        panic!("expected a transport error: {error}")
    };
    assert_eq!(*attempts, 3);
    assert!(endpoint.contains(&port.to_string()));
}

#[test]
fn plain_http_authorities_are_refused() {
    let error = ClientSecretCredential::new(
        TENANT,
        CLIENT,
        "s",
        CredentialOptions::new().authority_host("http://localhost:8443"),
    )
    .unwrap_err();
    assert!(error.to_string().contains("must use https"), "{error}");
}
