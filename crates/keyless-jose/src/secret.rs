//! Hashing of client secrets for storage.
//!
//! Keyless generates client secrets itself as 256 bits of CSPRNG output, so there is
//! nothing for a slow password hash (argon2) to protect against: brute-forcing a
//! 256-bit preimage of SHA-256 is infeasible at any speed. A fast hash keeps the
//! token endpoint cheap. A human-chosen password must not be stored this way.

use crate::b64;
use crate::digest::sha256;

const PREFIX: &str = "sha256:";

/// Hashes a client secret for storage: `"sha256:" + base64url(SHA-256(secret))`.
///
/// The prefix names the scheme so a stronger one can be introduced later without
/// ambiguity.
///
/// ```
/// let stored = keyless_jose::hash_secret("s3cret");
/// assert!(stored.starts_with("sha256:"));
/// assert!(keyless_jose::verify_secret("s3cret", &stored));
/// assert!(!keyless_jose::verify_secret("s3cres", &stored));
/// ```
pub fn hash_secret(secret: &str) -> String {
    let mut out = String::with_capacity(PREFIX.len() + 43);
    out.push_str(PREFIX);
    b64::encode_into(&sha256(secret.as_bytes()), &mut out);
    out
}

/// Checks `secret` against a value from [`hash_secret`], comparing digests in
/// constant time. Returns `false` for a stored value in an unknown format.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    let Some(encoded) = stored.strip_prefix(PREFIX) else {
        return false;
    };
    let Some(expected) = b64::decode(encoded) else {
        return false;
    };
    let actual = sha256(secret.as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(&actual, &expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_rejects_garbage_and_other_schemes() {
        let stored = hash_secret("x");
        assert!(verify_secret("x", &stored));
        assert!(!verify_secret("x", "sha256:"));
        assert!(!verify_secret("x", "sha256:not base64!"));
        assert!(!verify_secret("x", &stored.replace("sha256:", "sha512:")));
        assert!(!verify_secret("x", &format!("{stored}AA")));
        assert!(!verify_secret("", &stored));
    }
}
