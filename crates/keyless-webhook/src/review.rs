//! `AdmissionReview` (`admission.k8s.io/v1`): the request as the API server sends it,
//! and the response, with `patch` base64-encoded as the API documents it.
//!
//! The pod stays a raw [`serde_json::Value`]; only the envelope is typed.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Rejection;
use crate::patch::{self, PatchOp};

/// The only `apiVersion` served.
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// Why a body is not an `AdmissionReview` the webhook can answer (HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or not the expected shape.
    #[error("the body is not a JSON AdmissionReview: {0}")]
    Malformed(String),
    /// Another API version (e.g. `admission.k8s.io/v1beta1`).
    #[error(
        "unsupported AdmissionReview apiVersion {0:?}: this webhook serves only admission.k8s.io/v1 (set admissionReviewVersions: [v1])"
    )]
    ApiVersion(String),
    /// Another kind.
    #[error("expected kind AdmissionReview, got {0:?}")]
    Kind(String),
    /// No `request`.
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// `request.kind` / `request.resource`: group, version and kind or resource.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupVersion {
    /// API group (`""` for core).
    #[serde(default)]
    pub group: String,
    /// Version.
    #[serde(default)]
    pub version: String,
    /// Kind (for `kind`).
    #[serde(default)]
    pub kind: String,
    /// Resource (for `resource`).
    #[serde(default)]
    pub resource: String,
}

/// The fields of `request` the webhook uses; everything else is ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    /// Echoed in the response.
    pub uid: String,
    /// What is admitted.
    #[serde(default)]
    pub kind: GroupVersion,
    /// Which resource.
    #[serde(default)]
    pub resource: GroupVersion,
    /// Subresource, if any.
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// Namespace of the request (pods from controllers carry none of their own).
    #[serde(default)]
    pub namespace: Option<String>,
    /// `CREATE`, `UPDATE`, ...
    #[serde(default)]
    pub operation: String,
    /// The object, raw.
    #[serde(default)]
    pub object: Value,
}

impl AdmissionRequest {
    /// Whether this is the creation of a core/v1 Pod (the only thing mutated).
    pub fn is_pod_create(&self) -> bool {
        self.kind.group.is_empty()
            && self.kind.kind == "Pod"
            && self.operation == "CREATE"
            && self.sub_resource.as_deref().unwrap_or_default().is_empty()
    }
}

/// The envelope's fields, read without building the request (`IgnoredAny` skips it
/// without allocating), so its checks come first and cost little.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    request: Option<serde::de::IgnoredAny>,
}

/// The request itself, decoded straight from the body (the pod is built once).
#[derive(Deserialize)]
struct WithRequest {
    request: AdmissionRequest,
}

/// Decodes a review body.
pub fn decode(body: &[u8]) -> Result<AdmissionRequest, ReviewError> {
    // serde would also accept a JSON array for a struct: only an object is a review.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ReviewError::Malformed("expected a JSON object".to_owned()));
    }
    // JSON text is UTF-8 (RFC 8259 §8.1). serde_json does not check the bytes of what
    // it skips (`IgnoredAny`, unknown fields), so check the whole body once up front:
    // a review is valid JSON or it is refused, whichever fields it hides bad bytes in.
    let body =
        std::str::from_utf8(body).map_err(|e| ReviewError::Malformed(format!("not UTF-8: {e}")))?;
    let envelope: Envelope =
        serde_json::from_str(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    match envelope.api_version.as_deref() {
        Some(API_VERSION) => {}
        other => {
            return Err(ReviewError::ApiVersion(
                other.unwrap_or_default().to_owned(),
            ));
        }
    }
    match envelope.kind.as_deref() {
        Some("AdmissionReview") => {}
        other => return Err(ReviewError::Kind(other.unwrap_or_default().to_owned())),
    }
    if envelope.request.is_none() {
        return Err(ReviewError::NoRequest);
    }
    let WithRequest { request } =
        serde_json::from_str(body).map_err(|e| ReviewError::Malformed(format!("request: {e}")))?;
    if request.uid.is_empty() {
        return Err(ReviewError::Malformed("request.uid is empty".to_owned()));
    }
    Ok(request)
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Allowed; the patch is empty when nothing changes.
    Allow(Vec<PatchOp>),
    /// Refused.
    Deny(Rejection),
}

