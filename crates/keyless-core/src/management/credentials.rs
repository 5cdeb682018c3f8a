//! Federated identity credentials: the trust between an identity and an external
//! issuer's tokens.

use keyless_proto::arm::FederatedCredentialProperties;
use keyless_store::Change;
use keyless_store::{FederatedCredentialRecord, UpsertOutcome};
use serde_json::Value;

use super::authorize_in;
use super::escalation::{changes_nothing, check_can_grant_identity_roles};
use super::identities::identity_not_found;
use crate::error::ManagementError;
use crate::expression::Expression;
use crate::ids::federated_credential_id;
use crate::keyless::Keyless;
use crate::names::{check_federated_credential_name, printable};
use crate::tokens::Caller;

const READ: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read";
const WRITE: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write";
const DELETE: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete";
const MAX_FIELD: usize = 600;

/// A validated credential body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredentialInput {
    /// Issuer URL.
    pub issuer: String,
    /// Exact subject, or `None` with an expression.
    pub subject: Option<String>,
    /// The one audience.
    pub audiences: Vec<String>,
    /// Claims-matching expression source.
    pub expression: Option<String>,
}

fn bad(message: impl Into<String>) -> ManagementError {
    ManagementError::bad_request("BadRequest", message)
}

fn string_field(v: &Value, field: &str) -> Result<String, ManagementError> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(format!("The '{field}' property must be a string.")))?;
    if s.trim().is_empty() {
        return Err(bad(format!("The '{field}' property must not be empty.")));
    }
    if crate::names::has_control(s) {
        return Err(bad(format!(
            "The '{field}' property must not contain control characters."
        )));
    }
    if s.chars().count() > MAX_FIELD {
        return Err(bad(format!(
            "The '{field}' property is longer than {MAX_FIELD} characters."
        )));
    }
    Ok(s.to_string())
}

impl FederatedCredentialInput {
    /// Validates the properties of a PUT.
    pub fn from_properties(
        p: Option<FederatedCredentialProperties>,
    ) -> Result<Self, ManagementError> {
        let p = p.ok_or_else(|| bad("The 'properties' object is required."))?;
        let issuer = string_field(
            p.issuer
                .as_ref()
                .ok_or_else(|| bad("The 'issuer' property is required."))?,
            "issuer",
        )?;
        super::issuer_url::check_issuer(&issuer)?;
        let audiences = match p.audiences {
            Some(Value::Array(items)) => {
                if items.len() != 1 {
                    return Err(bad(format!(
                        "The 'audiences' property must contain exactly one audience; it has {}.",
                        items.len()
                    )));
                }
                items
                    .iter()
                    .map(|a| string_field(a, "audiences"))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Some(_) => return Err(bad("The 'audiences' property must be an array of strings.")),
            None => return Err(bad("The 'audiences' property is required.")),
        };
        let subject = match p.subject {
            None | Some(Value::Null) => None,
            Some(v) => Some(string_field(&v, "subject")?),
        };
        let expression = match p.claims_matching_expression {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => {
                let value = string_field(
                    o.get("value").unwrap_or(&Value::Null),
                    "claimsMatchingExpression.value",
                )
                .map_err(|_| {
                    bad("The 'claimsMatchingExpression.value' property must be a non-empty string.")
                })?;
                match o.get("languageVersion") {
                    Some(v) if v.as_i64() == Some(1) => {}
                    _ => {
                        return Err(bad(
                            "The 'claimsMatchingExpression.languageVersion' property must be 1.",
                        ));
                    }
                }
                Expression::parse(&value).map_err(|e| bad(e.to_string()))?;
                Some(value)
            }
            Some(_) => {
                return Err(bad(
                    "The 'claimsMatchingExpression' property must be an object {\"value\", \"languageVersion\"}.",
                ));
            }
        };
        match (&subject, &expression) {
            (Some(_), Some(_)) => Err(bad(
                "Set either 'subject' or 'claimsMatchingExpression', not both.",
            )),
            (None, None) => Err(bad(
                "The 'subject' property is required (or a 'claimsMatchingExpression').",
            )),
            _ => Ok(Self {
                issuer,
                subject,
                audiences,
                expression,
            }),
        }
    }
}

impl Keyless {
    async fn parent_identity(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        identity: &str,
    ) -> Result<(String, keyless_store::IdentityRecord), ManagementError> {
        let sub = self.subscription_in_tenant(caller, sub)?;
        crate::names::check_identity_name(identity)?;
        self.existing_group(&sub, rg).await?;
        let rec = self
            .store
            .get_identity(&sub, rg, identity)
            .await?
            .ok_or_else(|| identity_not_found(rg, identity))?;
        Ok((sub, rec))
    }

