//! `token_form`: the token endpoint's form body (and what it carries: client
//! assertions, secrets, scopes). Input: the path on the first line (normally
//! `/@TENANT@/oauth2/v2.0/token` or `/@TENANT@/oauth2/token`), the
//! `application/x-www-form-urlencoded` body after it. Placeholders as in
//! [`crate::request`]; `@ASSERTION@` is a valid workload assertion for `fuzz-id`.

/// Runs one input.
pub fn run(data: &[u8]) {
    let (path, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let mut req = b"POST ".to_vec();
    req.extend_from_slice(path);
    req.extend_from_slice(b"\ncontent-type: application/x-www-form-urlencoded\n\n");
    req.extend_from_slice(body);
    crate::server::get().run(&req);
}
