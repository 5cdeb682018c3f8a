//! Strictly typed registered claims (RFC 7519 §4.1) and time-window checks.
//!
//! A claim of the wrong JSON type is always an error, never "absent": treating it as
//! absent is how `jsonwebtoken` < 10.3 skipped expiry checks (CVE-2026-25537).

use serde_json::{Map, Value};

use crate::error::{JoseError, Result, TimeError};

/// The registered claims Keyless relies on, extracted and type-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredClaims {
    /// Issuer, exactly as in the token: not trimmed, not case-folded, a trailing
    /// slash is significant.
    pub iss: String,
    /// Subject.
    pub sub: String,
    /// Audiences; a single-string `aud` becomes a one-element list. Never empty.
    pub aud: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Not-before, Unix seconds.
    pub nbf: Option<i64>,
    /// Issued-at, Unix seconds.
    pub iat: Option<i64>,
    /// Token id.
    pub jti: Option<String>,
}

/// Clock tolerance and lifetime limit for [`RegisteredClaims::check_times`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePolicy {
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat` (negative values
    /// count as zero). Default 60.
    pub leeway_secs: i64,
    /// Longest accepted validity window. Default 25 hours (90,000 s).
    pub max_lifetime_secs: i64,
}

impl Default for TimePolicy {
    fn default() -> Self {
        TimePolicy {
            leeway_secs: 60,
            max_lifetime_secs: 25 * 60 * 60,
        }
    }
}

impl RegisteredClaims {
    /// Extracts the registered claims. `iss`, `sub`, `aud` and `exp` are required.
    ///
    /// NumericDate claims (`exp`, `nbf`, `iat`) accept JSON integers, and finite
    /// floats within the `i64` range, truncated toward zero (RFC 7519 allows
    /// fractional seconds); strings such as `"1700000000"` are refused.
    ///
    /// ```
    /// use keyless_jose::{JoseError, RegisteredClaims};
    /// let claims = serde_json::json!({"iss":"https://i","sub":"s","aud":"a","exp":"2"});
    /// let err = RegisteredClaims::from_claims(claims.as_object().unwrap()).unwrap_err();
    /// assert!(matches!(err, JoseError::ClaimType { claim: "exp", found: "string", .. }));
    /// ```
    pub fn from_claims(claims: &Map<String, Value>) -> Result<RegisteredClaims> {
        Ok(RegisteredClaims {
            iss: required(claims, "iss", string)?,
            sub: required(claims, "sub", string)?,
            aud: required(claims, "aud", audiences)?,
            exp: required(claims, "exp", numeric_date)?,
            nbf: optional(claims, "nbf", numeric_date)?,
            iat: optional(claims, "iat", numeric_date)?,
            jti: optional(claims, "jti", string)?,
        })
    }

    /// Checks the token's validity window at `now_unix`:
    /// - expired when `now >= exp + leeway`;
    /// - not yet valid when `now + leeway < nbf`;
    /// - issued in the future when `iat > now + leeway`;
    /// - lifetime `exp - iat` (or `exp - nbf` without `iat`; or `exp - now` with
    ///   neither) must not exceed `max_lifetime_secs`.
    pub fn check_times(&self, now_unix: i64, policy: TimePolicy) -> Result<(), TimeError> {
        let now = now_unix;
        let leeway = policy.leeway_secs.max(0);
        // Saturating arithmetic: claims are attacker-chosen and may be i64 extremes.
        if now >= self.exp.saturating_add(leeway) {
            return Err(TimeError::Expired { exp: self.exp, now });
        }
        if let Some(nbf) = self.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(TimeError::NotYetValid { nbf, now });
        }
        if let Some(iat) = self.iat
            && iat > now.saturating_add(leeway)
        {
            return Err(TimeError::IssuedInFuture { iat, now });
        }
        let start = self.iat.or(self.nbf).unwrap_or(now);
        let lifetime = self.exp.saturating_sub(start);
        if lifetime > policy.max_lifetime_secs {
            return Err(TimeError::LifetimeTooLong {
                lifetime,
                max: policy.max_lifetime_secs,
            });
        }
        Ok(())
    }
}

type Extract<T> = fn(&'static str, &Value) -> Result<T>;

fn required<T>(claims: &Map<String, Value>, name: &'static str, extract: Extract<T>) -> Result<T> {
    let value = claims.get(name).ok_or(JoseError::MissingClaim(name))?;
    extract(name, value)
}

/// Absent is `None`; present with any type other than the expected one (including
/// `null`) is an error.
fn optional<T>(
    claims: &Map<String, Value>,
    name: &'static str,
    extract: Extract<T>,
) -> Result<Option<T>> {
    claims.get(name).map(|v| extract(name, v)).transpose()
}

fn string(claim: &'static str, value: &Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(type_error(claim, "a string", other)),
    }
}

