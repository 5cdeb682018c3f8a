//! The Entra-compatible token service: discovery, JWKS and the token endpoints.

pub mod discovery;
pub mod token;
