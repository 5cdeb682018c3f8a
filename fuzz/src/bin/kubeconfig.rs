//! AFL++ entry point of the `kubeconfig` target (see `keyless_fuzz::targets::kubeconfig`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        keyless_fuzz::targets::kubeconfig::run(data);
    });
}
