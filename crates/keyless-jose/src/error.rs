//! Error types. Messages say what was wrong and, where it helps, what was expected;
//! they never contain key material or whole tokens.

use crate::alg::{Alg, KeyFamily};

/// Everything that can go wrong in this crate except time-window checks, which have
/// their own [`TimeError`] so callers can report them with the times involved.
#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    /// The token is longer than the caller's limit; nothing was parsed.
    #[error("token is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Length of the input in bytes.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// The token has five parts: it is an encrypted JWE, which is never accepted.
    #[error("token is an encrypted JWE; only signed compact JWS tokens are accepted")]
    Encrypted,
    /// The token is not a compact JWS (`header.payload.signature`).
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// A token part is not unpadded base64url.
    #[error("token {part} is not unpadded base64url")]
    Base64 {
        /// Which part: "header", "payload" or "signature".
        part: &'static str,
    },
    /// A token part is not valid JSON (or repeats a member name).
    #[error("token {part} is not valid JSON: {source}")]
    Json {
        /// Which part: "header" or "payload".
        part: &'static str,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A header member is missing or has the wrong JSON type.
    #[error("invalid token header: {0}")]
    InvalidHeader(&'static str),
    /// The token is unsecured (`alg: none`).
    #[error("unsecured token (alg \"none\") rejected")]
    Unsecured,
    /// The token uses a symmetric HMAC algorithm, never accepted for assertions.
    #[error("symmetric algorithm {0:?} rejected; use an asymmetric algorithm")]
    SymmetricAlg(String),
    /// The token's algorithm is not one this crate implements.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlg(String),
    /// The header carries `crit`; no JWS extensions are understood, so it must be refused.
    #[error("token header has \"crit\" extensions, none of which are supported")]
    CriticalHeader,
    /// The token's algorithm is valid but not in the caller's allowlist.
    #[error("algorithm {0} is not allowed here")]
    AlgNotAllowed(Alg),
    /// The key's family cannot verify the token's algorithm (e.g. an RSA key for ES256).
    #[error("a {family} key cannot verify a {alg} token")]
    KeyAlgMismatch {
        /// The token's algorithm.
        alg: Alg,
        /// The selected key's family.
        family: KeyFamily,
    },
    /// The JWK pins an `alg` that differs from the token's.
    #[error("key is published for {key_alg} but the token uses {alg}")]
    KeyAlgPinned {
        /// The token's algorithm.
        alg: Alg,
        /// The `alg` in the JWK.
        key_alg: Alg,
    },
    /// The signature does not verify with the selected key.
    #[error("signature verification failed")]
    BadSignature,
    /// No key in the set has the token's `kid`.
    #[error("no key with kid {0:?}")]
    UnknownKid(String),
    /// The token has no `kid` and the key set does not have exactly one key for its algorithm.
    #[error("token has no kid and {candidates} keys fit its algorithm; exactly one is required")]
    NoKid {
        /// How many keys fit the algorithm's family.
        candidates: usize,
    },
    /// A JWK is structurally invalid.
    #[error("invalid JWK: {0}")]
    InvalidJwk(&'static str),
    /// A JWK's `kty`, `crv` or `alg` is not supported.
    #[error("unsupported JWK {field} {value:?}")]
    UnsupportedJwk {
        /// The member: "kty", "crv", "alg" or "use".
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// An RSA modulus outside the accepted 2048..=8192 bit range.
    #[error("RSA key has a {bits}-bit modulus; 2048 to 8192 bits are accepted")]
    RsaKeySize {
        /// Size of the modulus in bits.
        bits: usize,
    },
    /// The crypto library refused a key.
    #[error("key rejected: {0}")]
    KeyRejected(&'static str),
    /// A JWKS document is not valid JSON of the expected shape.
    #[error("invalid JWKS: {0}")]
    InvalidJwks(String),
    /// A JWKS document has more keys than allowed.
    #[error("JWKS has {count} keys, more than the limit of {max}")]
    TooManyKeys {
        /// Keys in the document.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A required registered claim is missing.
    #[error("required claim {0:?} is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type; it is never treated as absent.
    #[error("claim {claim:?} must be {expected}, found {found}")]
    ClaimType {
        /// The claim name.
        claim: &'static str,
        /// The type required.
        expected: &'static str,
        /// The JSON type present.
        found: &'static str,
    },
    /// A claim has the right type but an unusable value.
    #[error("claim {claim:?} is invalid: {reason}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A time-window check failed.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// The algorithm cannot be used to sign (or generate a key) with this key type.
    #[error("cannot sign with {0} using this key")]
    UnsupportedSigningAlg(Alg),
    /// Claims could not be serialised to JSON.
    #[error("claims could not be serialised: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The crypto library reported an unspecified failure.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// A key-encryption key is not exactly 32 bytes.
    #[error("key-encryption key must be 32 bytes, got {0}")]
    KekLength(usize),
    /// Sealed data could not be opened: tampered, truncated, wrong key or wrong AAD.
    #[error("sealed data could not be opened (tampered, wrong key or wrong context)")]
    Unseal,
    /// Sealed data has a format version this build does not know.
    #[error("sealed data has unknown format version {0}")]
    SealVersion(u8),
}

/// A failed time-window check on registered claims. All times are Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// `exp` has passed (beyond the leeway).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// `nbf` is still in the future (beyond the leeway).
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The time of the check.
        now: i64,
    },
    /// `iat` is in the future (beyond the leeway): the issuer's clock is off or the token is forged.
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The time of the check.
        now: i64,
    },
    /// The token is valid for longer than policy allows.
    #[error("token lifetime {lifetime}s exceeds the maximum {max}s")]
    LifetimeTooLong {
        /// The lifetime in seconds.
        lifetime: i64,
        /// The maximum allowed.
        max: i64,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = JoseError> = std::result::Result<T, E>;

impl From<aws_lc_rs::error::KeyRejected> for JoseError {
    fn from(e: aws_lc_rs::error::KeyRejected) -> Self {
        JoseError::KeyRejected(e.description_())
    }
}
