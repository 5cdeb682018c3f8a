//! The Key Vault-compatible data plane, served on vault hosts
//! (`https://{vault}.vault.{public-host}[:port]`) on the same listener as everything
//! else: requests are routed by host before path routing.

mod auth;
mod handlers;
mod paging;
pub(crate) mod render;
mod reply;

pub use handlers::{handle, vault_name_from_host};
