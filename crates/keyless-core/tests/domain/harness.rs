//! An in-process Keyless for the domain tests: a temporary store, a manual clock,
//! issuers whose keys the test holds, and a fake metadata fetcher it controls.
//!
//! Only [`temp_store`] knows which backend is used; everything else goes through the
//! `Store` trait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use keyless_core::clock::ManualClock;
use keyless_core::federation::{FetchError, MetadataFetcher};
use keyless_core::grant::{Endpoint, GrantError, IssuedToken, RequestContext};
use keyless_core::management::{FederatedCredentialInput, RoleAssignmentInput};
use keyless_core::rbac::builtin_role_by_name;
use keyless_core::tokens::Caller;
use keyless_core::{Keyless, PublicUrl, Settings};
use keyless_jose::{Alg, JwkSet, Kek, SigningKey};
use keyless_proto::oauth::{JWT_BEARER_ASSERTION_TYPE, TokenRequest};
use keyless_store::{IdentityRecord, Store};
use serde_json::{Value, json};
use tokio::sync::watch;

/// The moment every test starts at (2023-11-14 22:13:20Z).
pub const T0: i64 = 1_700_000_000;
/// The audience Kubernetes tokens for Entra carry.
pub const AUDIENCE: &str = "api://AzureADTokenExchange";
/// An issuer registered with a static JWKS (never fetched).
pub const STATIC_ISSUER: &str = "https://static.cluster.example";
/// An issuer whose metadata the fake fetcher serves.
pub const FETCHED_ISSUER: &str = "https://oidc.cluster.example/c1";

/// The `n`th issuer the fake fetcher serves (all publish the same keys); the first
/// is [`FETCHED_ISSUER`].
pub fn fetched_issuer(n: usize) -> String {
    format!("https://oidc.cluster.example/c{n}")
}

/// The one place that picks the backend: a fresh, empty, private database.
pub async fn temp_store() -> Arc<dyn Store> {
    Arc::new(
        keyless_store_sql::sqlite::SqliteStore::open("sqlite::memory:")
            .await
            .expect("in-memory SQLite store"),
    )
}

