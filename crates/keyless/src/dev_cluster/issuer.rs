//! The dev cluster's token issuer, as pure data and functions: signing keys with the
//! Kubernetes key id convention, rotation with an overlap window, the discovery
//! document, the JWKS, and service-account tokens with the kube-apiserver's claim
//! layout. Time is always passed in (Unix seconds), randomness only where a token
//! needs a fresh `jti` or a fresh key, so the rules are unit-testable.

use anyhow::{Context, Result, bail};
use keyless_jose::{Alg, JwkSet, SigningKey, kubernetes_kid, random_bytes, sha256};
use serde::Serialize;
use uuid::Uuid;

/// Shortest token lifetime, in seconds: the kube-apiserver refuses a TokenRequest
/// with `expirationSeconds` below 10 minutes.
pub const MIN_TOKEN_EXPIRATION: i64 = 600;
/// Longest token lifetime, in seconds: the azure-workload-identity webhook's maximum,
/// and it keeps `exp - iat` under the 25 h Keyless (like Entra ID) accepts.
pub const MAX_TOKEN_EXPIRATION: i64 = 86_400;
/// How long a rotated-out key stays in the JWKS: one full maximum token lifetime, so
/// every token it signed (including ones minted by `dev-cluster mint` in another
/// process, which the server cannot count) expires before its key disappears.
pub const KEY_OVERLAP: i64 = MAX_TOKEN_EXPIRATION;
/// Cap on published keys. Verifiers cap a JWKS too (Keyless refuses more than 100
/// keys outright), so a burst of on-demand rotations must not make the whole set
/// unusable: beyond this, the oldest retired keys are dropped early (and logged).
pub const MAX_PUBLISHED_KEYS: usize = 50;
/// The audience the azure-workload-identity webhook projects tokens for.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

/// One RS256 signing key of the issuer. Its `kid` is always [`kubernetes_kid`] of its
/// public key, never stored separately.
#[derive(Debug)]
pub struct IssuerKey {
    key: SigningKey,
    created_at: i64,
    retired_at: Option<i64>,
}

impl IssuerKey {
    /// Generates a fresh 2048-bit RSA key created at `now`. Slow (tens to hundreds of
    /// milliseconds): call it outside any lock.
    pub fn generate(now: i64) -> Result<IssuerKey> {
        let draft = SigningKey::generate(Alg::RS256, String::new())
            .context("generating an RSA signing key")?;
        IssuerKey::from_pkcs8(draft.pkcs8_der(), now, None)
    }

    /// Loads a key from PKCS#8 DER; the `kid` is derived from its public key.
    pub fn from_pkcs8(der: &[u8], created_at: i64, retired_at: Option<i64>) -> Result<IssuerKey> {
        let draft = SigningKey::from_pkcs8(Alg::RS256, String::new(), der)
            .context("the stored key is not an RSA PKCS#8 key usable with RS256")?;
        let kid = kubernetes_kid(draft.public_spki_der());
        let key = SigningKey::from_pkcs8(Alg::RS256, kid, der)
            .context("the stored key is not an RSA PKCS#8 key usable with RS256")?;
        Ok(IssuerKey {
            key,
            created_at,
            retired_at,
        })
    }

    /// The key id: base64url (no padding) of SHA-256 of the DER public key.
    pub fn kid(&self) -> &str {
        self.key.kid()
    }

    /// The signing key itself.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// When the key was generated.
    pub fn created_at(&self) -> i64 {
        self.created_at
    }

    /// When the key stopped signing, if it has.
    pub fn retired_at(&self) -> Option<i64> {
        self.retired_at
    }
}

/// What a service-account token is issued for: the fields of a Kubernetes
/// TokenRequest that matter to the claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Namespace of the service account (a DNS-1123 label).
    pub namespace: String,
    /// Name of the service account (a DNS-1123 subdomain).
    pub service_account: String,
    /// The pod the token is bound to; `None` gives a token without a `pod` claim, as
    /// for a TokenRequest with no bound object.
    pub pod_name: Option<String>,
    /// The `aud` values, in order; at least one.
    pub audiences: Vec<String>,
    /// Lifetime in seconds, [`MIN_TOKEN_EXPIRATION`] to [`MAX_TOKEN_EXPIRATION`].
    pub expiration_seconds: i64,
}

