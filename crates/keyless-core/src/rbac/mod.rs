//! Role-based access control: the built-in role definitions and the evaluation of
//! role assignments against an action at a scope.

mod eval;
mod roles;

pub use eval::{action_matches, is_allowed, Grant};
pub use roles::{builtin_role, builtin_role_by_name, RoleDefinition, BUILTIN_ROLES, OWNER};
