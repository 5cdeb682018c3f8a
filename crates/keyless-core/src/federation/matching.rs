//! Matching a verified assertion against an identity's federated credentials, and
//! explaining a miss: which field differs, and the closest credential.

use std::borrow::Cow;

use keyless_store::FederatedCredentialRecord;
use serde_json::{Map, Value};

use crate::expression::Expression;
use crate::grant::{GrantError, OAuthError};
use crate::names::printable;
use crate::view::Expressions;

/// The verified facts of an assertion that matching looks at.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `sub`.
    pub subject: &'a str,
    /// `aud` values.
    pub audiences: &'a [String],
    /// Every claim (for expressions).
    pub claims: &'a Map<String, Value>,
}

fn compiled_expression<'e>(
    compiled: &'e Expressions,
    src: &str,
) -> Result<Cow<'e, Expression>, crate::expression::ExpressionError> {
    match compiled.get(src) {
        Some(e) => Ok(Cow::Borrowed(&**e)),
        None => Expression::parse(src).map(Cow::Owned),
    }
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// Credentials trusting exactly this issuer (case-sensitive, no normalisation).
pub fn for_issuer<'a>(
    creds: &'a [FederatedCredentialRecord],
    issuer: &str,
) -> Vec<&'a FederatedCredentialRecord> {
    creds.iter().filter(|c| c.issuer == issuer).collect()
}

/// Finds the credential that accepts the assertion, or explains the closest miss.
/// `creds` are the identity's credentials for the assertion's issuer (non-empty).
/// `compiled` holds the expressions compiled when the view was loaded (an expression
/// missing there is compiled here).
pub fn find_match<'a>(
    creds: &[&'a FederatedCredentialRecord],
    p: &Presented<'_>,
    compiled: &Expressions,
) -> Result<&'a FederatedCredentialRecord, GrantError> {
    let by_audience: Vec<&FederatedCredentialRecord> = creds
        .iter()
        .copied()
        .filter(|c| c.audiences.iter().any(|a| p.audiences.contains(a)))
        .collect();
    if by_audience.is_empty() {
        let expected: Vec<String> = creds
            .iter()
            .flat_map(|c| {
                c.audiences
                    .iter()
                    .map(|a| format!("'{a}' (credential '{}')", c.name))
            })
            .collect();
        return Err(GrantError::new(
            OAuthError::InvalidClient,
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience {}. The credentials for issuer '{}' expect {}. Set the token's audience (e.g. the projected token's audience) to one of these.",
                list(p.audiences),
                p.issuer,
                expected.join(", ")
            ),
        ));
    }
    let mut failed_expression: Option<(&FederatedCredentialRecord, String)> = None;
    for c in &by_audience {
        match (&c.subject, &c.expression) {
            (Some(s), _) if s == p.subject => return Ok(c),
            (None, Some(src)) => match compiled_expression(compiled, src) {
                Ok(e) => match e.first_failure(p.claims) {
                    None => return Ok(c),
                    Some(clause) => {
                        let found = match p.claims.get(&clause.claim) {
                            Some(v) => printable(&v.to_string()),
                            None => "(absent)".into(),
                        };
                        if failed_expression.is_none() {
                            failed_expression = Some((
                                c,
                                format!(
                                    "{clause} is false: the token has {}={found}",
                                    clause.claim
                                ),
                            ));
                        }
                    }
                },
                Err(e) => {
                    tracing::error!(credential = %c.name, error = %e, "stored expression does not compile")
                }
            },
            _ => {}
        }
    }
    let with_subject: Vec<&&FederatedCredentialRecord> =
        by_audience.iter().filter(|c| c.subject.is_some()).collect();
    if let Some(closest) = with_subject.iter().max_by_key(|c| {
        c.subject
            .as_deref()
            .map(|s| common_prefix(s, p.subject))
            .unwrap_or(0)
    }) {
        let expected = closest.subject.as_deref().unwrap_or_default();
        let hint = if expected.eq_ignore_ascii_case(p.subject) {
            " (they differ only in letter case; subjects are case-sensitive)"
        } else {
            ""
        };
        return Err(GrantError::new(
            OAuthError::InvalidClient,
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{}'. Closest credential '{}' (issuer '{}', audience '{}') expects subject '{}'{hint}. Check the ServiceAccount's namespace and name, or add a credential for this subject.",
                printable(p.subject),
                closest.name,
                closest.issuer,
                closest
                    .audiences
                    .first()
                    .map(String::as_str)
                    .unwrap_or_default(),
                expected
            ),
        ));
    }
    match failed_expression {
        Some((c, why)) => Err(GrantError::new(
            OAuthError::InvalidClient,
            7002131,
            format!(
                "No matching federated identity record found: the claims-matching expression of credential '{}' (issuer '{}') did not match: {why}.",
                c.name, c.issuer
            ),
        )),
        None => Err(GrantError::new(
            OAuthError::InvalidClient,
            70021,
            "No matching federated identity record found for presented assertion.",
        )),
    }
}

