//! Management-plane operations (ARM-compatible): validation, authorisation, storage,
//! and a view update (the write's [`Change`](keyless_store::Change)) so a change takes
//! effect at once.

mod credentials;
mod escalation;
mod groups;
mod identities;
mod issuer_url;
mod roles;
mod trust;

pub use credentials::FederatedCredentialInput;
pub(crate) use groups::{check_location, check_tags};
pub use roles::RoleAssignmentInput;

use crate::error::{ErrorKind, ManagementError};
use crate::ids::subscription_of;
use crate::keyless::Keyless;
use crate::rbac::is_allowed;
use crate::tokens::Caller;
use crate::view::Snapshot;

impl Keyless {
    /// Checks that `caller` may perform `action` at `scope`. A scope in another
    /// tenant's subscription is "not found", never "forbidden", so tenants cannot probe
    /// each other.
    pub fn authorize(
        &self,
        caller: &Caller,
        scope: &str,
        action: &str,
    ) -> Result<(), ManagementError> {
        authorize_in(&self.snapshot(), caller, scope, action)
    }

    /// Whether `caller` may perform `action` at `scope` (no error).
    pub fn can(&self, caller: &Caller, scope: &str, action: &str) -> bool {
        self.authorize(caller, scope, action).is_ok()
    }

    /// The subscriptions of the caller's tenant it can see, sorted by id: those in which
    /// it holds any role assignment at or below the subscription (as ARM lists them: an
    /// identity with only a data role on one vault sees that vault's subscription), and
    /// those a role assigned above them lets it read. Seeing a subscription grants
    /// nothing else. Cost: the caller's own assignments, plus the tenant's
    /// subscriptions only when an assignment above them allows reading them.
    pub fn list_subscriptions(&self, caller: &Caller) -> Vec<keyless_store::SubscriptionRecord> {
        let snap = self.snapshot();
        let mut ids: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        let mut readable_above = false;
        for grant in snap.grants_of(&caller.object_id) {
            match subscription_of(&grant.scope) {
                Some(sub) => {
                    if let Some((id, s)) = snap.subscriptions.get_key_value(&sub)
                        && s.tenant_id == caller.tenant_id
                    {
                        ids.insert(id.as_str());
                    }
                }
                None => {
                    readable_above |= is_allowed(
                        std::slice::from_ref(grant),
                        &grant.scope,
                        SUBSCRIPTION_READ,
                        false,
                    )
                }
            }
        }
        if readable_above {
            for s in snap.subscriptions.values() {
                if s.tenant_id == caller.tenant_id && subscription_visible_in(&snap, caller, &s.id)
                {
                    ids.insert(s.id.as_str());
                }
            }
        }
        ids.into_iter()
            .filter_map(|id| snap.subscriptions.get(id).cloned())
            .collect()
    }

    /// One subscription of the caller's tenant, for a caller that can see it (see
    /// [`Keyless::list_subscriptions`]).
    pub fn get_subscription(
        &self,
        caller: &Caller,
        sub: &str,
    ) -> Result<keyless_store::SubscriptionRecord, ManagementError> {
        let id = crate::names::parse_guid(sub).ok_or_else(|| invalid_subscription(sub))?;
        let snap = self.snapshot();
        if !subscription_visible_in(&snap, caller, &id) {
            // The refusal authorisation gives: "not found" for another tenant's
            // subscription, "forbidden" in the caller's own.
            authorize_in(
                &snap,
                caller,
                &crate::ids::subscription_id(&id),
                SUBSCRIPTION_READ,
            )?;
        }
        snap.subscriptions
            .get(&id)
            .cloned()
            .ok_or_else(|| subscription_not_found(&id))
    }

    /// Validates the subscription path segment (a GUID of the caller's tenant).
    pub(crate) fn subscription_in_tenant(
        &self,
        caller: &Caller,
        sub: &str,
    ) -> Result<String, ManagementError> {
        let id = crate::names::parse_guid(sub).ok_or_else(|| invalid_subscription(sub))?;
        match self.snapshot().subscription_tenant(&id) {
            Some(t) if t == caller.tenant_id => Ok(id),
            _ => Err(subscription_not_found(&id)),
        }
    }

    /// Applies a committed write's change to the view (so it takes effect at once),
    /// then gives back `value`.
    pub(crate) async fn applied<T>(
        &self,
        change: keyless_store::Change,
        value: T,
    ) -> Result<T, ManagementError> {
        self.apply(&change).await?;
        Ok(value)
    }
}

/// The action reading a subscription's metadata.
const SUBSCRIPTION_READ: &str = "Microsoft.Resources/subscriptions/read";

/// Whether `caller` can see subscription `sub` (lowercase GUID): it is in the caller's
/// tenant, and the caller holds a role assignment at or below it, or one above it that
/// allows reading it.
fn subscription_visible_in(snap: &Snapshot, caller: &Caller, sub: &str) -> bool {
    if snap.subscription_tenant(sub) != Some(caller.tenant_id.as_str()) {
        return false;
    }
    let grants = snap.grants_of(&caller.object_id);
    let scope = crate::ids::subscription_id(sub);
    grants
        .iter()
        .any(|g| subscription_of(&g.scope).as_deref() == Some(sub))
        || is_allowed(grants, &scope, SUBSCRIPTION_READ, false)
}

/// [`Keyless::authorize`] against a given snapshot, for operations that take more
/// than one decision and must take them all on the same state.
pub(crate) fn authorize_in(
    snap: &Snapshot,
    caller: &Caller,
    scope: &str,
    action: &str,
) -> Result<(), ManagementError> {
    if let Some(sub) = subscription_of(scope)
        && snap.subscription_tenant(&sub) != Some(caller.tenant_id.as_str())
    {
        return Err(subscription_not_found(&sub));
    }
    if is_allowed(snap.grants_of(&caller.object_id), scope, action, false) {
        Ok(())
    } else {
        Err(ManagementError::new(
            ErrorKind::Forbidden,
            "AuthorizationFailed",
            format!(
                "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. Ask an Owner to assign you a role that grants it; if access was recently granted, get a new token.",
                caller.app_id, caller.object_id
            ),
        ))
    }
}

fn invalid_subscription(sub: &str) -> ManagementError {
    ManagementError::bad_request(
        "InvalidSubscriptionId",
        format!(
            "The provided subscription identifier '{}' is malformed or invalid.",
            crate::names::printable(sub)
        ),
    )
}

pub(crate) fn subscription_not_found(sub: &str) -> ManagementError {
    ManagementError::not_found(
        "SubscriptionNotFound",
        format!("The subscription '{sub}' could not be found."),
    )
}

pub(crate) fn group_not_found(rg: &str) -> ManagementError {
    ManagementError::not_found(
        "ResourceGroupNotFound",
        format!(
            "Resource group '{}' could not be found.",
            crate::names::printable(rg)
        ),
    )
}
