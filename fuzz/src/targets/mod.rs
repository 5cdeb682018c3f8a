//! The targets, one module each.

pub mod admission;
pub mod arm;
pub mod discovery;
pub mod expression;
pub mod jwks;
pub mod jws;
pub mod kubeconfig;
pub mod token_form;
pub mod vault;
