//! The mutation: a pure function from the raw pod JSON, its ServiceAccount and the
//! configuration to the JSON Patch that adds what the workload needs.
//!
//! Rules (WEBHOOK.md):
//! - Every init container and container not listed in `skip-containers` gets the env
//!   variables (appended; a variable the container already defines by name, with a
//!   value or `valueFrom`, is never touched; empty values are not injected) and a
//!   read-only mount of the whole token volume. Ephemeral containers are not mutated.
//!   If every container is skipped, nothing is added at all.
//! - One projected volume with a single `serviceAccountToken` source (audience,
//!   `expirationSeconds`, path).
//! - An earlier injection is recognised by what it is: a projected volume with a
//!   `serviceAccountToken` source of our audience and path is ours whatever its name,
//!   and a container already mounting it (without `subPath`) is left alone. So running
//!   the mutation again, or after another webhook added containers, only adds what is
//!   missing (and nothing when nothing is).
//! - Names and paths never collide with the user's: when the preferred volume name is
//!   taken by another volume, the first free `NAME-1`, `NAME-2`, ... is used; when the
//!   preferred mount path is used by any container for another mount, the first free
//!   `PATH-1`, `PATH-2`, ...; `AZURE_FEDERATED_TOKEN_FILE` points at the result.
//! - Only `add` operations: appends to arrays, or new members where they are absent or
//!   `null`.
//!
//! ```
//! use keyless_webhook::{MutationConfig, ServiceAccount, mutate::mutate};
//! let pod = serde_json::json!({"spec": {"containers": [{"name": "app", "image": "app"}]}});
//! let sa = ServiceAccount::new("ns", "default", [("azure.workload.identity/client-id", "c1")]);
//! let cfg = MutationConfig::new("t1", "https://keyless.example/");
//! let ops = mutate(&pod, &sa, &cfg).unwrap();
//! assert!(ops.iter().all(|op| op.op() == "add"));
//! assert_eq!(ops[0].path, "/spec/volumes");
//! ```

use serde_json::{Map, Value, json};

use crate::annotations::{skip_containers, token_expiration};
use crate::config::{CaTrust, MutationConfig};
use crate::error::Rejection;
use crate::identity_endpoint::{self, Injection};
use crate::keys::{
    CLIENT_ID_ANNOTATION, ENV_AUTHORITY_HOST, ENV_CLIENT_ID, ENV_KEYLESS_CA_FILE,
    ENV_NODE_EXTRA_CA_CERTS, ENV_REQUESTS_CA_BUNDLE, ENV_SSL_CERT_FILE, ENV_TENANT_ID,
    ENV_TOKEN_FILE, TENANT_ID_ANNOTATION, TRUST_CA_ANNOTATION,
};
use crate::patch::PatchOp;
use crate::pod::{self, ContainerRef, optional_list, str_member};
use crate::service_account::ServiceAccount;

/// How many alternatives (`-1` .. `-N`) are tried for a name or path.
const MAX_ALTERNATIVES: usize = 1000;

/// Computes the patch for `pod`. An empty list means "nothing to change".
///
/// Refuses (400) an invalid token expiration annotation, a CA trust request the
/// webhook cannot serve, and a pod whose containers, env or mounts are not lists of
/// objects.
pub fn mutate(
    pod: &Value,
    service_account: &ServiceAccount,
    config: &MutationConfig,
) -> Result<Vec<PatchOp>, Rejection> {
    let Some(injection) = identity_endpoint::plan(pod, config)? else {
        return mutate_containers(pod, service_account, config, &Injection::default());
    };
    if injection.init_containers.is_empty() {
        return mutate_containers(pod, service_account, config, &injection);
    }
    // The sidecar is appended first; the rest of the patch is computed on the pod as it
    // is once that operation is applied, so the sidecar gets the token mount and the
    // workload identity variables like any init container.
    let current = pod.pointer("/spec/initContainers");
    let mut with_sidecar = pod.clone();
    match with_sidecar.pointer_mut("/spec/initContainers") {
        Some(Value::Array(list)) => list.extend(injection.init_containers.iter().cloned()),
        Some(Value::Null) | None => {
            if let Some(spec) = with_sidecar.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert(
                    "initContainers".to_owned(),
                    Value::Array(injection.init_containers.clone()),
                );
            }
        }
        // Not a list: refused below, as for any pod.
        Some(_) => {}
    }
    let rest = mutate_containers(&with_sidecar, service_account, config, &injection)?;
    if rest.is_empty() {
        // Every container skipped: nothing at all, sidecar included.
        return Ok(rest);
    }
    let mut ops = Vec::new();
    append(
        &mut ops,
        &["spec", "initContainers"],
        current,
        injection.init_containers,
    );
    ops.extend(rest);
    Ok(ops)
}

