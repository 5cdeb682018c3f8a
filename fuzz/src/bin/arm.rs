//! AFL++ entry point of the `arm` target (see `keyless_fuzz::targets::arm`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        keyless_fuzz::targets::arm::run(data);
    });
}
