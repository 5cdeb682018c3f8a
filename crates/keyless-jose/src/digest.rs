//! Hashing and randomness helpers, so the rest of Keyless never imports aws-lc-rs.

use crate::error::{JoseError, Result};

/// SHA-256 of `data`.
///
/// ```
/// let d = keyless_jose::sha256(b"abc");
/// assert_eq!(d[0], 0xba);
/// ```
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    // SHA-256 output is always 32 bytes; copying through an iterator avoids a
    // panicking slice-length assertion on a path that cannot fail.
    for (dst, src) in out.iter_mut().zip(digest.as_ref()) {
        *dst = *src;
    }
    out
}

/// `N` bytes from the operating system's CSPRNG (via aws-lc).
///
/// ```
/// let nonce: [u8; 16] = keyless_jose::random_bytes().unwrap();
/// # let _ = nonce;
/// ```
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).map_err(|_| JoseError::Crypto("random number generation"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sha256_known_answer() {
        let hex: String = sha256(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn random_bytes_differ() {
        let a: [u8; 32] = random_bytes().unwrap();
        let b: [u8; 32] = random_bytes().unwrap();
        assert_ne!(a, b);
    }
}
