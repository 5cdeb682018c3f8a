//! Kubernetes objects the CLI prints: the MutatingWebhookConfiguration (the same as
//! `deploy/webhook/mutatingwebhookconfiguration.yaml`, with the CA bundle filled in), the
//! serving certificate Secret, a workload ServiceAccount, and the part of a workload's
//! pod template that asks the webhook for it.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::certs::WebhookCerts;
use crate::keys::{
    CLIENT_ID_ANNOTATION, INJECT_PROXY_SIDECAR_ANNOTATION, MANAGED_IDENTITY_ENDPOINT_ANNOTATION,
    PROXY_SIDECAR_PORT_ANNOTATION, TENANT_ID_ANNOTATION, TOKEN_EXPIRATION_ANNOTATION, USE_LABEL,
};

/// Namespace of the webhook in `deploy/`.
pub const DEFAULT_NAMESPACE: &str = "keyless-system";
/// Service (and Deployment) name in `deploy/`.
pub const DEFAULT_SERVICE: &str = "keyless-webhook";
/// Name of the MutatingWebhookConfiguration.
pub const CONFIGURATION_NAME: &str = "keyless-webhook";
/// Name of the webhook inside it.
pub const WEBHOOK_NAME: &str = "mutate-pods.keyless.io";
/// Name of the serving certificate Secret.
pub const TLS_SECRET: &str = "keyless-webhook-tls";
/// The API server's timeout for a call, seconds: short, so a slow webhook fails a pod
/// create quickly instead of stalling controllers.
pub const TIMEOUT_SECONDS: u64 = 5;

/// Where the webhook runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookLocation {
    /// Service name.
    pub service: String,
    /// Namespace (also excluded from mutation).
    pub namespace: String,
}

impl Default for WebhookLocation {
    fn default() -> Self {
        WebhookLocation {
            service: DEFAULT_SERVICE.to_owned(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
        }
    }
}

/// The MutatingWebhookConfiguration, with `caBundle` set when given (PEM).
pub fn mutating_webhook_configuration(at: &WebhookLocation, ca_pem: Option<&str>) -> Value {
    let mut client_config = json!({
        "service": {
            "name": at.service,
            "namespace": at.namespace,
            "path": "/mutate-v1-pod",
            "port": 443,
        },
    });
    if let (Some(pem), Some(obj)) = (ca_pem, client_config.as_object_mut()) {
        obj.insert(
            "caBundle".to_owned(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(pem)),
        );
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": CONFIGURATION_NAME,
            "labels": {"app.kubernetes.io/name": "keyless-webhook", "app.kubernetes.io/part-of": "keyless"},
        },
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "admissionReviewVersions": ["v1"],
            "clientConfig": client_config,
            "failurePolicy": "Fail",
            "matchPolicy": "Equivalent",
            "reinvocationPolicy": "IfNeeded",
            "sideEffects": "None",
            "timeoutSeconds": TIMEOUT_SECONDS,
            "objectSelector": {"matchLabels": {"azure.workload.identity/use": "true"}},
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["kube-system", at.namespace],
            }]},
            "rules": [{
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }],
        }],
    })
}

/// The `kubernetes.io/tls` Secret the Deployment mounts (with `ca.crt` too).
pub fn tls_secret(at: &WebhookLocation, certs: &WebhookCerts) -> Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": TLS_SECRET,
            "namespace": at.namespace,
            "labels": {"app.kubernetes.io/name": "keyless-webhook", "app.kubernetes.io/part-of": "keyless"},
        },
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64(&certs.cert_pem),
            "tls.key": b64(&certs.key_pem),
            "ca.crt": b64(&certs.ca_cert_pem),
        },
    })
}

/// A workload ServiceAccount annotated for workload identity. The token expiration
/// annotation is written only when given.
pub fn service_account(
    name: &str,
    namespace: &str,
    client_id: &str,
    tenant_id: Option<&str>,
    token_expiration: Option<u64>,
) -> Value {
    let mut annotations = Map::new();
    annotations.insert(CLIENT_ID_ANNOTATION.to_owned(), json!(client_id));
    if let Some(t) = tenant_id {
        annotations.insert(TENANT_ID_ANNOTATION.to_owned(), json!(t));
    }
    if let Some(e) = token_expiration {
        annotations.insert(TOKEN_EXPIRATION_ANNOTATION.to_owned(), json!(e.to_string()));
    }
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
    })
}

/// Which managed-identity endpoint a workload's pods ask the webhook for (pod
/// annotations: the webhook reads them from the pod, not from the ServiceAccount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedIdentityEndpoint {
    /// `keyless.io/managed-identity-endpoint: "true"`: a native sidecar and
    /// `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` in the app containers; no privilege.
    Keyless,
    /// `azure.workload.identity/inject-proxy-sidecar: "true"`: the sidecar plus the
    /// iptables init container redirecting `169.254.169.254:80` (needs `NET_ADMIN`).
    Proxy,
}

/// The `metadata` and `spec.serviceAccountName` a workload's pod template needs for the
/// webhook to mutate its pods with `service_account`, and, when `endpoint` is given, to
/// inject the managed-identity sidecar on `port` (written only when given; the webhook's
/// default is 8000). Merged into a Deployment's `spec.template` by the user, so it is a
/// fragment, not an object of its own.
pub fn workload_pod_template(
    service_account: &str,
    endpoint: Option<ManagedIdentityEndpoint>,
    port: Option<u16>,
) -> Value {
    let mut annotations = Map::new();
    match endpoint {
        Some(ManagedIdentityEndpoint::Keyless) => {
            annotations.insert(
                MANAGED_IDENTITY_ENDPOINT_ANNOTATION.to_owned(),
                json!("true"),
            );
        }
        Some(ManagedIdentityEndpoint::Proxy) => {
            annotations.insert(INJECT_PROXY_SIDECAR_ANNOTATION.to_owned(), json!("true"));
        }
        None => {}
    }
    if let (Some(_), Some(p)) = (endpoint, port) {
        annotations.insert(
            PROXY_SIDECAR_PORT_ANNOTATION.to_owned(),
            json!(p.to_string()),
        );
    }
    let mut metadata = Map::new();
    metadata.insert("labels".to_owned(), json!({ USE_LABEL: "true" }));
    if !annotations.is_empty() {
        metadata.insert("annotations".to_owned(), Value::Object(annotations));
    }
    json!({
        "metadata": metadata,
        "spec": {"serviceAccountName": service_account},
    })
}
