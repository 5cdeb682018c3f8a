//! AFL++ entry point of the `token_form` target (see `keyless_fuzz::targets::token_form`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        keyless_fuzz::targets::token_form::run(data);
    });
}
