//! Role-based access control: the built-in role definitions, the evaluation of
//! role assignments against an action at a scope, and the escalation rule that ties
//! federated credentials to the roles of their identity.

mod escalation;
mod eval;
mod roles;

pub use escalation::{ROLE_ASSIGNMENT_WRITE, could_grant, first_ungrantable};
pub use eval::{Grant, action_matches, is_allowed};
pub use roles::{
    BUILTIN_ROLES, KEY_VAULT_ADMINISTRATOR, MANAGED_IDENTITY_CONTRIBUTOR,
    MANAGED_IDENTITY_OPERATOR, OWNER, RoleDefinition, builtin_role, builtin_role_by_name,
};
