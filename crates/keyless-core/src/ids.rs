//! ARM resource ids and scopes. Ids keep the caller's casing but compare
//! case-insensitively, segment by segment.

/// `/subscriptions/{s}`.
pub fn subscription_id(sub: &str) -> String {
    format!("/subscriptions/{sub}")
}

/// `/subscriptions/{s}/resourceGroups/{rg}`.
pub fn resource_group_id(sub: &str, rg: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}")
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

fn segments(scope: &str) -> impl Iterator<Item = &str> {
    scope.split('/').filter(|s| !s.is_empty())
}

/// Whether `ancestor` is `target` or one of its parents (`/` contains everything).
pub fn scope_contains(ancestor: &str, target: &str) -> bool {
    let mut t = segments(target);
    for a in segments(ancestor) {
        match t.next() {
            Some(seg) if seg.eq_ignore_ascii_case(a) => {}
            _ => return false,
        }
    }
    true
}

/// Whether two ids name the same resource.
pub fn same_id(a: &str, b: &str) -> bool {
    segments(a).count() == segments(b).count() && scope_contains(a, b)
}

/// The subscription GUID a scope lies in, if any (lowercased).
pub fn subscription_of(scope: &str) -> Option<String> {
    let mut s = segments(scope);
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
    /// Parses a scope; `None` when it is not one of the shapes above.
    pub fn parse(scope: &str) -> Option<Scope> {
        let segs: Vec<&str> = segments(scope).collect();
        match segs.as_slice() {
            [] => Some(Scope::Root),
            [s, id] if s.eq_ignore_ascii_case("subscriptions") => Some(Scope::Subscription {
                subscription: crate::names::parse_guid(id)?,
            }),
            [s, id, r, g]
                if s.eq_ignore_ascii_case("subscriptions")
                    && r.eq_ignore_ascii_case("resourceGroups") =>
            {
                Some(Scope::ResourceGroup {
                    subscription: crate::names::parse_guid(id)?,
                    group: (*g).to_string(),
                })
            }
            [s, id, r, g, p, rest @ ..]
                if s.eq_ignore_ascii_case("subscriptions")
                    && r.eq_ignore_ascii_case("resourceGroups")
                    && p.eq_ignore_ascii_case("providers")
                    && rest.len() >= 3 =>
            {
                Some(Scope::Resource {
                    subscription: crate::names::parse_guid(id)?,
                    group: (*g).to_string(),
                    path: rest.join("/"),
                })
            }
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