fn audiences(claim: &'static str, value: &Value) -> Result<Vec<String>> {
    const EXPECTED: &str = "a string or a non-empty array of strings";
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if items.is_empty() => Err(JoseError::InvalidClaim {
            claim,
            reason: "audience array is empty",
        }),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(JoseError::ClaimType {
                    claim,
                    expected: EXPECTED,
                    found: match other {
                        Value::Null => "an array containing null",
                        Value::Bool(_) => "an array containing a boolean",
                        Value::Number(_) => "an array containing a number",
                        Value::Array(_) => "an array containing an array",
                        Value::Object(_) => "an array containing an object",
                        Value::String(_) => "an array containing a string",
                    },
                }),
            })
            .collect(),
        other => Err(type_error(claim, EXPECTED, other)),
    }
}

/// `i64::MIN` and `i64::MAX + 1` as floats. Both are powers of two, so they are
/// exact and a float in `[MIN, END)` truncates to an `i64` without saturating.
const I64_MIN_F64: f64 = -9_223_372_036_854_775_808.0;
const I64_END_F64: f64 = 9_223_372_036_854_775_808.0;

fn numeric_date(claim: &'static str, value: &Value) -> Result<i64> {
    let Value::Number(number) = value else {
        return Err(type_error(claim, "a number (NumericDate)", value));
    };
    if let Some(i) = number.as_i64() {
        return Ok(i);
    }
    // Integers beyond i64 (u64) and floats land here.
    let out_of_range = JoseError::InvalidClaim {
        claim,
        reason: "NumericDate out of range",
    };
    if number.is_u64() {
        return Err(out_of_range);
    }
    match number.as_f64() {
        Some(f) if f.is_finite() && (I64_MIN_F64..I64_END_F64).contains(&f) => Ok(f.trunc() as i64),
        _ => Err(out_of_range),
    }
}

