//! Strict unpadded base64url, the only encoding JOSE compact serialisation allows.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Encodes without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the encoding of `bytes` to `out`, so a token is built in one allocation.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Decodes, rejecting `=` padding, the standard alphabet's `+`/`/`, whitespace and
/// non-canonical trailing bits (the engine's defaults for `URL_SAFE_NO_PAD`), so each
/// byte string has exactly one accepted encoding.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}
