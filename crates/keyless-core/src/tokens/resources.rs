//! The resources Keyless issues tokens for.

use crate::settings::PublicUrl;

/// Which Keyless resource a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// The management API.
    ResourceManager,
    /// The vault data plane.
    Vault,
}

/// A resource: its canonical audience and token layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Which one.
    pub kind: ResourceKind,
    /// The `aud` of its tokens.
    pub audience: String,
}

/// Resolves a resource URI (v1 `resource=`), tolerating one trailing slash either way.
pub fn resolve_resource(public: &PublicUrl, uri: &str) -> Option<Resource> {
    let rm = public.resource_manager();
    let vault = public.vault_resource();
    let trimmed = uri.trim_end_matches('/');
    if uri.len() - trimmed.len() > 2 {
        return None;
    }
    if trimmed.eq_ignore_ascii_case(rm.trim_end_matches('/')) {
        Some(Resource {
            kind: ResourceKind::ResourceManager,
            audience: rm,
        })
    } else if trimmed.eq_ignore_ascii_case(&vault) {
        Some(Resource {
            kind: ResourceKind::Vault,
            audience: vault,
        })
    } else {
        None
    }
}

/// Resolves a v2 `scope`: exactly one `{resource}/.default`. Both
/// `https://host:port/.default` (the SDKs) and `https://host:port//.default` (az)
/// name the resource manager.
pub fn resolve_scope(public: &PublicUrl, scope: &str) -> Result<Resource, ScopeError> {
    let parts: Vec<&str> = scope.split_whitespace().collect();
    let [one] = parts.as_slice() else {
        return Err(ScopeError::NotSingle);
    };
    let Some(resource) = one.strip_suffix("/.default") else {
        return Err(ScopeError::NotDefault);
    };
    resolve_resource(public, resource).ok_or(ScopeError::UnknownResource(resource.to_string()))
}

/// Why a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeError {
    /// Several scopes, or none.
    NotSingle,
    /// Not of the form `{resource}/.default`.
    NotDefault,
    /// The resource is not known.
    UnknownResource(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PublicUrl {
        PublicUrl {
            host: "localhost".into(),
            port: 8443,
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(
            resolve_scope(&p(), "https://localhost:8443/.default").map(|r| r.kind),
            Ok(ResourceKind::ResourceManager)
        );
        assert_eq!(
            resolve_scope(&p(), "https://localhost:8443//.default").map(|r| r.kind),
            Ok(ResourceKind::ResourceManager)
        );
        assert_eq!(
            resolve_scope(&p(), "https://vault.localhost:8443/.default").map(|r| r.kind),
            Ok(ResourceKind::Vault)
        );
        assert_eq!(
            resolve_scope(&p(), "https://vault.localhost:8443").map(|r| r.kind),
            Err(ScopeError::NotDefault)
        );
        assert_eq!(
            resolve_scope(&p(), "a/.default b/.default"),
            Err(ScopeError::NotSingle)
        );
        assert!(matches!(
            resolve_scope(&p(), "https://graph.microsoft.com/.default"),
            Err(ScopeError::UnknownResource(_))
        ));
    }
}
