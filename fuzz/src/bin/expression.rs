//! AFL++ entry point of the `expression` target (see `keyless_fuzz::targets::expression`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        keyless_fuzz::targets::expression::run(data);
    });
}