/// The mutation proper, with the variables of a managed-identity endpoint for the
/// app containers.
fn mutate_containers(
    pod: &Value,
    service_account: &ServiceAccount,
    config: &MutationConfig,
    injection: &Injection,
) -> Result<Vec<PatchOp>, Rejection> {
    let spec = pod
        .get("spec")
        .and_then(Value::as_object)
        .ok_or_else(|| Rejection::InvalidPod("the pod has no spec object".to_owned()))?;
    let annotations = pod::annotations(pod);
    let expiration = token_expiration(&annotations, &service_account.annotations)?;
    let skip = skip_containers(&annotations);
    let ca = if annotations.get(TRUST_CA_ANNOTATION).map(String::as_str) == Some("true") {
        Some(
            config
                .ca_trust
                .as_ref()
                .ok_or(Rejection::CaTrustUnavailable {
                    key: TRUST_CA_ANNOTATION,
                })?,
        )
    } else {
        None
    };

    let init = pod::containers(spec, "initContainers")?;
    let regular = pod::containers(spec, "containers")?;
    let ephemeral = pod::containers(spec, "ephemeralContainers")?;
    let targets: Vec<ContainerRef<'_>> = init
        .iter()
        .chain(regular.iter())
        .filter(|c| !skip.contains(c.name()))
        .copied()
        .collect();
    if targets.is_empty() {
        return Ok(Vec::new());
    }

    let volumes: &[Value] = optional_list(spec.get("volumes"), || "spec.volumes".to_owned())?
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut mounts = Vec::new();
    for c in init.iter().chain(regular.iter()).chain(ephemeral.iter()) {
        for m in c
            .list("volumeMounts")?
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            mounts.push(Mount::read(m));
        }
    }

    let layout = &config.layout;
    let mut taken = Taken::default();
    let token = place(
        volumes,
        &mounts,
        &mut taken,
        |v| is_token_volume(v, config),
        &layout.volume_name,
        &layout.mount_path,
    );
    let mut new_volumes = Vec::new();
    if !token.exists {
        new_volumes.push(json!({
            "name": token.name,
            "projected": {"sources": [{"serviceAccountToken": {
                "audience": config.audience,
                "expirationSeconds": expiration,
                "path": layout.token_path,
            }}]},
        }));
    }
    let mut env = desired_env(service_account, config);
    env.push((
        ENV_TOKEN_FILE,
        join_path(&token.mount_path, &layout.token_path),
    ));
    if !config.authority_host.is_empty() {
        env.push((ENV_AUTHORITY_HOST, config.authority_host.clone()));
    }
    let mut wanted_mounts = vec![(token.name.clone(), token.mount_path.clone())];

    if let Some(ca) = ca {
        let placed = place(
            volumes,
            &mounts,
            &mut taken,
            |v| is_ca_volume(v, ca),
            &ca.volume_name,
            &ca.mount_path,
        );
        if !placed.exists {
            new_volumes.push(ca_volume(&placed.name, ca));
        }
        let ca_file = join_path(&placed.mount_path, CaTrust::CA_FILE);
        env.push((ENV_KEYLESS_CA_FILE, ca_file.clone()));
        env.push((ENV_NODE_EXTRA_CA_CERTS, ca_file));
        if ca.bundle_key.is_some() {
            let bundle = join_path(&placed.mount_path, CaTrust::BUNDLE_FILE);
            env.push((ENV_SSL_CERT_FILE, bundle.clone()));
            env.push((ENV_REQUESTS_CA_BUNDLE, bundle));
        }
        wanted_mounts.push((placed.name, placed.mount_path));
    }

    let mut ops = Vec::new();
    append(
        &mut ops,
        &["spec", "volumes"],
        spec.get("volumes"),
        new_volumes,
    );
    for c in &targets {
        let index = c.index.to_string();
        let base = ["spec", c.field, index.as_str()];

        let existing_env = c.list("env")?.map(Vec::as_slice).unwrap_or_default();
        let app_env: &[(&str, String)] = if injection.own_containers.contains(&c.name()) {
            &[]
        } else {
            &injection.app_env
        };
        let add_env: Vec<Value> = env
            .iter()
            .chain(app_env)
            .filter(|(name, _)| {
                !existing_env
                    .iter()
                    .any(|e| str_member(e, "name") == Some(name))
            })
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        append(
            &mut ops,
            &[&base[..], &["env"]].concat(),
            c.container.get("env"),
            add_env,
        );

        let existing_mounts = c
            .list("volumeMounts")?
            .map(Vec::as_slice)
            .unwrap_or_default();
        let add_mounts: Vec<Value> = wanted_mounts
            .iter()
            .filter(|(name, _)| {
                !existing_mounts
                    .iter()
                    .any(|m| Mount::read(m).is_whole_volume(name))
            })
            .map(|(name, path)| json!({"name": name, "mountPath": path, "readOnly": true}))
            .collect();
        append(
            &mut ops,
            &[&base[..], &["volumeMounts"]].concat(),
            c.container.get("volumeMounts"),
            add_mounts,
        );
    }
    Ok(ops)
}

