//! Gets a token from Keyless with the real, unmodified Rust Azure SDK and prints what it got.
//!
//! Configuration is exactly what the AKS workload identity webhook injects into a pod, so the
//! SDK is used the way a real workload uses it:
//!
//! - `AZURE_AUTHORITY_HOST` — Keyless' token service (`https://localhost:PORT`)
//! - `AZURE_TENANT_ID`, `AZURE_CLIENT_ID` — the tenant and the identity's client id
//! - `AZURE_FEDERATED_TOKEN_FILE` — the projected service-account token
//! - `SSL_CERT_FILE` — Keyless' CA (read by rustls-native-certs through the platform verifier)
//!
//! Usage: `rust-azure-sdk-interop SCOPE [--repeat N]`
//!
//! Calls `get_token(&[SCOPE])` 1 + N times on one credential and prints one JSON object on
//! stdout: `{"header": {...}, "claims": {...}, "expires_on": UNIX, "repeat_same_token": bool}`
//! (the access token's decoded JOSE header and payload, `AccessToken::expires_on`, and
//! whether the repeated calls returned the same token, i.e. the SDK's cache answered). On an SDK error it prints the error (its `Display`, which
//! carries the service's error description) on stderr and exits with status 1.

use azure_core::credentials::TokenCredential;
use azure_identity::WorkloadIdentityCredential;
use base64::Engine as _;
use std::process::ExitCode;

/// The decoded JOSE header and payload of a compact JWS (not verified: Keyless signed it,
/// the test only looks at it).
fn decode_jwt(token: &str) -> Result<(serde_json::Value, serde_json::Value), String> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the access token is not a compact JWS (three parts)".into());
    };
    let decode = |part: &str, what: &str| -> Result<serde_json::Value, String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|e| format!("access token {what} is not base64url: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("access token {what} is not JSON: {e}"))
    };
    Ok((decode(header, "header")?, decode(payload, "payload")?))
}

async fn run(scope: &str, repeat: usize) -> Result<serde_json::Value, String> {
    let credential = WorkloadIdentityCredential::new(None).map_err(|e| e.to_string())?;
    let first = credential
        .get_token(&[scope], None)
        .await
        .map_err(|e| e.to_string())?;
    let mut same = true;
    for _ in 0..repeat {
        let again = credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| e.to_string())?;
        same &= again.token.secret() == first.token.secret();
    }
    let (header, claims) = decode_jwt(first.token.secret())?;
    Ok(serde_json::json!({
        "header": header,
        "claims": claims,
        "expires_on": first.expires_on.unix_timestamp(),
        "repeat_same_token": same,
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (scope, repeat) = match args.as_slice() {
        [scope] => (scope.as_str(), 0),
        [scope, flag, n] if flag == "--repeat" => match n.parse() {
            Ok(n) => (scope.as_str(), n),
            Err(_) => return usage(),
        },
        _ => return usage(),
    };
    match run(scope, repeat).await {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: rust-azure-sdk-interop SCOPE [--repeat N]");
    ExitCode::from(2)
}