fn list(v: &[String]) -> String {
    let quoted: Vec<String> = v.iter().map(|a| format!("'{}'", printable(a))).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn cred(
        name: &str,
        subject: Option<&str>,
        expr: Option<&str>,
        aud: &str,
    ) -> FederatedCredentialRecord {
        FederatedCredentialRecord {
            identity_principal_id: "p".into(),
            name: name.into(),
            issuer: "https://iss".into(),
            subject: subject.map(str::to_string),
            audiences: vec![aud.into()],
            expression: expr.map(str::to_string),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn explains_each_kind_of_miss() {
        let a = cred(
            "prod",
            Some("system:serviceaccount:prod:app"),
            None,
            "api://AzureADTokenExchange",
        );
        let b = cred(
            "gh",
            None,
            Some("claims['sub'] matches 'repo:org/*'"),
            "api://AzureADTokenExchange",
        );
        let creds = vec![&a, &b];
        let claims = json!({"sub": "system:serviceaccount:prod:App"})
            .as_object()
            .cloned()
            .unwrap();
        let aud = vec!["api://AzureADTokenExchange".to_string()];
        let none = Expressions::default();
        let p = Presented {
            issuer: "https://iss",
            subject: "system:serviceaccount:prod:App",
            audiences: &aud,
            claims: &claims,
        };
        let e = find_match(&creds, &p, &none).unwrap_err();
        assert_eq!(e.code, 700213);
        assert!(
            e.message.contains("'prod'") && e.message.contains("case-sensitive"),
            "{}",
            e.message
        );

        let wrong_aud = vec!["other".to_string()];
        let e = find_match(
            &creds,
            &Presented {
                audiences: &wrong_aud,
                ..p
            },
            &none,
        )
        .unwrap_err();
        assert_eq!(e.code, 700212);
        assert!(e.message.contains("'other'") && e.message.contains("api://AzureADTokenExchange"));

        let only_expr = vec![&b];
        let e = find_match(&only_expr, &p, &none).unwrap_err();
        assert_eq!(e.code, 7002131);
        assert!(
            e.message
                .contains("claims['sub'] matches 'repo:org/*' is false"),
            "{}",
            e.message
        );

        let src = b.expression.clone().unwrap();
        let compiled: Expressions = [(src.clone(), Arc::new(Expression::parse(&src).unwrap()))]
            .into_iter()
            .collect();
        let gh_claims = json!({"sub": "repo:org/app:ref:refs/heads/main"})
            .as_object()
            .cloned()
            .unwrap();
        let ok = find_match(
            &creds,
            &Presented {
                subject: "repo:org/app:ref:refs/heads/main",
                claims: &gh_claims,
                ..p
            },
            &compiled,
        )
        .unwrap();
        assert_eq!(ok.name, "gh");
        let ok = find_match(
            &creds,
            &Presented {
                subject: "system:serviceaccount:prod:app",
                ..p
            },
            &none,
        )
        .unwrap();
        assert_eq!(ok.name, "prod");
    }
}
