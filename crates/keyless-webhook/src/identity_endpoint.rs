//! The managed-identity sidecar: `keyless imds` injected into pods whose apps use
//! `ManagedIdentityCredential`, IMDS clients or `az login --identity`.
//!
//! Two modes, by annotation:
//!
//! - **Proxy** (`azure.workload.identity/inject-proxy-sidecar`, key presence, the
//!   reference's meaning): the sidecar `azwi-proxy` serves IMDS on
//!   `127.0.0.1:<port>` and the init container `azwi-proxy-init` redirects
//!   `169.254.169.254:80` to it with iptables, for apps that hard-code IMDS' address.
//!   Needs `NET_ADMIN`; refused for `hostNetwork` pods (the rules would apply to the
//!   node).
//! - **Keyless** (`keyless.io/managed-identity-endpoint: "true"`): the sidecar
//!   `keyless-imds` only, and the app containers get `IDENTITY_ENDPOINT` and a per-pod
//!   random `IDENTITY_HEADER` — what azure-identity, MSAL and az look for first. No
//!   redirection, no privilege; works for `hostNetwork` pods (where the IMDS path is
//!   then turned off, since the node's processes share the loopback).
//!
//! The sidecar is a native sidecar (an init container with `restartPolicy: Always`): up
//! before the app containers, and it does not keep a Job's pod alive. It is appended
//! to `initContainers` (the patch only appends), so init containers listed before it run
//! without it. It receives the workload identity variables and token mount like every
//! init container. Both modes recognise an earlier injection by container name, and
//! reuse the `IDENTITY_HEADER` already given to the sidecar, so reinvocation adds
//! nothing twice and keeps one secret per pod.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::config::MutationConfig;
use crate::error::Rejection;
use crate::keys::{
    DEFAULT_PROXY_PORT, ENV_IDENTITY_ENDPOINT, ENV_IDENTITY_HEADER, IDENTITY_ENDPOINT_CONTAINER,
    INJECT_PROXY_SIDECAR_ANNOTATION, MANAGED_IDENTITY_ENDPOINT_ANNOTATION, PROXY_CONTAINER,
    PROXY_INIT_CONTAINER, PROXY_SIDECAR_PORT_ANNOTATION, PROXY_UID,
};
use crate::pod::{self, str_member};

/// What to add for the sidecar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Injection {
    /// Containers to append to `spec.initContainers`, in order.
    pub init_containers: Vec<Value>,
    /// Variables for every other container the mutation covers.
    pub app_env: Vec<(&'static str, String)>,
    /// Names of the sidecar's containers (they do not get `app_env`).
    pub own_containers: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Proxy,
    Keyless,
}