/// The response review for `uid`.
///
/// ```
/// use keyless_webhook::review::{Verdict, respond};
/// let r = respond("u1", &Verdict::Allow(vec![]));
/// assert_eq!(r["response"]["uid"], "u1");
/// assert_eq!(r["response"]["allowed"], true);
/// assert!(r["response"].get("patch").is_none());
/// ```
pub fn respond(uid: &str, verdict: &Verdict) -> Value {
    let response = match verdict {
        Verdict::Allow(ops) if ops.is_empty() => json!({"uid": uid, "allowed": true}),
        Verdict::Allow(ops) => json!({
            "uid": uid,
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": base64::engine::general_purpose::STANDARD.encode(patch::to_json(ops)),
        }),
        Verdict::Deny(rejection) => json!({
            "uid": uid,
            "allowed": false,
            "status": {
                "status": "Failure",
                "code": rejection.code(),
                "reason": if rejection.code() == 500 { "InternalError" } else { "BadRequest" },
                "message": rejection.to_string(),
            },
        }),
    };
    json!({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_v1_review_and_ignores_unknown_fields() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},
            "resource":{"group":"","version":"v1","resource":"pods"},"operation":"CREATE",
            "userInfo":{"username":"x"},"object":{"a":1},"dryRun":false,"options":{}}}"#;
        let r = decode(body).unwrap();
        assert!(r.is_pod_create());
        assert_eq!(r.object, json!({"a": 1}));
        assert_eq!(r.namespace, None);
    }

    #[test]
    fn refuses_other_versions_kinds_and_shapes() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "not a JSON"),
            (b"[]", "not a JSON"),
            (br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}"#, "v1beta1"),
            (br#"{"kind":"AdmissionReview","request":{"uid":"u"}}"#, "apiVersion"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"u"}}"#, "kind"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#, "no request"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}"#, "uid"),
        ];
        for (body, needle) in cases {
            let msg = decode(body).unwrap_err().to_string();
            assert!(msg.contains(needle), "{msg}");
        }
    }

    #[test]
    fn refuses_bad_utf8_even_in_fields_it_skips() {
        // Found by the `admission` fuzz target: invalid bytes inside an ignored key.
        let mut body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
            "uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE",
            "resource":{"r"#
            .to_vec();
        body.extend_from_slice(&[0xa7, 0xa7]);
        body.extend_from_slice(br#"x":"pods"},"object":{"a":1}}}"#);
        assert!(serde_json::from_slice::<Value>(&body).is_err());
        let msg = decode(&body).unwrap_err().to_string();
        assert!(msg.contains("UTF-8"), "{msg}");
    }

    #[test]
    fn patch_is_base64_of_the_json_patch() {
        let ops = vec![PatchOp::add(["spec", "volumes"], json!([]))];
        let r = respond("u", &Verdict::Allow(ops));
        let b64 = r["response"]["patch"].as_str().unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let patch: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/spec/volumes", "value": []}])
        );
        assert_eq!(r["response"]["patchType"], "JSONPatch");
    }

    #[test]
    fn denial_carries_code_and_message() {
        let r = respond(
            "u",
            &Verdict::Deny(Rejection::ServiceAccountNotFound { name: "sa".into() }),
        );
        assert_eq!(r["response"]["allowed"], false);
        assert_eq!(r["response"]["status"]["code"], 400);
        assert_eq!(
            r["response"]["status"]["message"],
            "serviceaccounts \"sa\" not found"
        );
    }
}
