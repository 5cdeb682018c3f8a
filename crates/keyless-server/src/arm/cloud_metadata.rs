//! `GET /metadata/endpoints`: the cloud metadata document, anonymously, so that `az cloud
//! register -n keyless --endpoint-resource-manager https://HOST:PORT/` and Terraform's
//! `metadata_host` find every endpoint from the resource manager URL alone.
//!
//! It says only what discovery already says to anyone: the public origin and the names
//! derived from it (the configured public URL, never the request's `Host`). No tenant,
//! subscription or vault is named.
//!
//! The shape follows the `api-version`, as ARM's does: from 2022-09-01 (azure-cli 2.x,
//! go-azure-sdk) one object for this cloud; from 2019-05-01 up to then (older Go SDKs
//! and go-azure-helpers) a list of clouds, here that one object alone; earlier versions
//! (`1.0`, `2015-01-01`) and none, the object.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keyless_core::PublicUrl;
use keyless_proto::cloud_metadata::{CloudAuthentication, CloudMetadata, CloudSuffixes};

use super::request::param;
use super::versions::version_date;
use crate::errors::ArmResponseError;
use crate::router::AppState;

/// The cloud name clients record (`environmentName`).
pub const CLOUD_NAME: &str = "Keyless";

/// Keyless serves no Microsoft Graph, but the Go SDK's loader refuses a document
/// without this id; a token asked for it is refused by Keyless' token service.
const MICROSOFT_GRAPH: &str = "https://graph.microsoft.com/";

/// First api-version answered with a list of clouds.
const LIST_FROM: &str = "2019-05-01";
/// First api-version answered with this cloud's object again.
const OBJECT_FROM: &str = "2022-09-01";

/// How an api-version wants the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Object,
    List,
}

fn shape_for(version: Option<&str>) -> Result<Shape, ArmResponseError> {
    let Some(version) = version else {
        return Ok(Shape::Object);
    };
    if version == "1.0" {
        return Ok(Shape::Object);
    }
    match version_date(version) {
        Some(date) if (LIST_FROM..OBJECT_FROM).contains(&date) => Ok(Shape::List),
        Some(_) => Ok(Shape::Object),
        None => Err(ArmResponseError::new(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{}' is invalid. Use a date such as {OBJECT_FROM} (one cloud) or {LIST_FROM} (a list of clouds).",
                keyless_core::names::printable(version)
            ),
        )),
    }
}

/// This server's cloud metadata.
pub fn document(public: &PublicUrl) -> CloudMetadata {
    let resource_manager = public.resource_manager();
    let vault_resource = public.vault_resource();
    let key_vault_dns = vault_resource
        .strip_prefix("https://")
        .unwrap_or(&vault_resource)
        .to_string();
    CloudMetadata {
        name: CLOUD_NAME.to_string(),
        resource_manager: resource_manager.clone(),
        authentication: CloudAuthentication {
            login_endpoint: format!("{}/", public.authority()),
            audiences: vec![resource_manager],
            tenant: "common".to_string(),
            identity_provider: "AAD".to_string(),
        },
        microsoft_graph_resource_id: MICROSOFT_GRAPH.to_string(),
        suffixes: CloudSuffixes { key_vault_dns },
    }
}

/// `GET /metadata/endpoints[?api-version=...]`, anonymous.
pub async fn endpoints(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let q: Vec<(String, String)> = query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let doc = document(&state.keyless.settings().public);
    match shape_for(param(&q, "api-version")) {
        Ok(Shape::Object) => Json(doc).into_response(),
        Ok(Shape::List) => Json(vec![doc]).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn shapes_follow_the_api_version() {
        assert_eq!(shape_for(None).unwrap(), Shape::Object);
        assert_eq!(shape_for(Some("1.0")).unwrap(), Shape::Object);
        assert_eq!(shape_for(Some("2015-01-01")).unwrap(), Shape::Object);
        assert_eq!(shape_for(Some("2018-01-01")).unwrap(), Shape::Object);
        assert_eq!(shape_for(Some("2019-05-01")).unwrap(), Shape::List);
        assert_eq!(shape_for(Some("2020-06-01")).unwrap(), Shape::List);
        assert_eq!(shape_for(Some("2022-08-31")).unwrap(), Shape::List);
        assert_eq!(shape_for(Some("2022-09-01")).unwrap(), Shape::Object);
        assert_eq!(
            shape_for(Some("2024-01-01-preview")).unwrap(),
            Shape::Object
        );
        for bad in ["", "latest", "2022-9-1", "2022-09-01x", "1.0.0"] {
            let e = shape_for(Some(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(e.code, "InvalidApiVersionParameter");
        }
    }

    #[test]
    fn document_is_derived_from_the_public_url() {
        let d = document(&PublicUrl {
            host: "keyless.example".into(),
            port: 8443,
        });
        assert_eq!(d.resource_manager, "https://keyless.example:8443/");
        assert_eq!(
            d.authentication.login_endpoint,
            "https://keyless.example:8443/"
        );
        assert_eq!(
            d.authentication.audiences,
            ["https://keyless.example:8443/"]
        );
        assert_eq!(d.suffixes.key_vault_dns, "vault.keyless.example:8443");
        let d = document(&PublicUrl {
            host: "keyless.example".into(),
            port: 443,
        });
        assert_eq!(d.resource_manager, "https://keyless.example/");
        assert_eq!(d.suffixes.key_vault_dns, "vault.keyless.example");
    }
}
