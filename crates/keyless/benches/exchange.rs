//! Benchmark of the token exchange hot path, in process, on one thread.
//!
//! Compares one full `client_assertion` exchange (parse, identity and credential lookup
//! in the in-memory view, RS256 verify, claim checks, credential match, ES256 sign,
//! sign-in record) with the raw cost of one RS256 verify + one ES256 sign. The target
//! is a ratio within 2x. Run: `cargo bench -p keyless --bench exchange`. It lives in
//! this crate, not keyless-core, because it needs a real store and keyless-core must not
//! depend on a database driver, even for benchmarks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // a benchmark, not library code

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyless_core::Keyless;
use keyless_core::federation::{FetchError, MetadataFetcher};
use keyless_core::grant::{Endpoint, RequestContext};
use keyless_core::management::FederatedCredentialInput;
use keyless_core::tokens::Caller;
use keyless_core::{PublicUrl, Settings, SystemClock};
use keyless_jose::{Alg, JwkSet, Kek, SigningKey, UnverifiedJwt};
use keyless_proto::oauth::{JWT_BEARER_ASSERTION_TYPE, TokenRequest};
use keyless_store_sql::sqlite::SqliteStore;

#[path = "support/mod.rs"]
mod support;
use support::Row;

const ISS: &str = "https://issuer.bench.example/cluster";

struct StaticFetcher(JwkSet);

#[async_trait::async_trait]
impl MetadataFetcher for StaticFetcher {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        if url.ends_with("openid-configuration") {
            Ok(serde_json::to_vec(
                &serde_json::json!({"issuer": ISS, "jwks_uri": format!("{ISS}/keys")}),
            )
            .unwrap())
        } else {
            Ok(serde_json::to_vec(&self.0).unwrap())
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn assertion(key: &SigningKey, sub: &str) -> String {
    let t = now();
    key.sign_jwt(
        "JWT",
        &serde_json::json!({
            "iss": ISS, "sub": sub, "aud": ["api://AzureADTokenExchange"],
            "iat": t, "nbf": t, "exp": t + 3600, "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "sa", "uid": "u"}}
        }),
    )
    .unwrap()
}

fn per_op(start: Instant, n: u32) -> Duration {
    start.elapsed() / n
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let issuer_key = SigningKey::generate(Alg::RS256, "bench-k1".into()).unwrap();
        let fetcher = Arc::new(StaticFetcher(JwkSet { keys: vec![issuer_key.public_jwk()] }));
        let store = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
        let settings = Settings::new(PublicUrl { host: "localhost".into(), port: 8443 });
        let k = Keyless::open(store, Arc::new(SystemClock), settings, Kek::generate().unwrap(), fetcher).await.unwrap();
        let admin = k.bootstrap().await.unwrap().unwrap();
        let principal = k.snapshot().service_principals[&admin.client_id].principal_id.clone();
        let caller = Caller { tenant_id: admin.tenant_id.clone(), object_id: principal, app_id: admin.client_id.clone() };
        k.put_resource_group(&caller, &admin.subscription_id, "bench", Some("local"), None).await.unwrap();
        let (identity, _) = k.put_identity(&caller, &admin.subscription_id, "bench", "bench-id", Some("local"), None).await.unwrap();
        // Several credentials, so matching has to pick one.
        for n in 0..10 {
            let input = FederatedCredentialInput {
                issuer: ISS.into(),
                subject: Some(format!("system:serviceaccount:default:sa{n}")),
                audiences: vec!["api://AzureADTokenExchange".into()],
                expression: None,
            };
            k.put_federated_credential(&caller, &admin.subscription_id, "bench", "bench-id", &format!("fic{n}"), input).await.unwrap();
        }
        let sub = "system:serviceaccount:default:sa7";
        let tokens: Vec<String> = (0..200).map(|_| assertion(&issuer_key, sub)).collect();
        let req = |t: &str| TokenRequest {
            grant_type: Some("client_credentials".into()),
            client_id: Some(identity.client_id.clone()),
            client_assertion: Some(t.to_string()),
            client_assertion_type: Some(JWT_BEARER_ASSERTION_TYPE.into()),
            scope: Some("https://localhost:8443/.default".into()),
            ..TokenRequest::default()
        };
        let ctx = RequestContext { client_ip: Some("127.0.0.1".into()), correlation_id: "bench".into() };
        // Warm up (fills the issuer cache).
        for t in tokens.iter().take(20) {
            k.token_request(&admin.tenant_id, &req(t), Endpoint::V2, &ctx).await.unwrap();
        }

        let n: u32 = 2000;
        let verify_key = keyless_jose::VerifyingKey::from_jwk(&issuer_key.public_jwk()).unwrap();
        let es = SigningKey::generate(Alg::ES256, "es".into()).unwrap();
        let claims = serde_json::json!({"aud": "https://localhost:8443/", "iss": "https://localhost:8443/t/", "oid": "o", "tid": "t", "exp": 1, "iat": 1, "nbf": 1});
        let start = Instant::now();
        for i in 0..n {
            let t = &tokens[(i as usize) % tokens.len()];
            let jwt = UnverifiedJwt::parse(t, 16 * 1024).unwrap();
            jwt.verify(&verify_key, &[Alg::RS256]).unwrap();
            std::hint::black_box(es.sign_jwt("JWT", &claims).unwrap());
        }
        let raw = per_op(start, n);

        let start = Instant::now();
        for i in 0..n {
            let t = &tokens[(i as usize) % tokens.len()];
            std::hint::black_box(k.token_request(&admin.tenant_id, &req(t), Endpoint::V2, &ctx).await.unwrap());
        }
        let full = per_op(start, n);

        println!("token exchange in process, one thread, one credential among 10");
        support::print_rows(&[
            Row::bound("in-process RS256 verify + ES256 sign (bound)", raw.as_secs_f64() * 1e6, "µs"),
            Row::ratio("in-process exchange", full.as_secs_f64() * 1e6, "µs", raw.as_secs_f64() * 1e6, 2.0),
        ]);
        println!("issuer fetches during the run : {}", k.issuer_cache().fetch_count());
    });
}
