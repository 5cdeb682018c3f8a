//! What a committed write changed, as far as the domain's in-memory view cares.
//!
//! A [`Change`] names the *key* of what changed, never its new value: whoever applies it
//! reads that key back from the store. That makes applying a change idempotent and
//! independent of the order in which concurrent writers get to apply theirs (the last
//! one to read sees the last commit), and lets the same value travel between replicas
//! as a short text (PostgreSQL `NOTIFY` payload, see [`Change::encode`]).
//!
//! Writes that are rare, or whose cascade is wide (tenants, subscriptions, service
//! principals, trusted issuers, deleting a resource group or a vault), are
//! [`Change::Everything`]: the reader reloads its whole view.

/// Longest payload [`Change::parse`] accepts and [`Change::encode`] produces (a longer
/// key is sent as [`Change::Everything`]). PostgreSQL's own limit is 8000 bytes.
pub const MAX_PAYLOAD: usize = 1024;

/// One change to the stored state, by key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// An identity was created, updated or deleted (with its credentials and role
    /// assignments, when deleted).
    Identity {
        /// Subscription GUID.
        subscription_id: String,
        /// Resource group name (any casing).
        resource_group: String,
        /// Identity name (any casing).
        name: String,
    },
    /// The federated credentials of one identity changed.
    Credentials {
        /// The identity's principal id.
        identity_principal_id: String,
    },
    /// The role assignments of one principal changed.
    RoleAssignments {
        /// Principal object id (lowercase).
        principal_id: String,
    },
    /// A resource group was created or updated.
    ResourceGroup {
        /// Subscription GUID.
        subscription_id: String,
        /// Group name (any casing).
        name: String,
    },
    /// A vault was created or updated.
    Vault {
        /// Vault name (any casing).
        name: String,
    },
    /// Secrets changed (not part of the view; cached copies must go).
    Secrets,
    /// Signing keys changed.
    SigningKeys,
    /// Anything else, or unknown: reload everything.
    Everything,
}

impl Change {
    /// The text form: `kind` or `kind:key` (e.g. `identity:<sub>/<group>/<name>`).
    /// A key too long for [`MAX_PAYLOAD`] gives `everything`.
    pub fn encode(&self) -> String {
        let text = match self {
            Change::Identity {
                subscription_id,
                resource_group,
                name,
            } => format!("identity:{subscription_id}/{resource_group}/{name}"),
            Change::Credentials {
                identity_principal_id,
            } => format!("credentials:{identity_principal_id}"),
            Change::RoleAssignments { principal_id } => format!("role_assignments:{principal_id}"),
            Change::ResourceGroup {
                subscription_id,
                name,
            } => format!("resource_group:{subscription_id}/{name}"),
            Change::Vault { name } => format!("vault:{name}"),
            Change::Secrets => "secrets".to_string(),
            Change::SigningKeys => "signing_keys".to_string(),
            Change::Everything => "everything".to_string(),
        };
        if text.len() > MAX_PAYLOAD {
            "everything".to_string()
        } else {
            text
        }
    }

    /// Parses [`Change::encode`]'s form. Anything unknown, malformed or oversized
    /// (including the bare table names older versions sent) is [`Change::Everything`],
    /// so a reader never misses a change it does not understand.
    pub fn parse(text: &str) -> Change {
        if text.len() > MAX_PAYLOAD {
            return Change::Everything;
        }
        let (kind, key) = text.split_once(':').unwrap_or((text, ""));
        let part = |s: &str| (!s.is_empty() && !s.contains('/')).then(|| s.to_string());
        let parsed = match kind {
            "identity" => {
                let mut it = key.split('/');
                match (it.next(), it.next(), it.next(), it.next()) {
                    (Some(s), Some(g), Some(n), None) => match (part(s), part(g), part(n)) {
                        (Some(subscription_id), Some(resource_group), Some(name)) => {
                            Some(Change::Identity {
                                subscription_id,
                                resource_group,
                                name,
                            })
                        }
                        _ => None,
                    },
                    _ => None,
                }
            }
            "credentials" => part(key).map(|identity_principal_id| Change::Credentials {
                identity_principal_id,
            }),
            "role_assignments" => {
                part(key).map(|principal_id| Change::RoleAssignments { principal_id })
            }
            "resource_group" => match key.split_once('/') {
                Some((s, n)) => match (part(s), part(n)) {
                    (Some(subscription_id), Some(name)) => Some(Change::ResourceGroup {
                        subscription_id,
                        name,
                    }),
                    _ => None,
                },
                None => None,
            },
            "vault" => part(key).map(|name| Change::Vault { name }),
            "secrets" if key.is_empty() => Some(Change::Secrets),
            "signing_keys" if key.is_empty() => Some(Change::SigningKeys),
            _ => None,
        };
        parsed.unwrap_or(Change::Everything)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for c in [
            Change::Identity {
                subscription_id: "s".into(),
                resource_group: "Rg.(1)".into(),
                name: "id-1".into(),
            },
            Change::Credentials {
                identity_principal_id: "p".into(),
            },
            Change::RoleAssignments {
                principal_id: "p".into(),
            },
            Change::ResourceGroup {
                subscription_id: "s".into(),
                name: "g".into(),
            },
            Change::Vault { name: "v".into() },
            Change::Secrets,
            Change::SigningKeys,
            Change::Everything,
        ] {
            assert_eq!(Change::parse(&c.encode()), c);
        }
    }

    #[test]
    fn unknown_malformed_or_oversized_is_everything() {
        for text in [
            "",
            "identities",
            "identity:s/g",
            "identity:s/g/n/x",
            "identity:s//n",
            "credentials:",
            "resource_group:s",
            "secrets:x",
            "what:ever",
        ] {
            assert_eq!(Change::parse(text), Change::Everything, "{text}");
        }
        let long = format!("vault:{}", "v".repeat(MAX_PAYLOAD));
        assert_eq!(Change::parse(&long), Change::Everything);
        assert_eq!(
            Change::Vault {
                name: "v".repeat(MAX_PAYLOAD)
            }
            .encode(),
            "everything"
        );
    }
}
