//! The Keyless domain: tenants, identities, federated credentials, role-based access
//! control, Keyless' own signing keys and the tokens it mints.
//!
//! Nothing here speaks HTTP or SQL. The [`Keyless`] façade takes a [`Store`], a
//! [`Clock`] and [`Settings`] as values; it keeps an in-memory [`view::View`] of
//! everything the token hot path needs and rebuilds it after every write.
//!
//! [`Store`]: keyless_store::Store
#![warn(missing_docs)]

pub mod clock;
pub mod error;
pub mod expression;
pub mod federation;
mod glob;
pub mod grant;
pub mod ids;
pub mod keyless;
pub mod keyring;
pub mod management;
pub mod metrics;
pub mod names;
pub mod rbac;
pub mod settings;
pub mod signin;
pub mod tokens;
pub mod vault;
pub mod view;

pub use clock::{Clock, SystemClock};
pub use error::{ErrorKind, ManagementError};
pub use keyless::Keyless;
pub use settings::{PublicUrl, Settings};
