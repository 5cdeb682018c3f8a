//! User-assigned identities and their federated credentials
//! (`Microsoft.ManagedIdentity`).

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use keyless_core::Keyless;
use keyless_core::management::FederatedCredentialInput;
use keyless_core::tokens::Caller;
use serde_json::Value;

use super::render;
use super::reply::{ArmResult, deleted, listed, method_not_allowed, not_found_path, ok, upserted};
use super::request::{eq, json_body};
use crate::errors::ArmResponseError;

/// Top-level body of a federated credential PUT.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FicPut {
    properties: Option<keyless_proto::arm::FederatedCredentialProperties>,
    #[serde(default)]
    #[allow(dead_code)] // read-only fields clients echo back
    id: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<Value>,
    #[serde(default, rename = "type")]
    #[allow(dead_code)]
    kind: Option<Value>,
}

/// `/subscriptions/{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`.
pub(super) async fn in_subscription(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    sub: &str,
) -> ArmResult {
    match *method {
        Method::GET => listed(
            k.list_identities(c, sub, None)
                .await?
                .iter()
                .map(render::identity)
                .collect(),
        ),
        _ => Err(method_not_allowed(method)),
    }
}

/// Everything under
/// `/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`;
/// `rest` is the path after it.
pub(super) async fn in_resource_group(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    sub: &str,
    rg: &str,
    rest: &[&str],
    body: &Bytes,
) -> ArmResult {
    match (method, rest) {
        (&Method::GET, []) => listed(
            k.list_identities(c, sub, Some(rg))
                .await?
                .iter()
                .map(render::identity)
                .collect(),
        ),
        (_, [name]) => identity(k, c, method, sub, rg, name, body).await,
        (&Method::GET, [name, f]) if eq(f, "federatedIdentityCredentials") => {
            let identity = k.get_identity(c, sub, rg, name).await?;
            let list = k.list_federated_credentials(c, sub, rg, name).await?;
            listed(
                list.iter()
                    .map(|f| render::federated_credential(&identity, f))
                    .collect(),
            )
        }
        (_, [name, f, fic]) if eq(f, "federatedIdentityCredentials") => {
            federated_credential(k, c, method, sub, rg, name, fic, body).await
        }
        _ => Err(not_found_path(&format!(
            "…/userAssignedIdentities/{}",
            rest.join("/")
        ))),
    }
}

/// One identity.
async fn identity(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    sub: &str,
    rg: &str,
    name: &str,
    body: &Bytes,
) -> ArmResult {
    match *method {
        Method::PUT => {
            let put: keyless_proto::arm::TrackedResourcePut = json_body(body)?;
            let (i, o) = k
                .put_identity(c, sub, rg, name, put.location.as_deref(), put.tags)
                .await?;
            upserted(render::identity(&i), o)
        }
        Method::PATCH => {
            let patch: keyless_proto::arm::TrackedResourcePut = json_body(body)?;
            let current = k.get_identity(c, sub, rg, name).await?;
            if patch
                .location
                .as_deref()
                .is_some_and(|l| !l.eq_ignore_ascii_case(&current.location))
            {
                return Err(ArmResponseError::new(
                    StatusCode::BAD_REQUEST,
                    "LocationNotAvailable",
                    "The location of an identity cannot be changed.",
                ));
            }
            let tags = patch.tags.or(Some(current.tags.clone()));
            let (i, _) = k
                .put_identity(c, sub, rg, name, Some(&current.location), tags)
                .await?;
            ok(render::identity(&i))
        }
        Method::GET => ok(render::identity(&k.get_identity(c, sub, rg, name).await?)),
        Method::DELETE => deleted(k.delete_identity(c, sub, rg, name).await?),
        _ => Err(method_not_allowed(method)),
    }
}

/// One federated credential `fic` of identity `name`.
#[allow(clippy::too_many_arguments)] // the resource id's parts, one per level
async fn federated_credential(
    k: &Keyless,
    c: &Caller,
    method: &Method,
    sub: &str,
    rg: &str,
    name: &str,
    fic: &str,
    body: &Bytes,
) -> ArmResult {
    match *method {
        Method::PUT => {
            let put: FicPut = json_body(body)?;
            let input = FederatedCredentialInput::from_properties(put.properties)?;
            let (rec, o) = k
                .put_federated_credential(c, sub, rg, name, fic, input)
                .await?;
            let identity = k.get_identity(c, sub, rg, name).await?;
            upserted(render::federated_credential(&identity, &rec), o)
        }
        Method::GET => {
            let rec = k.get_federated_credential(c, sub, rg, name, fic).await?;
            let identity = k.get_identity(c, sub, rg, name).await?;
            ok(render::federated_credential(&identity, &rec))
        }
        Method::DELETE => deleted(k.delete_federated_credential(c, sub, rg, name, fic).await?),
        _ => Err(method_not_allowed(method)),
    }
}