    /// Creates or replaces a federated credential.
    ///
    /// Besides `federatedIdentityCredentials/write`, a change (any difference in
    /// issuer, subject, audiences or expression; a new credential is one) requires that
    /// the caller could have granted every role the identity holds, because the
    /// credential lets its subjects use them. A PUT of identical properties writes
    /// nothing and needs only the write permission.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_federated_credential(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        identity: &str,
        name: &str,
        input: FederatedCredentialInput,
    ) -> Result<(FederatedCredentialRecord, UpsertOutcome), ManagementError> {
        check_federated_credential_name(name)?;
        let sub_id = self.subscription_in_tenant(caller, sub)?;
        let credential_id = federated_credential_id(&sub_id, rg, identity, name);
        // Both authorisation decisions are taken on this one snapshot, so a view swap
        // in between cannot pair the caller's old roles with the identity's new ones.
        let decided_on = self.snapshot();
        authorize_in(&decided_on, caller, &credential_id, WRITE)?;
        let (_, parent) = self.parent_identity(caller, sub, rg, identity).await?;
        // The stored row, not the view: whether this PUT changes anything must not
        // depend on how fresh this replica's view is.
        let previous = self
            .store
            .get_federated_credential(&parent.principal_id, name)
            .await?;
        if let Some(existing) = previous.as_ref()
            && changes_nothing(existing, &input)
        {
            return Ok((existing.clone(), UpsertOutcome::Updated));
        }
        check_can_grant_identity_roles(&decided_on, caller, &parent, &credential_id, WRITE)?;
        let now = self.now();
        let rec = FederatedCredentialRecord {
            identity_principal_id: parent.principal_id.clone(),
            name: name.to_string(),
            issuer: input.issuer,
            subject: input.subject,
            audiences: input.audiences,
            expression: input.expression,
            created_at: now,
            updated_at: now,
        };
        let out = self
            .store
            .upsert_federated_credential(&rec, self.settings.max_federated_credentials)
            .await
            .map_err(|e| match e {
                keyless_store::StoreError::Conflict(what) => ManagementError::bad_request(
                    "BadRequest",
                    format!("{what}. Issuer and subject must be unique per identity."),
                ),
                keyless_store::StoreError::ParentNotFound(_) => identity_not_found(rg, identity),
                other => other.into(),
            })?;
        let change = Change::Credentials {
            identity_principal_id: parent.principal_id.clone(),
        };
        self.apply(&change).await?;
        // A role assignment committed to the identity after `decided_on` was taken but
        // before our write is in the updated view (applying a credential change reads
        // the identity's role assignments back too): check again, and take the write
        // back if the caller could not have granted it.
        let after = self.snapshot();
        if let Err(refused) =
            check_can_grant_identity_roles(&after, caller, &parent, &credential_id, WRITE)
        {
            self.undo_credential_write(&parent.principal_id, name, previous)
                .await?;
            return Err(refused);
        }
        Ok(out)
    }

    /// Puts back what a refused credential write replaced (or removes what it created).
    async fn undo_credential_write(
        &self,
        principal_id: &str,
        name: &str,
        previous: Option<FederatedCredentialRecord>,
    ) -> Result<(), ManagementError> {
        let undone = match previous {
            Some(old) => self
                .store
                .upsert_federated_credential(&old, None)
                .await
                .map(drop),
            None => self
                .store
                .delete_federated_credential(principal_id, name)
                .await
                .map(drop),
        };
        if let Err(e) = undone {
            tracing::error!(credential = %name, identity = %principal_id, error = %e, "could not take back a federated credential write refused by the escalation rule");
            return Err(e.into());
        }
        self.apply(&Change::Credentials {
            identity_principal_id: principal_id.to_string(),
        })
        .await?;
        Ok(())
    }

