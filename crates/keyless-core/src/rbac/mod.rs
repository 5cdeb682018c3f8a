//! Role-based access control: the built-in role definitions and the evaluation of
//! role assignments against an action at a scope.

mod eval;
mod roles;

pub use eval::{Grant, action_matches, is_allowed};
pub use roles::{
    BUILTIN_ROLES, KEY_VAULT_ADMINISTRATOR, OWNER, RoleDefinition, builtin_role,
    builtin_role_by_name,
};
