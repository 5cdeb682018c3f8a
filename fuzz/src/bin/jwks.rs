//! AFL++ entry point of the `jwks` target (see `keyless_fuzz::targets::jwks`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        keyless_fuzz::targets::jwks::run(data);
    });
}
