//! Parsing untrusted compact JWS tokens, before any signature check.
//!
//! Everything here runs on attacker-controlled input, so each step is bounded and
//! cheap checks come first: length, then dot count, then the header (so a
//! token with a forbidden `alg` is refused before its payload is even decoded).

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::alg::Alg;
use crate::b64;
use crate::error::{JoseError, Result};

/// The JOSE header of a token, reduced to what Keyless may act on.
///
/// `jku`, `x5u`, `jwk` and `x5c` are deliberately not kept: keys come only from the
/// issuer's JWKS, so a token can never point at (or carry) its own verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// The signature algorithm (already known to be one of [`Alg`]).
    pub alg: Alg,
    /// The key id, if present.
    pub kid: Option<String>,
    /// The token type (e.g. `JWT`, `at+jwt`), if present.
    pub typ: Option<String>,
}

/// A syntactically valid compact JWS whose signature has NOT been checked.
///
/// Read `iss`/`kid` from it to find the right key, then call
/// [`verify`](UnverifiedJwt::verify); trust nothing in it before that succeeds.
///
/// `Debug` leaves out the signature: header, claims and signature together are a
/// replayable credential, and `Debug` output tends to end up in logs.
#[derive(Clone)]
pub struct UnverifiedJwt {
    header: Header,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl UnverifiedJwt {
    /// Parses a compact JWS.
    ///
    /// `max_len` bounds the raw input (including any surrounding whitespace) and is
    /// checked before anything else. Surrounding ASCII whitespace is then trimmed,
    /// because projected token files end with a newline.
    ///
    /// Refused: anything but exactly three dot-separated parts (five parts is a JWE:
    /// [`JoseError::Encrypted`]); padded or non-URL-safe base64; a header that is not a
    /// JSON object with a string `alg`; `alg: none` ([`JoseError::Unsecured`]); `HS*`
    /// ([`JoseError::SymmetricAlg`]); any other alg outside [`Alg`]
    /// ([`JoseError::UnsupportedAlg`]); a `crit` header; a non-string `kid` or `typ`;
    /// a payload that is not a JSON object; and repeated member names in header or
    /// payload (which parsers resolve differently, a known confusion vector).
    pub fn parse(token: &str, max_len: usize) -> Result<UnverifiedJwt> {
        if token.len() > max_len {
            return Err(JoseError::TooLarge {
                len: token.len(),
                max: max_len,
            });
        }
        let token = token.trim_ascii();

        // Count dots with an early exit so "a.b.c.d.e.f...." costs nothing more.
        let mut dots = 0usize;
        for byte in token.bytes() {
            if byte == b'.' {
                dots += 1;
                if dots > 4 {
                    break;
                }
            }
        }
        match dots {
            2 => {}
            4 => return Err(JoseError::Encrypted),
            _ => {
                return Err(JoseError::Malformed(
                    "expected three dot-separated parts (header.payload.signature)",
                ));
            }
        }
        let (signing_input, signature_b64) = token
            .rsplit_once('.')
            .ok_or(JoseError::Malformed("missing signature"))?;
        let (header_b64, payload_b64) = signing_input
            .split_once('.')
            .ok_or(JoseError::Malformed("missing payload"))?;

        let header = Header::from_map(decode_object(header_b64, "header")?)?;
        let claims = decode_object(payload_b64, "payload")?;
        let signature =
            b64::decode(signature_b64).ok_or(JoseError::Base64 { part: "signature" })?;

        Ok(UnverifiedJwt {
            header,
            claims,
            signing_input: signing_input.to_owned(),
            signature,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's algorithm.
    pub fn alg(&self) -> Alg {
        self.header.alg
    }

    /// The header's key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The header's `typ`, if any.
    pub fn typ(&self) -> Option<&str> {
        self.header.typ.as_deref()
    }

    /// The claims (payload object), unverified.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Consumes the token and returns its claims (verify first).
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }

    /// The exact bytes the signature covers: `base64(header) "." base64(payload)`.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The decoded signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

impl fmt::Debug for UnverifiedJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedJwt")
            .field("header", &self.header)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl Header {
    fn from_map(mut map: Map<String, Value>) -> Result<Header> {
        let alg = match map.get("alg") {
            None => return Err(JoseError::InvalidHeader("missing \"alg\"")),
            Some(Value::String(name)) => classify_alg(name)?,
            Some(_) => return Err(JoseError::InvalidHeader("\"alg\" must be a string")),
        };
        // RFC 7515 §4.1.11: a recipient that does not understand a listed extension
        // must reject the token. We understand none.
        if map.contains_key("crit") {
            return Err(JoseError::CriticalHeader);
        }
        let kid = take_string(&mut map, "kid", "\"kid\" must be a string")?;
        let typ = take_string(&mut map, "typ", "\"typ\" must be a string")?;
        Ok(Header { alg, kid, typ })
    }
}

/// Maps a header `alg` to [`Alg`], with distinct errors for the classic attacks so
/// logs show what was attempted. The checks ignore case because some libraries do.
fn classify_alg(name: &str) -> Result<Alg> {
    if let Some(alg) = Alg::from_name(name) {
        return Ok(alg);
    }
    if name.eq_ignore_ascii_case("none") {
        return Err(JoseError::Unsecured);
    }
    if name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) {
        return Err(JoseError::SymmetricAlg(clip(name)));
    }
    Err(JoseError::UnsupportedAlg(clip(name)))
}

fn take_string(
    map: &mut Map<String, Value>,
    name: &str,
    wrong_type: &'static str,
) -> Result<Option<String>> {
    match map.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JoseError::InvalidHeader(wrong_type)),
    }
}

fn decode_object(part_b64: &str, part: &'static str) -> Result<Map<String, Value>> {
    let bytes = b64::decode(part_b64).ok_or(JoseError::Base64 { part })?;
    let UniqueObject(map) =
        serde_json::from_slice(&bytes).map_err(|source| JoseError::Json { part, source })?;
    Ok(map)
}

/// A JSON object whose top-level member names are unique. `serde_json` would keep
/// the last duplicate silently; another parser might keep the first, so a token with
/// two `iss` or two `alg` could mean different things to different components.
struct UniqueObject(Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(A::Error::custom(format_args!(
                            "duplicate member {:?}",
                            clip(&key)
                        )));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(UniqueObject(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Bounds attacker-supplied text copied into an error, so logs stay readable.
pub(crate) fn clip(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    match s.char_indices().nth(MAX_CHARS) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}...", s.get(..cut).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use std::time::{Duration, Instant};

    fn enc(json: &str) -> String {
        b64::encode(json.as_bytes())
    }

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.{}",
            enc(header),
            enc(payload),
            b64::encode(&[1, 2, 3])
        )
    }

    fn parse(t: &str) -> Result<UnverifiedJwt> {
        UnverifiedJwt::parse(t, 16 * 1024)
    }

    #[test]
    fn parses_a_well_formed_token_and_trims_newline() {
        let t = token(
            r#"{"alg":"ES256","kid":"k1","typ":"JWT","jku":"https://evil","x5u":"https://evil","jwk":{"kty":"EC"},"x5c":["AAAA"]}"#,
            r#"{"iss":"https://i","n":[1,{"a":2}]}"#,
        );
        let jwt = parse(&format!("  {t}\n")).unwrap();
        assert_eq!(jwt.alg(), Alg::ES256);
        assert_eq!(jwt.kid(), Some("k1"));
        assert_eq!(jwt.typ(), Some("JWT"));
        assert_eq!(jwt.claims()["iss"], "https://i");
        assert_eq!(jwt.signature(), &[1, 2, 3]);
        assert_eq!(jwt.signing_input(), t.rsplit_once('.').unwrap().0);
        let debug = format!("{jwt:?}");
        assert!(debug.contains("https://i") && !debug.contains(&b64::encode(&[1, 2, 3])));
    }

    #[test]
    fn rejects_unsecured_and_symmetric_algs() {
        for alg in ["none", "None", "NONE"] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}");
            assert!(matches!(parse(&t), Err(JoseError::Unsecured)), "{alg}");
            // Unsecured tokens usually have an empty signature part.
            let t = format!("{}.{}.", enc(&format!(r#"{{"alg":"{alg}"}}"#)), enc("{}"));
            assert!(matches!(parse(&t), Err(JoseError::Unsecured)), "{alg}");
        }
        for alg in ["HS256", "HS384", "HS512", "hs256"] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}");
            assert!(
                matches!(parse(&t), Err(JoseError::SymmetricAlg(ref a)) if a == alg),
                "{alg}"
            );
        }
        for alg in ["ES512", "rs256", "RSA-OAEP", ""] {
            let t = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}");
            assert!(
                matches!(parse(&t), Err(JoseError::UnsupportedAlg(_))),
                "{alg}"
            );
        }
    }

    #[test]
    fn rejects_bad_headers() {
        let cases = [
            (r#"{"typ":"JWT"}"#, "missing alg"),
            (r#"{"alg":256}"#, "alg number"),
            (r#"{"alg":null}"#, "alg null"),
            (r#"{"alg":"ES256","kid":7}"#, "kid number"),
            (r#"{"alg":"ES256","kid":null}"#, "kid null"),
            (r#"{"alg":"ES256","typ":["JWT"]}"#, "typ array"),
        ];
        for (header, what) in cases {
            assert!(
                matches!(
                    parse(&token(header, "{}")),
                    Err(JoseError::InvalidHeader(_))
                ),
                "{what}"
            );
        }
        let crit = token(r#"{"alg":"ES256","crit":["exp"],"exp":1}"#, "{}");
        assert!(matches!(parse(&crit), Err(JoseError::CriticalHeader)));
        let dup = token(r#"{"alg":"ES256","alg":"none"}"#, "{}");
        assert!(matches!(
            parse(&dup),
            Err(JoseError::Json { part: "header", .. })
        ));
        for header in ["[]", "\"ES256\"", "null", "{", r#"{"alg":"ES256"} x"#] {
            assert!(matches!(
                parse(&token(header, "{}")),
                Err(JoseError::Json { part: "header", .. })
            ));
        }
    }

    #[test]
    fn rejects_bad_payloads() {
        let h = r#"{"alg":"ES256"}"#;
        for payload in ["[]", "1", "\"s\"", "null", r#"{"iss":"a","iss":"b"}"#, "{"] {
            assert!(
                matches!(
                    parse(&token(h, payload)),
                    Err(JoseError::Json {
                        part: "payload",
                        ..
                    })
                ),
                "{payload}"
            );
        }
    }

    #[test]
    fn rejects_jwe_and_wrong_part_counts() {
        let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d";
        assert!(matches!(parse(jwe), Err(JoseError::Encrypted)));
        for t in ["", "abc", "a.b", "a.b.c.d", "a.b.c.d.e.f", "...", "....."] {
            assert!(matches!(parse(t), Err(JoseError::Malformed(_))), "{t:?}");
        }
    }

    #[test]
    fn thousands_of_dots_fail_fast() {
        let t = ".".repeat(10_000);
        let start = Instant::now();
        for _ in 0..1000 {
            assert!(matches!(parse(&t), Err(JoseError::Malformed(_))));
        }
        // The early exit makes each attempt look at a handful of bytes.
        assert!(start.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn oversize_is_rejected_before_parsing() {
        // Structure does not matter: the length check comes first.
        let t = "x".repeat(16 * 1024 + 1);
        assert!(matches!(
            parse(&t),
            Err(JoseError::TooLarge {
                len: 16385,
                max: 16384
            })
        ));
        let jwe_like = "a.".repeat(10_000);
        assert!(matches!(
            UnverifiedJwt::parse(&jwe_like, 100),
            Err(JoseError::TooLarge { .. })
        ));
    }

    #[test]
    fn rejects_padding_and_other_alphabets() {
        let h = enc(r#"{"alg":"ES256"}"#); // 20 bytes -> 27 chars, would pad with one '='
        let p = enc("{}");
        assert!(parse(&format!("{h}.{p}.AQID")).is_ok());
        assert!(matches!(
            parse(&format!("{h}=.{p}.AQID")),
            Err(JoseError::Base64 { part: "header" })
        ));
        assert!(matches!(
            parse(&format!("{h}.{p}==.AQID")),
            Err(JoseError::Base64 { part: "payload" })
        ));
        assert!(matches!(
            parse(&format!("{h}.{p}.AQI=")),
            Err(JoseError::Base64 { part: "signature" })
        ));
        // '+' and '/' belong to the standard alphabet, not base64url.
        assert!(matches!(
            parse(&format!("{h}.{p}.+/+/")),
            Err(JoseError::Base64 { part: "signature" })
        ));
        assert!(matches!(
            parse(&format!("{h}.{p}.AQ ID")),
            Err(JoseError::Base64 { part: "signature" })
        ));
    }

    #[test]
    fn clip_bounds_long_strings() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(100);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), 67);
    }
}