/// `AZURE_CLIENT_ID` and `AZURE_TENANT_ID`, when not empty.
fn desired_env(sa: &ServiceAccount, config: &MutationConfig) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let Some(client_id) = sa.annotations.get(CLIENT_ID_ANNOTATION)
        && !client_id.is_empty()
    {
        env.push((ENV_CLIENT_ID, client_id.clone()));
    }
    // An explicit annotation wins even when empty (then no tenant is injected).
    let tenant = sa
        .annotations
        .get(TENANT_ID_ANNOTATION)
        .unwrap_or(&config.tenant_id);
    if !tenant.is_empty() {
        env.push((ENV_TENANT_ID, tenant.clone()));
    }
    env
}

/// Adds `items` to the list at `tokens`: one `add` of the whole list when the member is
/// absent or `null`, else one `add .../-` per item.
fn append(ops: &mut Vec<PatchOp>, tokens: &[&str], current: Option<&Value>, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    match current {
        None | Some(Value::Null) => {
            ops.push(PatchOp::add(tokens.iter().copied(), Value::Array(items)))
        }
        Some(_) => {
            for item in items {
                ops.push(PatchOp::add(tokens.iter().copied().chain(["-"]), item));
            }
        }
    }
}

/// A volume mount as read from any container.
#[derive(Debug)]
struct Mount<'a> {
    name: &'a str,
    path: &'a str,
    sub_path: bool,
}

