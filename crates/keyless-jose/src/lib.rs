//! The only place in Keyless that touches JWT cryptography.
//!
//! - [`Alg`] / [`KeyFamily`]: the asymmetric algorithms accepted and the key each needs.
//! - [`Jwk`] / [`JwkSet`] / [`kubernetes_kid`]: published public keys.
//! - [`VerifyingKey`]: an issuer's public key, validated and parsed once.
//! - [`UnverifiedJwt`]: bounded, strict parsing of untrusted compact JWS, then
//!   [`UnverifiedJwt::verify`] with alg allowlist and key/alg binding; [`select_key`].
//! - [`RegisteredClaims`] / [`TimePolicy`]: strictly typed claims and time checks.
//! - [`SigningKey`]: Keyless' own keys; generation, PKCS#8, JWT signing.
//! - [`Kek`]: AES-256-GCM sealing of secrets at rest.
//! - [`sha256`], [`random_bytes`], [`hash_secret`], [`verify_secret`].
//!
//! All crypto is aws-lc-rs; `ring` must never enter the dependency tree.
//!
//! ```
//! use keyless_jose::{Alg, RegisteredClaims, SigningKey, TimePolicy, UnverifiedJwt, VerifyingKey};
//!
//! let key = SigningKey::generate(Alg::ES256, "k1".to_owned())?;
//! let token = key.sign_jwt("JWT", &serde_json::json!({
//!     "iss": "https://issuer.example", "sub": "s", "aud": "api://keyless",
//!     "iat": 1_700_000_000, "exp": 1_700_000_600,
//! }))?;
//!
//! let keys = vec![VerifyingKey::from_jwk(&key.public_jwk())?];
//! let jwt = UnverifiedJwt::parse(&token, 16 * 1024)?;
//! let used = jwt.verify_with(&keys, Alg::ASSERTION_ALLOWLIST)?;
//! assert_eq!(used.kid(), Some("k1"));
//! let claims = RegisteredClaims::from_claims(jwt.claims())?;
//! claims.check_times(1_700_000_100, TimePolicy::default())?;
//! # Ok::<(), keyless_jose::JoseError>(())
//! ```

#![warn(missing_docs)]

mod alg;
mod b64;
mod claims;
mod digest;
mod error;
mod jwk;
mod seal;
mod secret;
mod signing;
mod token;
mod verify;
mod verifying_key;

pub use alg::{Alg, KeyFamily};
pub use claims::{RegisteredClaims, TimePolicy};
pub use digest::{random_bytes, sha256};
pub use error::{JoseError, Result, TimeError};
pub use jwk::{Jwk, JwkSet, kubernetes_kid};
pub use seal::Kek;
pub use secret::{hash_secret, verify_secret};
pub use signing::SigningKey;
pub use token::{Header, UnverifiedJwt};
pub use verify::select_key;
pub use verifying_key::VerifyingKey;
