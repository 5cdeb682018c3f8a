//! Bearer authentication of management calls.

use axum::http::{HeaderMap, StatusCode, header};
use keyless_core::Keyless;
use keyless_core::tokens::{Caller, TokenRejection};

use crate::errors::ArmResponseError;

/// Authenticates the caller from `Authorization: Bearer …` for the resource manager.
pub fn authenticate(keyless: &Keyless, headers: &HeaderMap) -> Result<Caller, ArmResponseError> {
    let public = &keyless.settings().public;
    let challenge = format!(
        "Bearer authorization_uri=\"{}\", error=\"invalid_token\"",
        public.authority()
    );
    let fail = |code: &str, message: String| {
        let mut e = ArmResponseError::new(StatusCode::UNAUTHORIZED, code, message);
        e.challenge = Some(challenge.clone());
        e
    };
    if !headers.contains_key(header::AUTHORIZATION) {
        return Err(fail(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".into(),
        ));
    }
    let token = crate::bearer::bearer_token(headers).ok_or_else(|| {
        fail(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header must be 'Bearer <token>'.".into(),
        )
    })?;
    keyless
        .authenticate(token, &public.resource_manager())
        .map_err(|r| {
            let code = match r {
                TokenRejection::WrongAudience { .. } => "InvalidAuthenticationTokenAudience",
                TokenRejection::Expired { .. } => "ExpiredAuthenticationToken",
                _ => "InvalidAuthenticationToken",
            };
            fail(
                code,
                format!(
                    "{r}. Get a token for '{}' from this server.",
                    public.resource_manager()
                ),
            )
        })
}
