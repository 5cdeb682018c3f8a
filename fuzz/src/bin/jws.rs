//! AFL++ entry point of the `jws` target (see `keyless_fuzz::targets::jws`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        keyless_fuzz::targets::jws::run(data);
    });
}
