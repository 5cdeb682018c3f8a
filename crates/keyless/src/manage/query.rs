//! `--query`: the small JMESPath subset scripts use to take one value out of a result.
//!
//! Supported: dotted field paths (`properties.clientId`, `tags.env`), quoted fields
//! (`tags."my.key"`), indexes (`[0]`, `[-1]`) and list projections (`[].name`,
//! `value[].id`). Filters, functions and multi-selects are not: the point is
//! `keyless identity show ... --query clientId -o tsv`, not a query language.

use std::fmt;

use serde_json::Value;

/// A parsed `--query` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    text: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Take a field of an object.
    Field(String),
    /// Take one element of a list; negative counts from the end.
    Index(i64),
    /// Apply the rest of the path to every element of a list.
    Project,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Query {
    /// Parses a query path; the error says what is unsupported and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut steps = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("the query is empty; give a field path such as `clientId`".into());
        }
        // Each loop turn reads one segment: an optional field name followed by any
        // number of bracket steps, then an optional '.' before the next segment.
        loop {
            let (field, after) = take_field(rest).map_err(|e| bad(text, &e))?;
            let has_field = field.is_some();
            if let Some(name) = field {
                steps.push(Step::Field(name));
            }
            rest = after;
            let mut brackets = 0usize;
            while let Some(inner_and_rest) = rest.strip_prefix('[') {
                let (inner, after) = inner_and_rest
                    .split_once(']')
                    .ok_or_else(|| bad(text, "a '[' is not closed"))?;
                let inner = inner.trim();
                if inner.is_empty() || inner == "*" {
                    steps.push(Step::Project);
                } else {
                    let index = inner.parse::<i64>().map_err(|_| {
                        bad(
                            text,
                            &format!(
                                "'[{inner}]' is not supported; use [] (every item) or [N] (one item)"
                            ),
                        )
                    })?;
                    steps.push(Step::Index(index));
                }
                rest = after;
                brackets += 1;
            }
            if !has_field && brackets == 0 {
                return Err(bad(text, &format!("expected a field name at '{rest}'")));
            }
            if rest.is_empty() {
                break;
            }
            rest = rest
                .strip_prefix('.')
                .ok_or_else(|| bad(text, &format!("unexpected '{rest}'")))?;
            if rest.is_empty() {
                return Err(bad(text, "the path ends with '.'"));
            }
        }
        Ok(Self {
            text: text.to_owned(),
            steps,
        })
    }

    /// Applies the query. `None` means the path names nothing in `value` (as opposed to
    /// a field that is present and `null`), so the caller can say so instead of printing
    /// an empty line a script would silently use.
    pub fn apply(&self, value: &Value) -> Option<Value> {
        eval(value, &self.steps)
    }
}

fn bad(text: &str, why: &str) -> String {
    format!("cannot use --query '{text}': {why}")
}