/// A subject in the Kubernetes layout.
pub fn sa_subject(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Serves the discovery document and JWKS of every issuer under
/// `https://oidc.cluster.example/` ([`fetched_issuer`]); counts calls, can fail, can
/// hold every call until released.
pub struct FakeFetcher {
    jwks: Mutex<Vec<u8>>,
    down: AtomicBool,
    calls: watch::Sender<u64>,
    open: watch::Sender<bool>,
}

impl FakeFetcher {
    /// A fetcher publishing no keys yet.
    pub fn new() -> Self {
        Self {
            jwks: Mutex::new(b"{\"keys\":[]}".to_vec()),
            down: AtomicBool::new(false),
            calls: watch::Sender::new(0),
            open: watch::Sender::new(true),
        }
    }

    /// Publishes exactly these keys from now on (an issuer-side rotation).
    pub fn publish(&self, keys: &[&SigningKey]) {
        let set = JwkSet {
            keys: keys.iter().map(|k| k.public_jwk()).collect(),
        };
        *self.jwks.lock().unwrap() = serde_json::to_vec(&set).unwrap();
    }

    /// Every call fails (the issuer is down) or succeeds again.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Calls block until [`FakeFetcher::release`] (a slow issuer).
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    /// Lets held and future calls through.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// GETs made so far (a fetch is two: discovery, then JWKS).
    pub fn calls(&self) -> u64 {
        *self.calls.borrow()
    }

    /// Waits until at least `n` GETs have started.
    pub async fn started(&self, n: u64) {
        let mut rx = self.calls.subscribe();
        rx.wait_for(|c| *c >= n).await.unwrap();
    }
}

impl Default for FakeFetcher {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl MetadataFetcher for FakeFetcher {
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        self.calls.send_modify(|c| *c += 1);
        let mut open = self.open.subscribe();
        open.wait_for(|o| *o).await.unwrap();
        if self.down.load(Ordering::SeqCst) {
            return Err(FetchError::Failed {
                url: url.into(),
                reason: "connection refused".into(),
            });
        }
        let served = |u: &str| u.starts_with("https://oidc.cluster.example/c");
        if let Some(issuer) = url
            .strip_suffix("/.well-known/openid-configuration")
            .filter(|i| served(i))
        {
            return Ok(serde_json::to_vec(
                &json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")}),
            )
            .unwrap());
        }
        if served(url) && url.ends_with("/keys") {
            return Ok(self.jwks.lock().unwrap().clone());
        }
        Err(FetchError::Failed {
            url: url.into(),
            reason: "404".into(),
        })
    }
}

/// The bootstrap admin, as the domain sees it.
pub struct Admin {
    pub caller: Caller,
    pub client_id: String,
    pub client_secret: String,
    pub subscription_id: String,
}

/// One Keyless over a fresh store at [`T0`].
pub struct Harness {
    pub k: Arc<Keyless>,
    pub clock: Arc<ManualClock>,
    pub fetcher: Arc<FakeFetcher>,
    pub admin: Admin,
    /// Signs the tokens of [`STATIC_ISSUER`], registered in the admin's tenant.
    pub static_key: SigningKey,
    /// Signs the tokens of [`FETCHED_ISSUER`], published by the fetcher.
    pub fetched_key: SigningKey,
    store: Arc<dyn Store>,
    kek: [u8; 32],
}

/// The settings every harness starts from.
pub fn settings() -> Settings {
    let mut s = Settings::new(PublicUrl {
        host: "keyless.test".into(),
        port: 8443,
    });
    // Failures wait out the folding window before they are written; tests that await
    // the log should not wait the production seconds.
    s.signin_log.aggregation_window = std::time::Duration::from_millis(100);
    s
}

impl Harness {
    /// Default settings.
    pub async fn new() -> Harness {
        Self::with_settings(settings()).await
    }

    /// Given settings.
    pub async fn with_settings(settings: Settings) -> Harness {
        let clock = Arc::new(ManualClock::new(T0));
        let fetcher = Arc::new(FakeFetcher::new());
        let fetched_key = SigningKey::generate(Alg::RS256, "fetched-k1".into()).unwrap();
        fetcher.publish(&[&fetched_key]);
        let store = temp_store().await;
        let kek = Kek::generate().unwrap();
        let kek_bytes = kek.to_bytes();
        let k = Keyless::open(store.clone(), clock.clone(), settings, kek, fetcher.clone())
            .await
            .unwrap();
        let boot = k.bootstrap().await.unwrap().expect("first start");
        let principal = k.snapshot().service_principals[&boot.client_id]
            .principal_id
            .clone();
        let admin = Admin {
            caller: Caller {
                tenant_id: boot.tenant_id.clone(),
                object_id: principal,
                app_id: boot.client_id.clone(),
            },
            client_id: boot.client_id,
            client_secret: boot.client_secret,
            subscription_id: boot.subscription_id,
        };
        let static_key = SigningKey::generate(Alg::RS256, "static-k1".into()).unwrap();
        let h = Harness {
            k: Arc::new(k),
            clock,
            fetcher,
            admin,
            static_key,
            fetched_key,
            store,
            kek: kek_bytes,
        };
        h.trust_static("static-cluster", STATIC_ISSUER, &[&h.static_key])
            .await;
        h
    }

    /// A second Keyless over the same store (another replica): its view is loaded
    /// now and then only refreshed by its own writes.
    pub async fn replica(&self) -> Keyless {
        Keyless::open(
            self.store.clone(),
            self.clock.clone(),
            settings(),
            Kek::from_bytes(&self.kek).unwrap(),
            self.fetcher.clone(),
        )
        .await
        .unwrap()
    }

    /// The admin's tenant.
    pub fn tenant(&self) -> &str {
        &self.admin.caller.tenant_id
    }

    /// The admin's subscription.
    pub fn sub(&self) -> &str {
        &self.admin.subscription_id
    }

    /// Registers `issuer` in the admin's tenant with a static JWKS of `keys`.
    pub async fn trust_static(&self, name: &str, issuer: &str, keys: &[&SigningKey]) {
        let jwks = serde_json::to_value(JwkSet {
            keys: keys.iter().map(|k| k.public_jwk()).collect(),
        })
        .unwrap();
        self.k
            .put_trusted_issuer(&self.admin.caller, name, Some(&json!(issuer)), Some(&jwks))
            .await
            .unwrap();
    }

    /// A resource group (idempotent).
    pub async fn group(&self, rg: &str) {
        self.k
            .put_resource_group(&self.admin.caller, self.sub(), rg, Some("westeurope"), None)
            .await
            .unwrap();
    }

    /// A managed identity in a new or existing group.
    pub async fn identity(&self, rg: &str, name: &str) -> IdentityRecord {
        self.group(rg).await;
        self.k
            .put_identity(
                &self.admin.caller,
                self.sub(),
                rg,
                name,
                Some("westeurope"),
                None,
            )
            .await
            .unwrap()
            .0
    }

    /// A federated credential of `identity`.
    pub async fn credential(
        &self,
        identity: &IdentityRecord,
        name: &str,
        input: FederatedCredentialInput,
    ) {
        self.k
            .put_federated_credential(
                &self.admin.caller,
                self.sub(),
                &identity.resource_group,
                &identity.name,
                name,
                input,
            )
            .await
            .unwrap();
    }

    /// An identity with one credential trusting `issuer` for `subject`.
    pub async fn federated_identity(
        &self,
        name: &str,
        issuer: &str,
        subject: &str,
    ) -> IdentityRecord {
        let identity = self.identity("rg-fed", name).await;
        self.credential(&identity, "fic", subject_credential(issuer, subject))
            .await;
        identity
    }

    /// Assigns the built-in role `role` (display name) at `scope`.
    pub async fn assign(&self, scope: &str, role: &str, principal_id: &str) {
        self.k
            .put_role_assignment(
                &self.admin.caller,
                scope,
                &uuid::Uuid::new_v4().to_string(),
                RoleAssignmentInput {
                    role: builtin_role_by_name(role).expect("built-in role"),
                    principal_id: principal_id.to_string(),
                    principal_type: "ServicePrincipal".into(),
                    description: None,
                },
            )
            .await
            .unwrap();
    }

    /// The claims of a Kubernetes service account token issued now, valid 1 h.
    pub fn sa_claims(&self, issuer: &str, namespace: &str, name: &str) -> Value {
        let now = self.k.now();
        json!({
            "iss": issuer,
            "sub": sa_subject(namespace, name),
            "aud": [AUDIENCE],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": uuid::Uuid::new_v4().to_string()}
            }
        })
    }

    /// `claims` signed by `key`.
    pub fn sign(key: &SigningKey, claims: &Value) -> String {
        key.sign_jwt("JWT", claims).unwrap()
    }

    /// A service account token of [`STATIC_ISSUER`].
    pub fn static_token(&self, namespace: &str, name: &str) -> String {
        Self::sign(
            &self.static_key,
            &self.sa_claims(STATIC_ISSUER, namespace, name),
        )
    }

    /// A service account token of [`FETCHED_ISSUER`], signed by `key`.
    pub fn fetched_token(&self, key: &SigningKey, namespace: &str, name: &str) -> String {
        Self::sign(key, &self.sa_claims(FETCHED_ISSUER, namespace, name))
    }

    /// The v2 token request of a workload presenting `assertion`.
    pub fn assertion_request(client_id: &str, assertion: &str) -> TokenRequest {
        TokenRequest {
            grant_type: Some("client_credentials".into()),
            client_id: Some(client_id.to_string()),
            client_assertion: Some(assertion.to_string()),
            client_assertion_type: Some(JWT_BEARER_ASSERTION_TYPE.into()),
            scope: Some(format!("{}.default", self_resource_manager())),
            ..TokenRequest::default()
        }
    }

    /// Exchanges `assertion` for a resource manager token for `client_id`.
    pub async fn exchange(
        &self,
        client_id: &str,
        assertion: &str,
    ) -> Result<IssuedToken, GrantError> {
        exchange(&self.k, self.tenant(), client_id, assertion, "test").await
    }

    /// A resource manager token for the bootstrap admin (client secret grant).
    pub async fn admin_token(&self) -> IssuedToken {
        let req = TokenRequest {
            grant_type: Some("client_credentials".into()),
            client_id: Some(self.admin.client_id.clone()),
            client_secret: Some(self.admin.client_secret.clone()),
            scope: Some(format!("{}.default", self_resource_manager())),
            ..TokenRequest::default()
        };
        self.k
            .token_request(
                self.tenant(),
                &req,
                Endpoint::V2,
                &RequestContext::default(),
            )
            .await
            .unwrap()
    }

    /// The caller a resource manager token authenticates, as the server would see it.
    pub fn caller_of(&self, token: &IssuedToken) -> Caller {
        self.k
            .authenticate(
                &token.access_token,
                &self.k.settings().public.resource_manager(),
            )
            .unwrap()
    }

    /// Signs `identity` in through [`STATIC_ISSUER`] (it must trust `ns:name`) and
    /// returns the caller its token authenticates.
    pub async fn sign_in(&self, identity: &IdentityRecord, namespace: &str, name: &str) -> Caller {
        let token = self
            .exchange(&identity.client_id, &self.static_token(namespace, name))
            .await
            .unwrap();
        self.caller_of(&token)
    }
}

