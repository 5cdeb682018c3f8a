//! Kubernetes manifests as YAML: JSON values rendered as a multi-document stream.

use serde_json::Value;

/// Renders `docs` as YAML documents separated by `---`.
///
/// ```
/// let y = keyless_webhook::yaml::documents(&[serde_json::json!({"kind": "A", "n": "true"})]).unwrap();
/// assert_eq!(y, "---\nkind: A\nn: 'true'\n");
/// ```
pub fn documents(docs: &[Value]) -> Result<String, serde_yaml_ng::Error> {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(d)?);
    }
    Ok(out)
}