    /// Reads a federated credential.
    pub async fn get_federated_credential(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        identity: &str,
        name: &str,
    ) -> Result<FederatedCredentialRecord, ManagementError> {
        check_federated_credential_name(name)?;
        let sub_id = self.subscription_in_tenant(caller, sub)?;
        self.authorize(
            caller,
            &federated_credential_id(&sub_id, rg, identity, name),
            READ,
        )?;
        crate::names::check_identity_name(identity)?;
        let parent = self.identity_in_view(&sub_id, rg, identity)?;
        self.snapshot()
            .credentials
            .get(parent.principal_id.as_str())
            .and_then(|list| {
                list.iter()
                    .find(|c| c.name.eq_ignore_ascii_case(name))
                    .cloned()
            })
            .ok_or_else(|| {
                ManagementError::not_found(
                    "NotFound",
                    format!(
                        "The federated identity credential '{}' was not found on identity '{}'.",
                        printable(name),
                        printable(identity)
                    ),
                )
            })
    }

    /// Lists the credentials of an identity.
    pub async fn list_federated_credentials(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        identity: &str,
    ) -> Result<Vec<FederatedCredentialRecord>, ManagementError> {
        let sub_id = self.subscription_in_tenant(caller, sub)?;
        self.authorize(
            caller,
            &crate::ids::identity_id(&sub_id, rg, identity),
            READ,
        )?;
        crate::names::check_identity_name(identity)?;
        let parent = self.identity_in_view(&sub_id, rg, identity)?;
        let mut list = self
            .snapshot()
            .credentials
            .get(parent.principal_id.as_str())
            .map(|list| list.to_vec())
            .unwrap_or_default();
        list.sort_by_key(|c| c.name.to_ascii_lowercase());
        Ok(list)
    }

    /// Deletes a credential; `Ok(false)` when it did not exist.
    pub async fn delete_federated_credential(
        &self,
        caller: &Caller,
        sub: &str,
        rg: &str,
        identity: &str,
        name: &str,
    ) -> Result<bool, ManagementError> {
        check_federated_credential_name(name)?;
        let sub_id = self.subscription_in_tenant(caller, sub)?;
        self.authorize(
            caller,
            &federated_credential_id(&sub_id, rg, identity, name),
            DELETE,
        )?;
        let (_, parent) = self.parent_identity(caller, sub, rg, identity).await?;
        let deleted = self
            .store
            .delete_federated_credential(&parent.principal_id, name)
            .await?;
        let change = Change::Credentials {
            identity_principal_id: parent.principal_id.clone(),
        };
        self.applied(change, deleted).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Option<FederatedCredentialProperties> {
        serde_json::from_value(v).ok()
    }

    #[test]
    fn validation() {
        let ok = props(
            json!({"issuer": "https://oidc.example/abc", "subject": "system:serviceaccount:ns:sa", "audiences": ["api://AzureADTokenExchange"]}),
        );
        assert!(FederatedCredentialInput::from_properties(ok).is_ok());
        for (body, needle) in [
            (
                json!({"issuer": "http://oidc.example", "subject": "s", "audiences": ["a"]}),
                "https",
            ),
            (
                json!({"issuer": "https://oidc.example", "subject": "s", "audiences": ["a", "b"]}),
                "exactly one",
            ),
            (
                json!({"issuer": "https://oidc.example", "subject": "s", "audiences": []}),
                "exactly one",
            ),
            (
                json!({"issuer": "https://oidc.example", "audiences": ["a"]}),
                "subject",
            ),
            (
                json!({"issuer": "https://oidc.example", "subject": "s".repeat(601), "audiences": ["a"]}),
                "600",
            ),
            (
                json!({"issuer": "https://oidc.example", "subject": 5, "audiences": ["a"]}),
                "string",
            ),
            (
                json!({"issuer": "https:// bad", "subject": "s", "audiences": ["a"]}),
                "invalid",
            ),
            (
                json!({"issuer": "https://o.example", "audiences": ["a"], "claimsMatchingExpression": {"value": "claims['sub'] like 'x'", "languageVersion": 1}}),
                "position",
            ),
            (
                json!({"issuer": "https://o.example", "subject": "s", "audiences": ["a"], "claimsMatchingExpression": {"value": "claims['sub'] eq 'x'", "languageVersion": 1}}),
                "not both",
            ),
        ] {
            match FederatedCredentialInput::from_properties(props(body.clone())) {
                Err(e) => assert!(e.message.contains(needle), "{body}: {}", e.message),
                Ok(_) => panic!("accepted {body}"),
            }
        }
    }
}
