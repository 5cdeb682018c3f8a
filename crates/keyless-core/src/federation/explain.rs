//! `explain`: the exchange's checks, one by one, for an operator debugging a refused
//! token. Runs the same functions as the token endpoint but keeps going after a
//! failure where later checks still say something useful.

use keyless_jose::{Alg, RegisteredClaims, TimePolicy, UnverifiedJwt};
use serde::Serialize;

use super::exchange::time_error;
use super::matching::{Presented, find_match, for_issuer};
use crate::error::ManagementError;
use crate::keyless::Keyless;
use crate::names::printable;
use crate::tokens::{Caller, MAX_TOKEN_BYTES};

/// One check and its outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Step {
    /// What was checked.
    pub check: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

fn step(out: &mut Vec<Step>, check: &str, ok: bool, detail: impl Into<String>) -> bool {
    out.push(Step {
        check: check.into(),
        ok,
        detail: detail.into(),
    });
    ok
}

impl Keyless {
    /// Explains whether `assertion` would be exchanged for identity `client_id` in the
    /// caller's tenant, step by step. Needs `Keyless/explain/action` at `/`.
    pub async fn explain(
        &self,
        caller: &Caller,
        client_id: &str,
        assertion: &str,
    ) -> Result<Vec<Step>, ManagementError> {
        self.authorize(caller, "/", "Keyless/explain/action")?;
        let mut out = Vec::new();
        let jwt = match UnverifiedJwt::parse(assertion, MAX_TOKEN_BYTES) {
            Ok(j) => j,
            Err(e) => {
                step(&mut out, "token format", false, format!("AADSTS50027: {e}"));
                return Ok(out);
            }
        };
        step(
            &mut out,
            "token format",
            true,
            format!(
                "signed JWT, alg {}, kid {}",
                jwt.alg(),
                jwt.kid().unwrap_or("(none)")
            ),
        );
        let claims = match RegisteredClaims::from_claims(jwt.claims()) {
            Ok(c) => c,
            Err(e) => {
                step(&mut out, "claims", false, format!("AADSTS50027: {e}"));
                return Ok(out);
            }
        };
        step(
            &mut out,
            "claims",
            true,
            format!(
                "iss '{}', sub '{}', aud {:?}",
                claims.iss,
                printable(&claims.sub),
                claims.aud
            ),
        );
        let own = format!("{}/", self.settings.public.authority());
        let own_key = jwt
            .kid()
            .is_some_and(|k| self.key_ring().by_kid(k).is_some());
        if !step(
            &mut out,
            "not a Keyless token",
            !claims.iss.starts_with(&own) && !own_key,
            "AADSTS700222 if it were",
        ) {
            return Ok(out);
        }
        let snap = self.snapshot();
        let Some(identity) = snap
            .identities_by_client
            .get(&client_id.to_ascii_lowercase())
            .filter(|i| i.tenant_id == caller.tenant_id)
            .cloned()
        else {
            step(
                &mut out,
                "identity",
                false,
                format!(
                    "AADSTS700016: no identity with client id '{}' in this tenant",
                    printable(client_id)
                ),
            );
            return Ok(out);
        };
        step(
            &mut out,
            "identity",
            true,
            format!(
                "'{}' in resource group '{}' (principal {})",
                identity.name, identity.resource_group, identity.principal_id
            ),
        );
        let all = snap
            .credentials
            .get(&identity.principal_id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let creds = for_issuer(all, &claims.iss);
        let issuers: Vec<&str> = all.iter().map(|c| c.issuer.as_str()).collect();
        if !step(
            &mut out,
            "issuer trusted",
            !creds.is_empty(),
            format!(
                "token issuer '{}'; credentials trust {:?}",
                claims.iss, issuers
            ),
        ) {
            return Ok(out);
        }
        match self
            .issuer_keys(&caller.tenant_id, &claims.iss, jwt.kid())
            .await
        {
            Err(e) => {
                step(&mut out, "issuer keys", false, e.to_string());
            }
            Ok(keys) => {
                step(
                    &mut out,
                    "issuer keys",
                    true,
                    format!("{} key(s) from {}", keys.keys.len(), keys.source),
                );
                match keyless_jose::select_key(&keys.keys, jwt.kid(), jwt.alg()) {
                    Err(e) => {
                        step(
                            &mut out,
                            "signing key",
                            false,
                            format!("AADSTS7000272: {e}"),
                        );
                    }
                    Ok(key) => {
                        step(
                            &mut out,
                            "signing key",
                            true,
                            format!("kid {}", key.kid().unwrap_or("(none)")),
                        );
                        let sig = jwt.verify(key, Alg::ASSERTION_ALLOWLIST);
                        step(
                            &mut out,
                            "signature",
                            sig.is_ok(),
                            sig.err()
                                .map(|e| format!("AADSTS700027: {e}"))
                                .unwrap_or_else(|| "valid".into()),
                        );
                    }
                }
            }
        }
        let policy = TimePolicy {
            leeway_secs: self.settings.clock_leeway_secs,
            max_lifetime_secs: 25 * 3600,
        };
        let times = claims.check_times(self.clock.now(), policy);
        step(
            &mut out,
            "validity period",
            times.is_ok(),
            match times {
                Ok(()) => format!("valid until {}", crate::grant::format_time(claims.exp)),
                Err(e) => {
                    let g = time_error(&e);
                    format!("AADSTS{}: {}", g.code, g.message)
                }
            },
        );
        let presented = Presented {
            issuer: &claims.iss,
            subject: &claims.sub,
            audiences: &claims.aud,
            claims: jwt.claims(),
        };
        match find_match(&creds, &presented, &snap.expressions) {
            Ok(c) => step(
                &mut out,
                "federated credential",
                true,
                format!("matches credential '{}'", c.name),
            ),
            Err(e) => step(
                &mut out,
                "federated credential",
                false,
                format!("AADSTS{}: {}", e.code, e.message),
            ),
        };
        Ok(out)
    }
}
