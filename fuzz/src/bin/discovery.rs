//! AFL++ entry point of the `discovery` target (see `keyless_fuzz::targets::discovery`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        keyless_fuzz::targets::discovery::run(data);
    });
}