fn type_error(claim: &'static str, expected: &'static str, found: &Value) -> JoseError {
    JoseError::ClaimType {
        claim,
        expected,
        found: json_type(found),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Result<RegisteredClaims> {
        RegisteredClaims::from_claims(v.as_object().unwrap())
    }

    fn base() -> Value {
        json!({"iss":"https://issuer/","sub":"system:serviceaccount:ns:sa","aud":"api://x","exp":1000})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = base();
        v[key] = value;
        v
    }

    #[test]
    fn extracts_and_keeps_iss_verbatim() {
        let c = claims(with("iss", json!(" https://Issuer/ "))).unwrap();
        assert_eq!(c.iss, " https://Issuer/ ");
        assert_eq!(c.aud, ["api://x"]);
        assert_eq!(c.exp, 1000);
        assert_eq!((c.nbf, c.iat, c.jti), (None, None, None));
        let c = claims(with("aud", json!(["a", "b"]))).unwrap();
        assert_eq!(c.aud, ["a", "b"]);
        let mut v = base();
        v["nbf"] = json!(10);
        v["iat"] = json!(20.9);
        v["jti"] = json!("j");
        let c = claims(v).unwrap();
        assert_eq!(
            (c.nbf, c.iat, c.jti.as_deref()),
            (Some(10), Some(20), Some("j"))
        );
    }

    #[test]
    fn missing_required_claims() {
        for name in ["iss", "sub", "aud", "exp"] {
            let mut v = base();
            v.as_object_mut().unwrap().remove(name);
            assert!(
                matches!(claims(v), Err(JoseError::MissingClaim(n)) if n == name),
                "{name}"
            );
        }
    }

    #[test]
    fn wrong_types_are_errors_never_absent() {
        let cases = [
            ("exp", json!("1000"), "string"),
            ("exp", json!(null), "null"),
            ("exp", json!(true), "boolean"),
            ("nbf", json!("0"), "string"),
            ("iat", json!([1]), "array"),
            ("aud", json!(5), "number"),
            ("aud", json!({"a":1}), "object"),
            ("aud", json!(["a", 1]), "an array containing a number"),
            ("iss", json!(["https://issuer/"]), "array"),
            ("sub", json!(7), "number"),
            ("jti", json!(null), "null"),
        ];
        for (claim, value, found_type) in cases {
            match claims(with(claim, value)) {
                Err(JoseError::ClaimType {
                    claim: c, found, ..
                }) => {
                    assert_eq!((c, found), (claim, found_type));
                }
                other => panic!("{claim}: {other:?}"),
            }
        }
        let empty = claims(with("aud", json!([])));
        assert!(matches!(
            empty,
            Err(JoseError::InvalidClaim { claim: "aud", .. })
        ));
    }

    #[test]
    fn numeric_date_ranges() {
        for v in [json!(1e300), json!(-1e300), json!(u64::MAX), json!(9.3e18)] {
            assert!(
                matches!(
                    claims(with("exp", v.clone())),
                    Err(JoseError::InvalidClaim { claim: "exp", .. })
                ),
                "{v}"
            );
        }
        assert_eq!(claims(with("exp", json!(-1.5))).unwrap().exp, -1);
        assert_eq!(claims(with("exp", json!(i64::MAX))).unwrap().exp, i64::MAX);
    }

    fn times(exp: i64, nbf: Option<i64>, iat: Option<i64>) -> RegisteredClaims {
        RegisteredClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: vec!["a".into()],
            exp,
            nbf,
            iat,
            jti: None,
        }
    }

    const NOW: i64 = 1_700_000_000;
    const P: TimePolicy = TimePolicy {
        leeway_secs: 60,
        max_lifetime_secs: 90_000,
    };

    #[test]
    fn expiry_with_leeway_boundary() {
        let c = times(NOW - 59, None, Some(NOW - 600));
        assert_eq!(c.check_times(NOW, P), Ok(()));
        let c = times(NOW - 60, None, Some(NOW - 600));
        assert_eq!(
            c.check_times(NOW, P),
            Err(TimeError::Expired {
                exp: NOW - 60,
                now: NOW
            })
        );
        let strict = TimePolicy {
            leeway_secs: 0,
            ..P
        };
        assert!(times(NOW, None, None).check_times(NOW, strict).is_err());
        assert!(times(NOW + 1, None, None).check_times(NOW, strict).is_ok());
    }

    #[test]
    fn not_before_with_leeway_boundary() {
        let c = times(NOW + 600, Some(NOW + 60), None);
        assert_eq!(c.check_times(NOW, P), Ok(()));
        let c = times(NOW + 600, Some(NOW + 61), None);
        assert_eq!(
            c.check_times(NOW, P),
            Err(TimeError::NotYetValid {
                nbf: NOW + 61,
                now: NOW
            })
        );
    }

    #[test]
    fn issued_in_future_with_leeway_boundary() {
        let c = times(NOW + 600, None, Some(NOW + 60));
        assert_eq!(c.check_times(NOW, P), Ok(()));
        let c = times(NOW + 600, None, Some(NOW + 61));
        assert_eq!(
            c.check_times(NOW, P),
            Err(TimeError::IssuedInFuture {
                iat: NOW + 61,
                now: NOW
            })
        );
    }

    #[test]
    fn lifetime_limits() {
        // From iat.
        assert!(
            times(NOW + 1000, None, Some(NOW + 1000 - 90_000))
                .check_times(NOW, P)
                .is_ok()
        );
        assert_eq!(
            times(NOW + 1000, None, Some(NOW + 999 - 90_000)).check_times(NOW, P),
            Err(TimeError::LifetimeTooLong {
                lifetime: 90_001,
                max: 90_000
            })
        );
        // From nbf when iat is absent.
        assert_eq!(
            times(NOW + 1000, Some(NOW - 89_001), None).check_times(NOW, P),
            Err(TimeError::LifetimeTooLong {
                lifetime: 90_001,
                max: 90_000
            })
        );
        // iat wins over nbf.
        assert!(
            times(NOW + 1000, Some(NOW - 100_000), Some(NOW))
                .check_times(NOW, P)
                .is_ok()
        );
        // Neither: measured from now.
        assert!(times(NOW + 90_000, None, None).check_times(NOW, P).is_ok());
        assert_eq!(
            times(NOW + 90_001, None, None).check_times(NOW, P),
            Err(TimeError::LifetimeTooLong {
                lifetime: 90_001,
                max: 90_000
            })
        );
        // Extreme values do not overflow.
        assert!(matches!(
            times(i64::MAX, None, Some(i64::MIN)).check_times(NOW, P),
            Err(TimeError::LifetimeTooLong { .. })
        ));
        assert!(matches!(
            times(i64::MIN, None, None).check_times(NOW, P),
            Err(TimeError::Expired { .. })
        ));
    }
}
