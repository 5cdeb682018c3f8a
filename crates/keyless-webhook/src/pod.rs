//! Read-only views into a raw pod (`serde_json::Value`), tolerant of every field the
//! webhook does not use.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::Rejection;
use crate::keys::{DEFAULT_SERVICE_ACCOUNT, USE_LABEL};
use crate::service_account::string_map;

/// The pod's labels.
pub fn labels(pod: &Value) -> BTreeMap<String, String> {
    string_map(pod.pointer("/metadata/labels"))
}

/// The pod's annotations.
pub fn annotations(pod: &Value) -> BTreeMap<String, String> {
    string_map(pod.pointer("/metadata/annotations"))
}

/// Whether the pod carries `azure.workload.identity/use: "true"` (exact, case-sensitive).
pub fn is_selected(pod: &Value) -> bool {
    pod.pointer("/metadata/labels")
        .and_then(|l| l.get(USE_LABEL))
        .and_then(Value::as_str)
        == Some("true")
}

/// `spec.serviceAccountName`, or `default` when absent or empty.
pub fn service_account_name(pod: &Value) -> &str {
    pod.pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
}

/// A name for logs: `metadata.name`, else `generateName` followed by ` (prefix)`.
pub fn display_name(pod: &Value) -> String {
    let meta = pod.get("metadata");
    if let Some(name) = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return name.to_owned();
    }
    match meta
        .and_then(|m| m.get("generateName"))
        .and_then(Value::as_str)
    {
        Some(prefix) => format!("{prefix} (prefix)"),
        None => "(unnamed)".to_owned(),
    }
}

/// One container of a pod, with where it sits.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRef<'a> {
    /// `initContainers`, `containers` or `ephemeralContainers`.
    pub field: &'static str,
    /// Index in that list.
    pub index: usize,
    /// The container object.
    pub container: &'a Map<String, Value>,
}

impl<'a> ContainerRef<'a> {
    /// The container's name (empty if it has none).
    pub fn name(&self) -> &'a str {
        self.container
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// A list member of the container (`env`, `volumeMounts`): `None` when absent or
    /// `null`, an error when present but not a list.
    pub fn list(&self, member: &str) -> Result<Option<&'a Vec<Value>>, Rejection> {
        optional_list(self.container.get(member), || {
            format!("spec.{}[{}].{member}", self.field, self.index)
        })
    }
}

/// The containers of `spec.<field>`, in order.
pub fn containers<'a>(
    spec: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Vec<ContainerRef<'a>>, Rejection> {
    let Some(items) = optional_list(spec.get(field), || format!("spec.{field}"))? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .enumerate()
        .map(|(index, c)| {
            c.as_object()
                .map(|container| ContainerRef {
                    field,
                    index,
                    container,
                })
                .ok_or_else(|| {
                    Rejection::InvalidPod(format!("spec.{field}[{index}] is not an object"))
                })
        })
        .collect()
}

/// A member that must be a list when present: `None` for absent or `null`.
pub fn optional_list(
    value: Option<&Value>,
    what: impl FnOnce() -> String,
) -> Result<Option<&Vec<Value>>, Rejection> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(Rejection::InvalidPod(format!("{} is not a list", what()))),
    }
}

/// The string member `key` of an object-valued JSON value.
pub fn str_member<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}
