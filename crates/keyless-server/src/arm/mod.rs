//! The ARM-compatible management API. ARM paths nest scopes arbitrarily and compare
//! keywords case-insensitively, so one dispatcher parses the path segments instead of
//! a static route table.

pub mod auth;
pub mod dispatch;
pub mod render;
mod versions;
