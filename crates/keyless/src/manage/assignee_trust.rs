//! Who can act as the principal of a new role assignment: when it is a managed
//! identity with federated credentials, every workload those credentials trust gains
//! the role too. `role assignment create` prints them on standard error so the person
//! granting sees whom they grant to, while standard output stays the assignment JSON.

use anyhow::Result;
use serde_json::Value;

use super::identity::API_VERSION as IDENTITY_API_VERSION;
use super::session::Session;

/// api-version sent to list subscriptions.
const SUBSCRIPTION_API_VERSION: &str = "2022-12-01";

/// Prints, on standard error, the federated credentials of the managed identity whose
/// principal id is `principal_id`, if it is one and it has any. A failed lookup is a
/// warning, not an error: the assignment has already been made.
pub async fn warn_about_federated_trust(
    session: &Session,
    principal_id: &str,
    role: &str,
    scope: &str,
) {
    match federated_trust(session, principal_id, role, scope).await {
        Ok(Some(text)) => eprint!("{text}"),
        Ok(None) => {}
        Err(e) => eprintln!(
            "warning: could not check whether principal {principal_id} is a managed identity with federated credentials (whoever they trust now holds '{role}' too): {e:#}"
        ),
    }
}

async fn federated_trust(
    session: &Session,
    principal_id: &str,
    role: &str,
    scope: &str,
) -> Result<Option<String>> {
    let subscriptions = session
        .arm
        .list("/subscriptions", SUBSCRIPTION_API_VERSION)
        .await?;
    for subscription in subscriptions {
        let Some(id) = subscription.get("id").and_then(Value::as_str) else {
            continue;
        };
        let identities = session
            .arm
            .list(
                &format!("{id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"),
                IDENTITY_API_VERSION,
            )
            .await?;
        let Some(identity) = identities
            .into_iter()
            .find(|i| text(i, &["properties", "principalId"]).eq_ignore_ascii_case(principal_id))
        else {
            continue;
        };
        let credentials = session
            .arm
            .list(
                &format!("{}/federatedIdentityCredentials", text(&identity, &["id"])),
                IDENTITY_API_VERSION,
            )
            .await?;
        return Ok(describe(&identity, &credentials, role, scope));
    }
    Ok(None)
}

/// A string field at `path`, or "" when absent.
fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The note for `identity` with `credentials`; `None` when it has none (no workload
/// can act as it, so there is nothing to point out).
fn describe(identity: &Value, credentials: &[Value], role: &str, scope: &str) -> Option<String> {
    if credentials.is_empty() {
        return None;
    }
    let mut out = format!(
        "Note: '{}' is a managed identity with federated credentials; every workload they trust can now act with role '{role}' at {scope}:\n",
        text(identity, &["name"]),
    );
    for c in credentials {
        let who = match text(c, &["properties", "subject"]) {
            "" => format!(
                "claims matching expression: {}",
                text(c, &["properties", "claimsMatchingExpression", "value"])
            ),
            subject => format!("subject: {subject}"),
        };
        out.push_str(&format!(
            "  {}: issuer: {}, {who}\n",
            text(c, &["name"]),
            text(c, &["properties", "issuer"]),
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_issuer_and_subject_or_expression_of_each_credential() {
        let identity = json!({"name": "deployer"});
        let credentials = [
            json!({"name": "ci", "properties": {"issuer": "https://oidc.example/c1", "subject": "system:serviceaccount:ns1:app"}}),
            json!({"name": "gh", "properties": {"issuer": "https://token.actions.example", "claimsMatchingExpression": {"value": "claims['sub'] matches 'repo:org/*'", "languageVersion": 1}}}),
        ];
        let text =
            describe(&identity, &credentials, "Owner", "/subscriptions/s1").unwrap_or_default();
        assert!(text.contains("'deployer'"), "{text}");
        assert!(text.contains("'Owner' at /subscriptions/s1"), "{text}");
        assert!(
            text.contains(
                "ci: issuer: https://oidc.example/c1, subject: system:serviceaccount:ns1:app"
            ),
            "{text}"
        );
        assert!(
            text.contains("gh: issuer: https://token.actions.example, claims matching expression: claims['sub'] matches 'repo:org/*'"),
            "{text}"
        );
        assert_eq!(describe(&identity, &[], "Owner", "/"), None);
    }
}