impl<'a> Mount<'a> {
    fn read(v: &'a Value) -> Mount<'a> {
        Mount {
            name: str_member(v, "name").unwrap_or_default(),
            path: str_member(v, "mountPath").unwrap_or_default(),
            sub_path: ["subPath", "subPathExpr"]
                .iter()
                .any(|k| str_member(v, k).is_some_and(|s| !s.is_empty())),
        }
    }

    /// Whether this mounts the whole volume `name` (not a file of it via `subPath`).
    fn is_whole_volume(&self, name: &str) -> bool {
        self.name == name && !self.sub_path
    }
}

/// Names and paths chosen earlier in this mutation (so two injected volumes never
/// collide with each other).
#[derive(Debug, Default)]
struct Taken {
    names: Vec<String>,
    paths: Vec<String>,
}

/// Where an injected volume goes.
#[derive(Debug)]
struct Placement {
    name: String,
    mount_path: String,
    /// The volume is already in the pod (an earlier injection).
    exists: bool,
}

fn place(
    volumes: &[Value],
    mounts: &[Mount<'_>],
    taken: &mut Taken,
    is_ours: impl Fn(&Value) -> bool,
    preferred_name: &str,
    preferred_path: &str,
) -> Placement {
    let path_free = |p: &str, taken: &Taken| {
        !mounts.iter().any(|m| same_path(m.path, p)) && !taken.paths.iter().any(|t| same_path(t, p))
    };
    let placement = match volumes.iter().find(|v| is_ours(v)) {
        Some(existing) => {
            let name = str_member(existing, "name").unwrap_or_default().to_owned();
            let mount_path = match mounts.iter().find(|m| m.is_whole_volume(&name)) {
                Some(m) => m.path.to_owned(),
                None => first_free(preferred_path, |p| path_free(p, taken)),
            };
            Placement {
                name,
                mount_path,
                exists: true,
            }
        }
        None => Placement {
            name: first_free(preferred_name, |n| {
                !volumes.iter().any(|v| str_member(v, "name") == Some(n))
                    && !taken.names.iter().any(|t| t == n)
            }),
            mount_path: first_free(preferred_path, |p| path_free(p, taken)),
            exists: false,
        },
    };
    taken.names.push(placement.name.clone());
    taken.paths.push(placement.mount_path.clone());
    placement
}

/// `preferred` if free, else the first free `preferred-N`.
fn first_free(preferred: &str, free: impl Fn(&str) -> bool) -> String {
    if free(preferred) {
        return preferred.to_owned();
    }
    let base = preferred.trim_end_matches('/');
    (1..=MAX_ALTERNATIVES)
        .map(|n| format!("{base}-{n}"))
        .find(|c| free(c))
        // A pod with a thousand colliding volumes is not a pod the API server accepts.
        .unwrap_or_else(|| format!("{base}-keyless"))
}

/// Mount paths compare without trailing slashes.
fn same_path(a: &str, b: &str) -> bool {
    let norm = |p: &str| {
        let t = p.trim_end_matches('/');
        if t.is_empty() {
            "/".to_owned()
        } else {
            t.to_owned()
        }
    };
    norm(a) == norm(b)
}

fn join_path(dir: &str, file: &str) -> String {
    format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        file.trim_start_matches('/')
    )
}

/// The `projected.sources` of a volume.
fn projected_sources(volume: &Value) -> &[Value] {
    volume
        .pointer("/projected/sources")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A projected volume with a `serviceAccountToken` source of our audience and path.
fn is_token_volume(volume: &Value, config: &MutationConfig) -> bool {
    projected_sources(volume).iter().any(|s| {
        s.get("serviceAccountToken").is_some_and(|t| {
            str_member(t, "audience") == Some(config.audience.as_str())
                && str_member(t, "path") == Some(config.layout.token_path.as_str())
        })
    })
}

/// A projected volume with a `configMap` source of our ConfigMap yielding `ca.crt`.
fn is_ca_volume(volume: &Value, ca: &CaTrust) -> bool {
    projected_sources(volume).iter().any(|s| {
        s.get("configMap").is_some_and(|c| {
            str_member(c, "name") == Some(ca.config_map.as_str())
                && c.get("items")
                    .and_then(Value::as_array)
                    .is_some_and(|items| {
                        items
                            .iter()
                            .any(|i| str_member(i, "path") == Some(CaTrust::CA_FILE))
                    })
        })
    })
}

fn ca_volume(name: &str, ca: &CaTrust) -> Value {
    let mut items = vec![json!({"key": ca.ca_key, "path": CaTrust::CA_FILE})];
    if let Some(bundle) = &ca.bundle_key {
        items.push(json!({"key": bundle, "path": CaTrust::BUNDLE_FILE}));
    }
    let mut source = Map::new();
    source.insert(
        "configMap".to_owned(),
        json!({"name": ca.config_map, "items": items}),
    );
    json!({"name": name, "projected": {"sources": [Value::Object(source)]}})
}
