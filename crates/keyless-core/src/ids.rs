//! ARM resource ids and scopes. Ids keep the caller's casing but compare
//! case-insensitively, segment by segment. Scopes of role assignments are canonical
//! ([`keyless_store::scope`], `docs/design/scopes.md`) before they are stored or
//! compared: [`CanonicalScope`] is the only way the role API reads one.

use keyless_store::scope;
pub use keyless_store::scope::ScopeError;

/// `/subscriptions/{s}`.
pub fn subscription_id(sub: &str) -> String {
    format!("/subscriptions/{sub}")
}

/// `/subscriptions/{s}/resourceGroups/{rg}` (canonical).
pub fn resource_group_id(sub: &str, rg: &str) -> String {
    scope::resource_group(sub, rg)
}

/// The resource id of a user-assigned identity.
pub fn identity_id(sub: &str, rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

/// The resource id of a federated identity credential.
pub fn federated_credential_id(sub: &str, rg: &str, identity: &str, name: &str) -> String {
    format!(
        "{}/federatedIdentityCredentials/{name}",
        identity_id(sub, rg, identity)
    )
}

/// The id of a role definition as seen from a subscription.
pub fn role_definition_id(sub: Option<&str>, guid: &str) -> String {
    match sub {
        Some(s) => {
            format!("/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
        }
        None => format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
    }
}

/// The id of a role assignment at a scope.
pub fn role_assignment_id(scope: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
        scope.trim_end_matches('/')
    )
}

/// Whether `ancestor` is `target` or one of its parents (`/` contains everything), by
/// segment and ignoring ASCII case ([`keyless_store::scope::contains`], the comparison
/// the stores' cascades use too).
pub fn scope_contains(ancestor: &str, target: &str) -> bool {
    scope::contains(ancestor, target)
}

/// Whether two ids name the same resource.
pub fn same_id(a: &str, b: &str) -> bool {
    scope::same(a, b)
}

/// The subscription GUID a scope lies in, if any (lowercased).
pub fn subscription_of(scope: &str) -> Option<String> {
    let mut s = scope::segments(scope);
    match (s.next(), s.next()) {
        (Some(k), Some(id)) if k.eq_ignore_ascii_case("subscriptions") => {
            crate::names::parse_guid(id)
        }
        _ => None,
    }
}

/// A parsed management scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `/`: the tenant root.
    Root,
    /// A subscription.
    Subscription {
        /// Subscription GUID (lowercase).
        subscription: String,
    },
    /// A resource group.
    ResourceGroup {
        /// Subscription GUID (lowercase).
        subscription: String,
        /// Group name.
        group: String,
    },
    /// A resource (or a child of one) inside a group.
    Resource {
        /// Subscription GUID (lowercase).
        subscription: String,
        /// Group name.
        group: String,
        /// Everything after `providers/`, e.g. `Microsoft.KeyVault/vaults/v1`.
        path: String,
    },
}

impl Scope {
    /// Parses a scope string; `None` when it is not one of the shapes above. The
    /// string is split on `/`, so it cannot carry a slash inside a segment; a scope
    /// from a request path goes through [`CanonicalScope::from_segments`] instead.
    pub fn parse(scope: &str) -> Option<Scope> {
        CanonicalScope::parse(scope).map(|c| c.shape)
    }

    /// The shape of canonical segments (see [`keyless_store::scope::canonical`]).
    fn of_canonical(segs: &[&str]) -> Option<Scope> {
        match segs {
            [] => Some(Scope::Root),
            ["subscriptions", id] => Some(Scope::Subscription {
                subscription: crate::names::parse_guid(id)?,
            }),
            ["subscriptions", id, "resourceGroups", g] => Some(Scope::ResourceGroup {
                subscription: crate::names::parse_guid(id)?,
                group: (*g).to_string(),
            }),
            [
                "subscriptions",
                id,
                "resourceGroups",
                g,
                "providers",
                rest @ ..,
            ] if rest.len() >= 3 => Some(Scope::Resource {
                subscription: crate::names::parse_guid(id)?,
                group: (*g).to_string(),
                path: rest.join("/"),
            }),
            _ => None,
        }
    }

    /// The subscription of the scope, if any.
    pub fn subscription(&self) -> Option<&str> {
        match self {
            Scope::Root => None,
            Scope::Subscription { subscription }
            | Scope::ResourceGroup { subscription, .. }
            | Scope::Resource { subscription, .. } => Some(subscription),
        }
    }
}

/// A role-assignment scope in canonical form, with its shape. Built only through
/// [`keyless_store::scope::canonical`], so every scope the role API stores or compares
/// is spelled one way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalScope {
    id: String,
    shape: Scope,
}

/// Why a request's scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidScope {
    /// A segment held a `/` (see [`ScopeError::SlashInSegment`]).
    #[error(transparent)]
    Segment(#[from] ScopeError),
    /// The segments are not the root, a subscription, a group or a resource in a group.
    #[error("the scope '{0}' is not the root, a subscription, a resource group or a resource")]
    Shape(String),
}

impl CanonicalScope {
    /// The scope made of decoded path `segments` (empty ones skipped).
    pub fn from_segments<'a>(
        segments: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, InvalidScope> {
        let id = scope::canonical(segments)?;
        let segs: Vec<&str> = scope::segments(&id).collect();
        let shape = Scope::of_canonical(&segs).ok_or_else(|| InvalidScope::Shape(id.clone()))?;
        Ok(Self { id, shape })
    }

    /// The scope spelled by `scope` (split on `/`); `None` when it is not a scope.
    pub fn parse(scope: &str) -> Option<Self> {
        Self::from_segments(scope.split('/')).ok()
    }

    /// The canonical id, e.g. `/subscriptions/{s}/resourceGroups/{g}`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the scope is.
    pub fn shape(&self) -> &Scope {
        &self.shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "/subscriptions/22222222-2222-2222-2222-222222222222";

    #[test]
    fn containment_is_by_segment_and_case_insensitive() {
        assert!(scope_contains("/", S));
        assert!(scope_contains(S, &format!("{S}/resourceGroups/rg")));
        assert!(scope_contains(
            &S.to_uppercase(),
            &format!("{S}/resourcegroups/RG")
        ));
        assert!(!scope_contains(
            &format!("{S}/resourceGroups/rg"),
            &format!("{S}/resourceGroups/rg2")
        ));
        assert!(!scope_contains(&format!("{S}/resourceGroups/rg"), S));
        assert!(same_id(
            &format!("{S}/resourceGroups/RG/"),
            &format!("{S}/resourcegroups/rg")
        ));
    }

    #[test]
    fn parse_scopes() {
        assert_eq!(Scope::parse("/"), Some(Scope::Root));
        assert!(matches!(Scope::parse(S), Some(Scope::Subscription { .. })));
        assert!(matches!(
            Scope::parse(&format!(
                "{S}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v"
            )),
            Some(Scope::Resource { .. })
        ));
        assert_eq!(Scope::parse("/subscriptions/not-a-guid"), None);
        assert_eq!(Scope::parse(&format!("{S}/resourceGroups")), None);
    }
}
