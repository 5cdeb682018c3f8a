//! `expression`: the claims-matching expressions of federated credentials
//! (`Expression::parse`), evaluated against claims. Input: the expression, a NUL byte,
//! the claims as a JSON object (default claims when absent or not an object).

use keyless_core::expression::Expression;
use serde_json::{Map, Value, json};

/// Runs one input.
pub fn run(data: &[u8]) {
    let (src, claims) = crate::split2(data);
    let Ok(src) = std::str::from_utf8(src) else {
        return;
    };
    let Ok(expr) = Expression::parse(src) else {
        return;
    };
    let claims: Map<String, Value> = match serde_json::from_slice(claims) {
        Ok(Value::Object(m)) => m,
        _ => {
            json!({"sub": "repo:org/app:ref:refs/heads/main", "aud": ["api://AzureADTokenExchange"],
                    "iss": "https://token.actions.githubusercontent.com"})
            .as_object()
            .cloned()
            .unwrap_or_default()
        }
    };
    let failure = expr.first_failure(&claims).map(ToString::to_string);
    // Evaluation is deterministic.
    assert_eq!(
        failure,
        expr.first_failure(&claims).map(ToString::to_string)
    );
}
