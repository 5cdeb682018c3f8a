//! AFL++ entry point of the `admission` target (see `keyless_fuzz::targets::admission`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        keyless_fuzz::targets::admission::run(data);
    });
}
