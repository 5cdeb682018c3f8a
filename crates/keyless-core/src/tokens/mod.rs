//! Access tokens Keyless mints, the resources they are for, and their validation by
//! Keyless' own resources (management API, vault).

mod claims;
mod resources;
mod validate;
mod verified;

pub use claims::AccessTokenClaims;
pub use resources::{Resource, ResourceKind, ScopeError, resolve_resource, resolve_scope};
pub use validate::{Caller, TimeRules, TokenRejection, validate_access_token};
pub use verified::{DEFAULT_CAPACITY as VERIFIED_TOKENS_CAPACITY, VerifiedTokens};

/// Largest token Keyless will parse (assertions and access tokens alike).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