fn self_resource_manager() -> String {
    settings().public.resource_manager()
}

/// A credential trusting `issuer` for exactly `subject`, with the usual audience.
pub fn subject_credential(issuer: &str, subject: &str) -> FederatedCredentialInput {
    FederatedCredentialInput {
        issuer: issuer.into(),
        subject: Some(subject.into()),
        audiences: vec![AUDIENCE.into()],
        expression: None,
    }
}

/// One token request on `k` with a correlation id (for spawned tasks).
pub async fn exchange(
    k: &Keyless,
    tenant: &str,
    client_id: &str,
    assertion: &str,
    correlation_id: &str,
) -> Result<IssuedToken, GrantError> {
    let ctx = RequestContext {
        client_ip: Some("10.0.0.7".into()),
        correlation_id: correlation_id.into(),
    };
    k.token_request(
        tenant,
        &Harness::assertion_request(client_id, assertion),
        Endpoint::V2,
        &ctx,
    )
    .await
}

/// The kid in a compact JWS header.
pub fn kid_of(token: &str) -> String {
    keyless_jose::UnverifiedJwt::parse(token, 64 * 1024)
        .unwrap()
        .kid()
        .unwrap_or_default()
        .to_string()
}

/// A key whose public half no issuer publishes.
pub fn unpublished_key(kid: &str) -> SigningKey {
    SigningKey::generate(Alg::RS256, kid.into()).unwrap()
}
