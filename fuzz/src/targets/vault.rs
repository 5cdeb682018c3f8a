//! `vault`: see docs/design/fuzzing.md. One request (see [`crate::request`]) through the
//! real router of an in-process server.

/// Runs one input.
pub fn run(data: &[u8]) {
    crate::server::get().run(data);
}
