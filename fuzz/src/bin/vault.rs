//! AFL++ entry point of the `vault` target (see `keyless_fuzz::targets::vault`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        keyless_fuzz::targets::vault::run(data);
    });
}
