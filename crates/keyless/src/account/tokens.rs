//! `keyless account get-access-token` and `keyless token get`.

use std::io::Write;

use anyhow::{Context, Result};
use keyless_credential::{AccessToken, Error as CredentialError, scope_for_resource};
use serde_json::{Value, json};

use super::session::{CredentialKind, Session};
use super::{GetAccessTokenArgs, TargetArgs, TokenGetArgs, times};

/// The scope asked for: `--scope`, else `--resource` + `/.default`, else the account's
/// resource manager (as az does).
pub fn scope(target: &TargetArgs, session: &Session) -> String {
    match (&target.scope, &target.resource) {
        (Some(scope), _) => scope.trim().to_owned(),
        (None, Some(resource)) => scope_for_resource(resource),
        (None, None) => scope_for_resource(&session.profile.resource_manager_resource),
    }
}

/// A token for the signed-in account; errors say what to do about them.
pub async fn token(session: &Session, scope: &str) -> Result<AccessToken> {
    let credential = session.credential()?;
    credential.get_token(scope).await.map_err(|e| {
        let hint = hint(&e, session);
        anyhow::Error::new(e).context(format!(
            "cannot get a token for {scope} as {}{hint}",
            session.profile.client_id
        ))
    })
}

fn hint(error: &CredentialError, session: &Session) -> &'static str {
    let expired_assertion = error.aadsts_codes().contains(&700024);
    match session.profile.credential_type {
        CredentialKind::FederatedToken if expired_assertion => {
            " (the federated token given at login has expired: log in again with a fresh one, \
             or with --federated-token @FILE to read a rotated token file)"
        }
        CredentialKind::FederatedTokenFile if expired_assertion => {
            " (the token in the federated token file has expired: is it still being rotated?)"
        }
        _ => "",
    }
}

/// az's output: `accessToken`, `expiresOn` (local time), `expires_on` (Unix seconds),
/// `subscription` (when the account has one), `tenant`, `tokenType`.
pub fn access_token_json(token: &AccessToken, tenant: &str, subscription: Option<&str>) -> Value {
    let expires_on = token.expires_on_unix();
    let mut value = json!({
        "accessToken": token.secret(),
        "expiresOn": times::az_local(expires_on),
        "expires_on": expires_on,
        "tenant": tenant,
        "tokenType": token.token_type(),
    });
    if let (Some(subscription), Some(object)) = (subscription, value.as_object_mut()) {
        object.insert("subscription".into(), json!(subscription));
    }
    value
}

/// Runs `keyless account get-access-token`.
pub async fn get_access_token(args: GetAccessTokenArgs) -> Result<()> {
    let session = Session::load()?;
    let scope = scope(&args.target, &session);
    let token = token(&session, &scope).await?;
    let subscription = args
        .subscription
        .as_deref()
        .or_else(|| session.subscription().map(|s| s.id.as_str()));
    args.output.emit(&access_token_json(
        &token,
        &session.profile.tenant_id,
        subscription,
    ))
}

/// Runs `keyless token get`: the token and a newline, nothing else.
pub async fn token_get(args: TokenGetArgs) -> Result<()> {
    let session = Session::load()?;
    let scope = scope(&args.target, &session);
    let token = token(&session, &scope).await?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", token.secret()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn az_shape() {
        let token = AccessToken::new("t0k", UNIX_EPOCH + Duration::from_secs(1_735_732_800));
        let v = access_token_json(&token, "tenant-1", Some("sub-1"));
        assert_eq!(v["accessToken"], "t0k");
        assert_eq!(v["expires_on"], 1_735_732_800);
        assert_eq!(v["tenant"], "tenant-1");
        assert_eq!(v["subscription"], "sub-1");
        assert_eq!(v["tokenType"], "Bearer");
        assert_eq!(v["expiresOn"].as_str().map(str::len), Some(26));
        let v = access_token_json(&token, "tenant-1", None);
        assert!(v.get("subscription").is_none());
    }
}
