//! The part of a ServiceAccount the webhook reads: its name, labels and annotations.

use std::collections::BTreeMap;

use serde_json::Value;

/// A ServiceAccount as the webhook sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels (string values only).
    pub labels: BTreeMap<String, String>,
    /// Annotations (string values only).
    pub annotations: BTreeMap<String, String>,
    /// `metadata.resourceVersion`, if present.
    pub resource_version: Option<String>,
}

impl ServiceAccount {
    /// A ServiceAccount with these annotations and no labels.
    pub fn new<'a>(
        namespace: &str,
        name: &str,
        annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> ServiceAccount {
        ServiceAccount {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            labels: BTreeMap::new(),
            annotations: annotations
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            resource_version: None,
        }
    }

    /// Reads a ServiceAccount object as the API server returns it. `None` when it has no
    /// `metadata.name` (a namespace is optional: the caller may know it).
    pub fn from_object(object: &Value) -> Option<ServiceAccount> {
        let metadata = object.get("metadata")?;
        let name = metadata.get("name")?.as_str()?.to_owned();
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Some(ServiceAccount {
            namespace,
            name,
            labels: string_map(metadata.get("labels")),
            annotations: string_map(metadata.get("annotations")),
            resource_version: metadata
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// The string-valued members of a JSON object (labels and annotations are string maps;
/// anything else is ignored).
pub fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_api_object() {
        let sa = ServiceAccount::from_object(&json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "sa", "namespace": "ns", "resourceVersion": "7",
                          "labels": {"a": "b"}, "annotations": {"x": "y", "n": 1}}
        }))
        .unwrap();
        assert_eq!(sa.name, "sa");
        assert_eq!(sa.namespace, "ns");
        assert_eq!(sa.resource_version.as_deref(), Some("7"));
        assert_eq!(sa.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(sa.annotations.len(), 1);
        assert!(ServiceAccount::from_object(&json!({"metadata": {}})).is_none());
    }
}