impl TokenRequest {
    /// Checks the request against the rules the kube-apiserver applies, with a
    /// message naming the field and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        check_dns_label("namespace", &self.namespace)?;
        check_dns_subdomain("service account name", &self.service_account)?;
        if let Some(pod) = &self.pod_name {
            check_dns_subdomain("pod name", pod)?;
        }
        if self.audiences.is_empty() {
            return Err("at least one audience is required".into());
        }
        if self.audiences.len() > 16 {
            return Err(format!(
                "at most 16 audiences are allowed, got {}",
                self.audiences.len()
            ));
        }
        for aud in &self.audiences {
            if aud.is_empty() || aud.len() > 1024 {
                return Err("every audience must be 1 to 1024 characters".into());
            }
        }
        if !(MIN_TOKEN_EXPIRATION..=MAX_TOKEN_EXPIRATION).contains(&self.expiration_seconds) {
            return Err(format!(
                "expiration {} s is out of range: use {MIN_TOKEN_EXPIRATION} to {MAX_TOKEN_EXPIRATION} seconds",
                self.expiration_seconds
            ));
        }
        Ok(())
    }
}

fn check_dns_label(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} '{value}' is not a valid Kubernetes name: use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

fn check_dns_subdomain(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} '{value}' is not a valid Kubernetes name: use 1 to 253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit"
        ))
    }
}

/// `{"name", "uid"}` of an object in the `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectRef {
    /// Object name.
    pub name: String,
    /// Object uid.
    pub uid: String,
}

/// The `kubernetes.io` private claim. Fields are in the order the kube-apiserver
/// emits them (go-jose sorts keys alphabetically).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubernetesClaim {
    /// Namespace of the service account.
    pub namespace: String,
    /// The bound pod, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// The service account.
    pub serviceaccount: ObjectRef,
}

/// The claims of a projected service-account token, in the kube-apiserver's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAccountClaims {
    /// Audiences, always an array.
    pub aud: Vec<String>,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// The issuer URL.
    pub iss: String,
    /// A random UUID.
    pub jti: String,
    /// Namespace, service account and pod.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
    /// Not before (= `iat`).
    pub nbf: i64,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub sub: String,
}

/// The discovery document the kube-apiserver serves at
/// `{issuer}/.well-known/openid-configuration`, field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// The issuer URL, exactly as in tokens.
    pub issuer: String,
    /// `{issuer}/openid/v1/jwks`.
    pub jwks_uri: String,
    /// `["id_token"]`.
    pub response_types_supported: Vec<&'static str>,
    /// `["public"]`.
    pub subject_types_supported: Vec<&'static str>,
    /// `["RS256"]`.
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
}

/// The dev cluster issuer: its URL, the seed its object uids derive from, and its keys
/// (oldest first; the last one is current and is the only one that signs).
#[derive(Debug)]
pub struct Issuer {
    url: String,
    uid_seed: [u8; 32],
    keys: Vec<IssuerKey>,
}

impl Issuer {
    /// An issuer with these keys. The last key must be the only one not retired.
    pub fn new(url: String, uid_seed: [u8; 32], keys: Vec<IssuerKey>) -> Result<Issuer> {
        let Some((current, older)) = keys.split_last() else {
            bail!("the issuer has no signing key");
        };
        if current.retired_at.is_some() || older.iter().any(|k| k.retired_at.is_none()) {
            bail!("exactly the newest signing key must be current (not retired)");
        }
        Ok(Issuer {
            url,
            uid_seed,
            keys,
        })
    }

    /// The issuer URL (`iss` of every token).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The uid seed (persisted so uids stay stable across restarts).
    pub fn uid_seed(&self) -> &[u8; 32] {
        &self.uid_seed
    }

    /// All keys, oldest first.
    pub fn keys(&self) -> &[IssuerKey] {
        &self.keys
    }

    /// The key new tokens are signed with.
    pub fn current(&self) -> Option<&IssuerKey> {
        self.keys.last()
    }