/// Reads a leading field name (bare or double-quoted); returns it and the rest.
fn take_field(s: &str) -> Result<(Option<String>, &str), String> {
    if let Some(quoted) = s.strip_prefix('"') {
        let (name, rest) = quoted
            .split_once('"')
            .ok_or_else(|| "a '\"' is not closed".to_owned())?;
        return Ok((Some(name.to_owned()), rest));
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@'))
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(end);
    if name.is_empty() {
        Ok((None, rest))
    } else {
        Ok((Some(name.to_owned()), rest))
    }
}

fn eval(value: &Value, steps: &[Step]) -> Option<Value> {
    let Some((step, rest)) = steps.split_first() else {
        return Some(value.clone());
    };
    match step {
        Step::Field(name) => {
            let object = value.as_object()?;
            // az shows an ARM resource's `properties` flattened into the top level, so
            // scripts written for it ask for `clientId`, not `properties.clientId`.
            let found = object.get(name).or_else(|| {
                object
                    .get("properties")
                    .and_then(Value::as_object)
                    .and_then(|p| p.get(name))
            })?;
            eval(found, rest)
        }
        Step::Index(index) => {
            let list = value.as_array()?;
            let position = if *index < 0 {
                let back = usize::try_from(index.unsigned_abs()).ok()?;
                list.len().checked_sub(back)?
            } else {
                usize::try_from(*index).ok()?
            };
            eval(list.get(position)?, rest)
        }
        Step::Project => {
            let list = value.as_array()?;
            // JMESPath drops items for which the rest of the path yields null.
            let items = list
                .iter()
                .filter_map(|item| eval(item, rest))
                .filter(|v| !v.is_null())
                .collect();
            Some(Value::Array(items))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(text: &str) -> Query {
        match Query::parse(text) {
            Ok(query) => query,
            Err(e) => unreachable!("{e}"),
        }
    }

    fn identity() -> Value {
        json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app",
            "name": "app",
            "location": "local",
            "tags": {"env": "prod", "a.b": "dotted"},
            "properties": {"tenantId": "t", "principalId": "p", "clientId": "c"}
        })
    }

    #[test]
    fn field_paths() {
        let v = identity();
        assert_eq!(q("name").apply(&v), Some(json!("app")));
        assert_eq!(q("properties.clientId").apply(&v), Some(json!("c")));
        assert_eq!(q("tags.env").apply(&v), Some(json!("prod")));
        assert_eq!(q("tags.\"a.b\"").apply(&v), Some(json!("dotted")));
        assert_eq!(
            q("tags").apply(&v),
            Some(json!({"env": "prod", "a.b": "dotted"}))
        );
    }

    #[test]
    fn az_flattened_fields_resolve_inside_properties() {
        let v = identity();
        assert_eq!(q("clientId").apply(&v), Some(json!("c")));
        assert_eq!(q("principalId").apply(&v), Some(json!("p")));
        assert_eq!(q("tenantId").apply(&v), Some(json!("t")));
    }

    #[test]
    fn top_level_wins_over_properties() {
        let v = json!({"name": "outer", "properties": {"name": "inner"}});
        assert_eq!(q("name").apply(&v), Some(json!("outer")));
    }

    #[test]
    fn missing_paths_are_none_but_null_fields_are_null() {
        let v = json!({"a": null, "properties": {}});
        assert_eq!(q("a").apply(&v), Some(Value::Null));
        assert_eq!(q("clientid").apply(&v), None);
        assert_eq!(q("a.b").apply(&v), None);
    }

    #[test]
    fn lists_project_and_index() {
        let v = json!([
            {"name": "one", "properties": {"clientId": "c1"}},
            {"name": "two", "properties": {"clientId": "c2"}},
            {"other": true}
        ]);
        assert_eq!(q("[].name").apply(&v), Some(json!(["one", "two"])));
        assert_eq!(q("[*].clientId").apply(&v), Some(json!(["c1", "c2"])));
        assert_eq!(q("[0].name").apply(&v), Some(json!("one")));
        assert_eq!(q("[-2].clientId").apply(&v), Some(json!("c2")));
        assert_eq!(q("[5].name").apply(&v), None);
        assert_eq!(q("[-4]").apply(&v), None);
        assert_eq!(q("[]").apply(&json!([1, null, 2])), Some(json!([1, 2])));
    }

    #[test]
    fn nested_projection() {
        let v = json!({"value": [{"properties": {"audiences": ["a", "b"]}}]});
        assert_eq!(
            q("value[].properties.audiences[0]").apply(&v),
            Some(json!(["a"]))
        );
        assert_eq!(
            q("value[0].properties.audiences").apply(&v),
            Some(json!(["a", "b"]))
        );
    }

    #[test]
    fn unsupported_syntax_is_rejected_with_a_reason() {
        for bad in [
            "",
            "a.",
            ".a",
            "a..b",
            "[?name=='x']",
            "a[",
            "a b",
            "{id:id}",
            "\"open",
        ] {
            let err = Query::parse(bad);
            assert!(err.is_err(), "{bad:?} should not parse");
        }
        let Err(msg) = Query::parse("[?name=='x']") else {
            unreachable!()
        };
        assert!(msg.contains("[] (every item)"), "{msg}");
    }
}
