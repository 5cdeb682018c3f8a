//! The ARM-compatible management API. ARM paths nest scopes arbitrarily and compare
//! keywords case-insensitively, so one dispatcher parses the path segments instead of
//! a static route table.
//!
//! `request` reads a request, `dispatch` matches its path to an operation, and each
//! resource family has a module with its handlers: `resources` (tenants, subscriptions,
//! resource groups), `identities`, `vaults`, `authorization` and `provider` (Keyless'
//! own operations). `render` holds their JSON, `reply` the shared replies. `cloud_metadata`
//! serves the anonymous cloud metadata document (`/metadata/endpoints`).

pub mod auth;
mod authorization;
pub mod cloud_metadata;
pub mod dispatch;
mod identities;
pub mod paging;
mod provider;
pub mod render;
mod reply;
mod request;
mod resources;
mod vaults;
mod versions;