    /// The discovery document.
    pub fn discovery(&self) -> Discovery {
        Discovery {
            issuer: self.url.clone(),
            jwks_uri: format!("{}/openid/v1/jwks", self.url),
            response_types_supported: vec!["id_token"],
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: vec!["RS256"],
        }
    }

    /// The published keys: the current one first, then the retiring ones, newest
    /// first.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().rev().map(|k| k.key.public_jwk()).collect(),
        }
    }

    /// Makes `new` the signing key at `now`: it is published and signs from now on;
    /// the previous key stays published for [`KEY_OVERLAP`]. Returns the kids dropped
    /// by the [`MAX_PUBLISHED_KEYS`] cap (normally none).
    pub fn rotate(&mut self, new: IssuerKey, now: i64) -> Vec<String> {
        for key in &mut self.keys {
            key.retired_at.get_or_insert(now);
        }
        self.keys.push(IssuerKey {
            retired_at: None,
            ..new
        });
        let mut dropped = self.prune(now);
        while self.keys.len() > MAX_PUBLISHED_KEYS {
            // The cap is at least 1 and the current key is last, so this removes a
            // retired key.
            dropped.push(self.keys.remove(0).kid().to_owned());
        }
        dropped
    }

    /// Drops retired keys whose overlap window has passed; returns their kids.
    pub fn prune(&mut self, now: i64) -> Vec<String> {
        let mut dropped = Vec::new();
        self.keys.retain(|k| match k.retired_at {
            Some(at) if now >= at.saturating_add(KEY_OVERLAP) => {
                dropped.push(k.kid().to_owned());
                false
            }
            _ => true,
        });
        dropped
    }

    /// When the next retired key is due to be dropped.
    pub fn next_prune_at(&self) -> Option<i64> {
        self.keys
            .iter()
            .filter_map(|k| k.retired_at)
            .map(|at| at.saturating_add(KEY_OVERLAP))
            .min()
    }

    /// When the current key is due to be replaced, with rotation every `period`
    /// seconds.
    pub fn rotation_due_at(&self, period: Option<i64>) -> Option<i64> {
        Some(self.current()?.created_at.saturating_add(period?))
    }

    /// The stable uid of a Kubernetes object: the first 16 bytes of
    /// SHA-256(seed ‖ kind ‖ namespace ‖ name) (NUL-separated) shaped as a v4 UUID,
    /// like the random uids the API server assigns. Same data directory, same uid.
    pub fn object_uid(&self, kind: &str, namespace: &str, name: &str) -> String {
        let mut input = Vec::with_capacity(32 + kind.len() + namespace.len() + name.len() + 3);
        input.extend_from_slice(&self.uid_seed);
        for part in [kind, namespace, name] {
            input.extend_from_slice(part.as_bytes());
            input.push(0);
        }
        let digest = sha256(&input);
        let mut bytes = [0u8; 16];
        for (dst, src) in bytes.iter_mut().zip(digest) {
            *dst = src;
        }
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// The claims of a token for `req` issued at `now` with this `jti`.
    pub fn claims(&self, req: &TokenRequest, now: i64, jti: Uuid) -> ServiceAccountClaims {
        let ns = &req.namespace;
        ServiceAccountClaims {
            aud: req.audiences.clone(),
            exp: now.saturating_add(req.expiration_seconds),
            iat: now,
            iss: self.url.clone(),
            jti: jti.to_string(),
            kubernetes: KubernetesClaim {
                namespace: ns.clone(),
                pod: req.pod_name.as_ref().map(|pod| ObjectRef {
                    name: pod.clone(),
                    uid: self.object_uid("Pod", ns, pod),
                }),
                serviceaccount: ObjectRef {
                    name: req.service_account.clone(),
                    uid: self.object_uid("ServiceAccount", ns, &req.service_account),
                },
            },
            nbf: now,
            sub: format!("system:serviceaccount:{ns}:{}", req.service_account),
        }
    }

    /// Validates `req` and signs a token for it with the current key: header
    /// `{"alg":"RS256","kid":..}` (no `typ`, like the kube-apiserver).
    pub fn mint(&self, req: &TokenRequest, now: i64) -> Result<String> {
        req.validate().map_err(anyhow::Error::msg)?;
        let jti = uuid::Builder::from_random_bytes(random_bytes()?).into_uuid();
        let Some(current) = self.current() else {
            bail!("the issuer has no signing key");
        };
        Ok(current.key.sign_jwt_untyped(&self.claims(req, now, jti))?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use base64::Engine;
    use keyless_jose::{RegisteredClaims, TimePolicy, UnverifiedJwt, VerifyingKey};
    use std::sync::OnceLock;

    const T0: i64 = 1_750_000_000;

    /// RSA generation is slow in debug builds; tests share a few keys.
    fn pkcs8(i: usize) -> Vec<u8> {
        static KEYS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        KEYS.get_or_init(|| {
            (0..3)
                .map(|_| {
                    SigningKey::generate(Alg::RS256, String::new())
                        .unwrap()
                        .pkcs8_der()
                        .to_vec()
                })
                .collect()
        })[i]
            .clone()
    }

    fn key(i: usize, created: i64) -> IssuerKey {
        IssuerKey::from_pkcs8(&pkcs8(i), created, None).unwrap()
    }

    fn issuer() -> Issuer {
        Issuer::new(
            "https://localhost:8444/c1".into(),
            [7; 32],
            vec![key(0, T0)],
        )
        .unwrap()
    }

    fn request() -> TokenRequest {
        TokenRequest {
            namespace: "default".into(),
            service_account: "workload-identity-sa".into(),
            pod_name: Some("dev-pod".into()),
            audiences: vec![DEFAULT_AUDIENCE.into()],
            expiration_seconds: 3600,
        }
    }

    fn kids(i: &Issuer) -> Vec<String> {
        i.jwks().keys.into_iter().map(|k| k.kid.unwrap()).collect()
    }

    #[test]
    fn kid_is_base64url_sha256_of_the_spki() {
        let k = key(0, T0);
        let spki = k.signing_key().public_spki_der();
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256(spki));
        assert_eq!(k.kid(), expected);
        assert_eq!(expected.len(), 43);
        // The JWK's modulus, re-encoded as DER by the verifier, gives the same kid.
        let vk = VerifyingKey::from_jwk(&k.signing_key().public_jwk()).unwrap();
        assert_eq!(kubernetes_kid(&vk.spki_der().unwrap()), k.kid());
    }

    #[test]
    fn jwks_has_kubernetes_rsa_members() {
        let jwks = serde_json::to_value(issuer().jwks()).unwrap();
        let key = &jwks["keys"][0];
        let mut members: Vec<_> = key.as_object().unwrap().keys().cloned().collect();
        members.sort();
        assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["e"], "AQAB");
    }

    #[test]
    fn discovery_matches_the_kube_apiserver() {
        let doc = serde_json::to_string(&issuer().discovery()).unwrap();
        assert_eq!(
            doc,
            r#"{"issuer":"https://localhost:8444/c1","jwks_uri":"https://localhost:8444/c1/openid/v1/jwks","response_types_supported":["id_token"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"]}"#
        );
    }

    #[test]
    fn claims_have_the_projected_token_layout() {
        let i = issuer();
        let jti = Uuid::nil();
        let claims = serde_json::to_value(i.claims(&request(), T0, jti)).unwrap();
        let sa_uid = i.object_uid("ServiceAccount", "default", "workload-identity-sa");
        let pod_uid = i.object_uid("Pod", "default", "dev-pod");
        assert_eq!(
            claims,
            serde_json::json!({
                "aud": ["api://AzureADTokenExchange"],
                "exp": T0 + 3600,
                "iat": T0,
                "iss": "https://localhost:8444/c1",
                "jti": "00000000-0000-0000-0000-000000000000",
                "kubernetes.io": {
                    "namespace": "default",
                    "pod": {"name": "dev-pod", "uid": pod_uid},
                    "serviceaccount": {"name": "workload-identity-sa", "uid": sa_uid}
                },
                "nbf": T0,
                "sub": "system:serviceaccount:default:workload-identity-sa"
            })
        );
        // Key order is the apiserver's (alphabetical).
        let keys: Vec<_> = claims.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "aud",
                "exp",
                "iat",
                "iss",
                "jti",
                "kubernetes.io",
                "nbf",
                "sub"
            ]
        );
        let mut unbound = request();
        unbound.pod_name = None;
        let claims = serde_json::to_value(i.claims(&unbound, T0, jti)).unwrap();
        assert!(claims["kubernetes.io"].get("pod").is_none());
    }

    #[test]
    fn uids_are_stable_per_object_and_look_like_v4_uuids() {
        let i = issuer();
        let a = i.object_uid("ServiceAccount", "default", "sa");
        assert_eq!(a, i.object_uid("ServiceAccount", "default", "sa"));
        assert_ne!(a, i.object_uid("ServiceAccount", "other", "sa"));
        assert_ne!(a, i.object_uid("Pod", "default", "sa"));
        // NUL separators: ("a", "bc") and ("ab", "c") differ.
        assert_ne!(
            i.object_uid("ServiceAccount", "a", "bc"),
            i.object_uid("ServiceAccount", "ab", "c")
        );
        let uuid = Uuid::parse_str(&a).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        let other_cluster = Issuer::new(i.url().into(), [8; 32], vec![key(0, T0)]).unwrap();
        assert_ne!(
            a,
            other_cluster.object_uid("ServiceAccount", "default", "sa")
        );
    }

    #[test]
    fn minted_token_verifies_against_the_jwks() {
        let i = issuer();
        let token = i.mint(&request(), T0).unwrap();
        let jwt = UnverifiedJwt::parse(&token, 16 * 1024).unwrap();
        assert_eq!(jwt.typ(), None);
        assert_eq!(jwt.alg(), Alg::RS256);
        assert_eq!(jwt.kid(), i.current().map(IssuerKey::kid));
        let header = token.split('.').next().unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap();
        assert_eq!(
            String::from_utf8(header).unwrap(),
            format!(r#"{{"alg":"RS256","kid":"{}"}}"#, i.keys()[0].kid())
        );
        let (keys, errors) = VerifyingKey::from_jwk_set(&i.jwks());
        assert!(errors.is_empty());
        jwt.verify_with(&keys, &[Alg::RS256]).unwrap();
        let claims = RegisteredClaims::from_claims(jwt.claims()).unwrap();
        claims.check_times(T0 + 10, TimePolicy::default()).unwrap();
        assert_eq!(
            jwt.claims()["sub"],
            "system:serviceaccount:default:workload-identity-sa"
        );
        // Two tokens differ in jti.
        let again = UnverifiedJwt::parse(&i.mint(&request(), T0).unwrap(), 16 * 1024).unwrap();
        assert_ne!(again.claims()["jti"], jwt.claims()["jti"]);
    }

    #[test]
    fn mint_refuses_invalid_requests() {
        let i = issuer();
        type Mutation = fn(&mut TokenRequest);
        let cases: Vec<(Mutation, &str)> = vec![
            (|r| r.namespace = "Default".into(), "namespace"),
            (|r| r.namespace = String::new(), "namespace"),
            (|r| r.service_account = "a:b".into(), "service account"),
            (|r| r.pod_name = Some("-x".into()), "pod name"),
            (|r| r.audiences.clear(), "audience"),
            (|r| r.audiences = vec![String::new()], "audience"),
            (|r| r.expiration_seconds = 599, "600"),
            (|r| r.expiration_seconds = 86_401, "86400"),
        ];
        for (mutate, needle) in cases {
            let mut r = request();
            mutate(&mut r);
            let err = i.mint(&r, T0).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        let mut r = request();
        r.service_account = "a.b-c".into();
        r.expiration_seconds = 600;
        assert!(i.mint(&r, T0).is_ok());
    }

    #[test]
    fn rotation_publishes_both_keys_then_drops_the_old_after_the_overlap() {
        let mut i = issuer();
        let old = i.keys()[0].kid().to_owned();
        let token_old = i.mint(&request(), T0 + 50).unwrap();

        let t_rot = T0 + 100;
        assert!(i.rotate(key(1, t_rot), t_rot).is_empty());
        let new = i.keys()[1].kid().to_owned();
        assert_ne!(old, new);
        assert_eq!(kids(&i), [new.clone(), old.clone()]);
        assert_eq!(i.current().unwrap().kid(), new);
        assert_eq!(i.keys()[0].retired_at(), Some(t_rot));

        // New tokens are signed by the new key; the old token still verifies.
        let token_new = i.mint(&request(), t_rot).unwrap();
        let (keys, _) = VerifyingKey::from_jwk_set(&i.jwks());
        for t in [&token_old, &token_new] {
            UnverifiedJwt::parse(t, 16 * 1024)
                .unwrap()
                .verify_with(&keys, &[Alg::RS256])
                .unwrap();
        }
        assert_eq!(
            UnverifiedJwt::parse(&token_new, 16 * 1024).unwrap().kid(),
            Some(new.as_str())
        );

        assert_eq!(i.next_prune_at(), Some(t_rot + KEY_OVERLAP));
        assert!(i.prune(t_rot + KEY_OVERLAP - 1).is_empty());
        assert_eq!(kids(&i).len(), 2);
        assert_eq!(i.prune(t_rot + KEY_OVERLAP), [old]);
        assert_eq!(kids(&i), [new]);
        assert_eq!(i.next_prune_at(), None);
    }

    #[test]
    fn old_key_outlives_every_token_it_can_sign() {
        let mut i = issuer();
        // A maximum-lifetime token signed the instant before rotation...
        let t_rot = T0 + 1000;
        let mut r = request();
        r.expiration_seconds = MAX_TOKEN_EXPIRATION;
        let last = i.mint(&r, t_rot).unwrap();
        i.rotate(key(1, t_rot), t_rot);
        // ...still verifies until it expires.
        let exp = t_rot + MAX_TOKEN_EXPIRATION;
        i.prune(exp - 1);
        let (keys, _) = VerifyingKey::from_jwk_set(&i.jwks());
        UnverifiedJwt::parse(&last, 16 * 1024)
            .unwrap()
            .verify_with(&keys, &[Alg::RS256])
            .unwrap();
    }

    #[test]
    fn second_rotation_keeps_each_key_for_its_own_window() {
        let mut i = issuer();
        i.rotate(key(1, T0 + 10), T0 + 10);
        i.rotate(key(2, T0 + 20), T0 + 20);
        assert_eq!(kids(&i).len(), 3);
        assert_eq!(i.keys()[0].retired_at(), Some(T0 + 10));
        assert_eq!(i.keys()[1].retired_at(), Some(T0 + 20));
        assert_eq!(i.prune(T0 + 10 + KEY_OVERLAP).len(), 1);
        assert_eq!(kids(&i).len(), 2);
        assert_eq!(i.next_prune_at(), Some(T0 + 20 + KEY_OVERLAP));
    }

    #[test]
    fn published_keys_are_capped() {
        let mut i = issuer();
        let mut dropped = Vec::new();
        for n in 0..MAX_PUBLISHED_KEYS {
            let t = T0 + 1 + i64::try_from(n).unwrap();
            dropped.extend(i.rotate(key(1 + n % 2, t), t));
        }
        assert_eq!(i.keys().len(), MAX_PUBLISHED_KEYS);
        assert_eq!(dropped.len(), 1);
        assert!(i.current().unwrap().retired_at().is_none());
    }

    #[test]
    fn rotation_schedule_follows_the_current_key() {
        let mut i = issuer();
        assert_eq!(i.rotation_due_at(None), None);
        assert_eq!(i.rotation_due_at(Some(3600)), Some(T0 + 3600));
        i.rotate(key(1, T0 + 3600), T0 + 3600);
        assert_eq!(i.rotation_due_at(Some(3600)), Some(T0 + 7200));
    }

    #[test]
    fn new_refuses_inconsistent_key_lists() {
        assert!(Issuer::new("x".into(), [0; 32], vec![]).is_err());
        let retired = IssuerKey::from_pkcs8(&pkcs8(0), T0, Some(T0)).unwrap();
        assert!(Issuer::new("x".into(), [0; 32], vec![retired]).is_err());
        assert!(Issuer::new("x".into(), [0; 32], vec![key(0, T0), key(1, T0)]).is_err());
    }
}
