//! `explain`: the exchange's checks, one by one, for an operator debugging a refused
//! token. Runs the step functions of the token endpoint ([`super::steps`]) on one
//! snapshot, but keeps going after a failure where later checks still say something
//! useful.

use serde::Serialize;

use super::steps;
use crate::error::ManagementError;
use crate::grant::{GrantError, format_time};
use crate::keyless::Keyless;
use crate::names::printable;
use crate::tokens::Caller;

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

/// The steps recorded so far.
#[derive(Default)]
struct Report(Vec<Step>);

impl Report {
    /// Records the outcome of one check and hands back its value when it passed.
    /// A refusal reads exactly as the token endpoint would word it.
    fn check<T>(
        &mut self,
        check: &str,
        outcome: Result<T, GrantError>,
        ok_detail: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        let (ok, detail, value) = match outcome {
            Ok(v) => (true, ok_detail(&v), Some(v)),
            Err(e) => (
                false,
                format!("AADSTS{}: {}", e.code, e.for_operator()),
                None,
            ),
        };
        self.0.push(Step {
            check: check.into(),
            ok,
            detail,
        });
        value
    }
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
        let state = self.token_state();
        let snap = &*state.snap;
        let tenant = caller.tenant_id.as_str();
        let mut r = Report::default();
        let Some(jwt) = r.check("token format", steps::parse_token(assertion), |j| {
            format!(
                "signed JWT, alg {}, kid {}",
                j.alg(),
                j.kid().unwrap_or("(none)")
            )
        }) else {
            return Ok(r.0);
        };
        let Some(a) = r.check("claims", steps::read_claims(jwt), |a| {
            format!(
                "iss '{}', sub '{}', aud {:?}",
                printable(&a.claims.iss),
                printable(&a.claims.sub),
                a.claims.aud
            )
        }) else {
            return Ok(r.0);
        };
        let own = steps::refuse_own_token(&self.settings.public, &state.ring, &a);
        if r.check("not a Keyless token", own, |_| "issued elsewhere".into())
            .is_none()
        {
            return Ok(r.0);
        }
        let Some(identity) = r.check("identity", steps::identity(snap, tenant, client_id), |i| {
            format!(
                "'{}' in resource group '{}' (principal {})",
                i.name, i.resource_group, i.principal_id
            )
        }) else {
            return Ok(r.0);
        };
        let all = steps::credentials_of(snap, identity);
        let Some(creds) = r.check(
            "issuer trusted",
            steps::trusted_credentials(all, &a.claims.iss),
            |c| {
                format!(
                    "token issuer '{}' is trusted by {} credential(s)",
                    printable(&a.claims.iss),
                    c.len()
                )
            },
        ) else {
            return Ok(r.0);
        };
        let keys =
            steps::issuer_keys(snap, &self.issuers, tenant, &a.claims.iss, a.jwt.kid()).await;
        let keys = r.check("issuer keys", keys, |k| {
            format!("{} key(s) from {}", k.keys.len(), k.source)
        });
        let key = keys.as_ref().and_then(|keys| {
            r.check("signing key", steps::signing_key(keys, &a.jwt), |k| {
                format!("kid {}", k.kid().unwrap_or("(none)"))
            })
        });
        if let Some(key) = key {
            r.check("signature", steps::verify_signature(&a.jwt, key), |_| {
                "valid".into()
            });
        }
        r.check(
            "validity period",
            steps::check_times(&a.claims, state.now, self.settings.clock_leeway_secs),
            |_| format!("valid until {}", format_time(a.claims.exp)),
        );
        r.check(
            "federated credential",
            steps::match_credential(snap, &creds, &a),
            |c| format!("matches credential '{}'", c.name),
        );
        Ok(r.0)
    }
}