/// What the pod's annotations ask for; `None` when nothing.
pub fn plan(pod: &Value, config: &MutationConfig) -> Result<Option<Injection>, Rejection> {
    let annotations = pod::annotations(pod);
    let mode = if annotations.contains_key(INJECT_PROXY_SIDECAR_ANNOTATION) {
        Mode::Proxy
    } else if annotations
        .get(MANAGED_IDENTITY_ENDPOINT_ANNOTATION)
        .is_some_and(|v| v == "true")
    {
        Mode::Keyless
    } else {
        return Ok(None);
    };
    let host_network = pod
        .pointer("/spec/hostNetwork")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if mode == Mode::Proxy && host_network {
        return Err(Rejection::IdentityEndpoint(format!(
            "hostNetwork is set to true, cannot inject proxy sidecar (its iptables rules would apply to the node); use {MANAGED_IDENTITY_ENDPOINT_ANNOTATION}: \"true\" instead"
        )));
    }
    let port = port(&annotations)?;
    let existing = existing_containers(pod);
    let find = |name: &str| {
        existing
            .iter()
            .find(|c| str_member(c, "name") == Some(name))
    };
    let endpoint = &config.identity_endpoint;
    let mut injection = Injection::default();

    match mode {
        Mode::Proxy => {
            injection.own_containers = vec![PROXY_INIT_CONTAINER, PROXY_CONTAINER];
            if find(PROXY_INIT_CONTAINER).is_none() {
                injection.init_containers.push(json!({
                    "name": PROXY_INIT_CONTAINER,
                    "image": endpoint.proxy_init_image,
                    "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": "PROXY_PORT", "value": port.to_string()}],
                    "securityContext": {
                        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                        "privileged": true,
                        "runAsNonRoot": false,
                        "runAsUser": 0,
                    },
                }));
            }
            if find(PROXY_CONTAINER).is_none() {
                injection
                    .init_containers
                    .push(sidecar(config, PROXY_CONTAINER, port, None, false));
            }
        }
        Mode::Keyless => {
            injection.own_containers = vec![IDENTITY_ENDPOINT_CONTAINER];
            let header = match find(IDENTITY_ENDPOINT_CONTAINER) {
                Some(c) => env_value(c, ENV_IDENTITY_HEADER).ok_or_else(|| {
                    Rejection::IdentityEndpoint(format!(
                        "the pod already has a container named {IDENTITY_ENDPOINT_CONTAINER} without {ENV_IDENTITY_HEADER}"
                    ))
                })?,
                None => {
                    let header = random_secret()?;
                    injection.init_containers.push(sidecar(
                        config,
                        IDENTITY_ENDPOINT_CONTAINER,
                        port,
                        Some(&header),
                        host_network,
                    ));
                    header
                }
            };
            injection.app_env = vec![
                (
                    ENV_IDENTITY_ENDPOINT,
                    format!("http://127.0.0.1:{port}/msi/token"),
                ),
                (ENV_IDENTITY_HEADER, header),
            ];
        }
    }
    Ok(Some(injection))
}

/// The port annotation: a decimal TCP port, 1–65535 (the reference accepts any int32,
/// which only fails later, in the pod).
fn port(annotations: &BTreeMap<String, String>) -> Result<u16, Rejection> {
    match annotations.get(PROXY_SIDECAR_PORT_ANNOTATION) {
        None => Ok(DEFAULT_PROXY_PORT),
        Some(v) => v
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0 && v.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                Rejection::IdentityEndpoint(format!(
                    "invalid {PROXY_SIDECAR_PORT_ANNOTATION} annotation: {:?} is not a port between 1 and 65535",
                    v.chars().take(64).collect::<String>()
                ))
            }),
    }
}

fn sidecar(
    config: &MutationConfig,
    name: &str,
    port: u16,
    identity_header: Option<&str>,
    no_imds: bool,
) -> Value {
    let mut args = vec![
        "imds".to_owned(),
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
    ];
    if no_imds {
        args.push("--no-imds".to_owned());
    }
    let mut container = json!({
        "name": name,
        "image": config.identity_endpoint.image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "restartPolicy": "Always",
        "resources": config.identity_endpoint.resources,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "privileged": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": PROXY_UID,
        },
    });
    if let (Some(header), Some(object)) = (identity_header, container.as_object_mut()) {
        object.insert(
            "env".to_owned(),
            json!([{"name": ENV_IDENTITY_HEADER, "value": header}]),
        );
    }
    container
}

fn existing_containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|f| pod.pointer(&format!("/spec/{f}")).and_then(Value::as_array))
        .flatten()
        .collect()
}

fn env_value(container: &Value, name: &str) -> Option<String> {
    container
        .get("env")?
        .as_array()?
        .iter()
        .find(|e| str_member(e, "name") == Some(name))
        .and_then(|e| str_member(e, "value"))
        .map(str::to_owned)
}

/// 192 random bits, URL-safe: the per-pod `IDENTITY_HEADER`.
fn random_secret() -> Result<String, Rejection> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    use base64::Engine as _;
    let mut bytes = [0u8; 24];
    SystemRandom::new().fill(&mut bytes).map_err(|_| {
        Rejection::IdentityEndpoint("no randomness for the identity header".to_owned())
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
