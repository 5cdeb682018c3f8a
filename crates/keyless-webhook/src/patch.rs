//! RFC 6902 JSON Patch operations, built by hand. The mutation only ever *adds*: it
//! appends to arrays or creates members that are absent (or `null`), so a patch can never
//! remove or change what the webhook did not add.

use serde::Serialize;
use serde_json::Value;

/// One `add` operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchOp {
    /// Always `"add"`.
    op: &'static str,
    /// RFC 6901 JSON Pointer, escaped.
    pub path: String,
    /// The value added.
    pub value: Value,
}

impl PatchOp {
    /// `add` at the pointer made of `tokens` (raw, unescaped path segments).
    pub fn add<'a>(tokens: impl IntoIterator<Item = &'a str>, value: Value) -> PatchOp {
        PatchOp {
            op: "add",
            path: pointer(tokens),
            value,
        }
    }

    /// The operation name (always `add`).
    pub fn op(&self) -> &'static str {
        self.op
    }
}

/// An RFC 6901 pointer from raw tokens: `~` becomes `~0`, `/` becomes `~1`.
///
/// ```
/// use keyless_webhook::patch::pointer;
/// assert_eq!(pointer(["metadata", "annotations", "a/b~c"]), "/metadata/annotations/a~1b~0c");
/// ```
pub fn pointer<'a>(tokens: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for t in tokens {
        out.push('/');
        out.push_str(&t.replace('~', "~0").replace('/', "~1"));
    }
    out
}

/// The RFC 6902 document (a JSON array of operations).
pub fn to_json(ops: &[PatchOp]) -> Vec<u8> {
    serde_json::to_vec(ops).unwrap_or_else(|_| b"[]".to_vec())
}
