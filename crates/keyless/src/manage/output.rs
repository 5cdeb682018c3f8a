//! Rendering results as az does: `json` (default), `table`, `tsv`, or `none`.

use std::io::{self, Write};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::args::CommonArgs;
use super::query::Query;

/// The `--output/-o` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Pretty-printed JSON, as the server returned it.
    Json,
    /// An aligned table of the scalar fields (including those under `properties`;
    /// without `id` and `type`, as in az).
    Table,
    /// Tab-separated values, no quoting: scalars bare, one line per list item.
    Tsv,
    /// Print nothing (errors still go to stderr).
    None,
}

/// Applies `--query` and prints the result to stdout in the chosen format.
pub fn emit(value: &Value, common: &CommonArgs) -> Result<()> {
    let text = render_result(value, common.query.as_ref(), common.output)?;
    write_stdout(&text)
}

/// Applies the query (if any) and renders; an error if the query names nothing.
pub fn render_result(value: &Value, query: Option<&Query>, format: OutputFormat) -> Result<String> {
    let selected = match query {
        None => value.clone(),
        Some(query) => match query.apply(value) {
            Some(selected) => selected,
            // An empty line would be captured by `$(...)` and used as if it were a
            // value; failing here points at the typo instead.
            None => bail!(
                "--query '{query}' matched nothing in the result{}",
                describe_fields(value)
            ),
        },
    };
    Ok(render(&selected, format))
}

fn describe_fields(value: &Value) -> String {
    let object = match value {
        Value::Object(object) => object,
        Value::Array(items) => match items.first() {
            Some(Value::Object(first)) => {
                let fields = field_names(first);
                return format!(
                    " (it is a list: use [].FIELD or [N].FIELD; items have fields: {fields})"
                );
            }
            _ => return " (it is a list)".to_owned(),
        },
        _ => return String::new(),
    };
    format!("; its fields are: {}", field_names(object))
}

fn field_names(object: &serde_json::Map<String, Value>) -> String {
    let mut names: Vec<String> = object.keys().cloned().collect();
    if let Some(Value::Object(properties)) = object.get("properties") {
        names.extend(properties.keys().map(|k| format!("properties.{k}")));
    }
    names.join(", ")
}

/// Renders a value; `null` (e.g. from a delete) renders as nothing.
pub fn render(value: &Value, format: OutputFormat) -> String {
    if value.is_null() {
        return String::new();
    }
    match format {
        OutputFormat::Json => match serde_json::to_string_pretty(value) {
            Ok(text) => text + "\n",
            // Serialising a `Value` cannot fail in practice; fall back to compact form.
            Err(_) => value.to_string() + "\n",
        },
        OutputFormat::Tsv => render_tsv(value),
        OutputFormat::Table => render_table(value),
        OutputFormat::None => String::new(),
    }
}

fn write_stdout(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // `keyless ... | head -1` closing the pipe early is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to stdout"),
    }
}

/// A scalar as text, without JSON quoting, safe for a terminal (a tab or newline in
/// a value cannot forge a column or a row, an ESC cannot colour the screen).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(super::terminal::escaped(s).into_owned()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A cell: scalars as text, lists of scalars comma-joined, anything nested skipped.
fn cell_text(value: &Value) -> Option<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(scalar_text)
            .collect::<Option<Vec<_>>>()
            .map(|texts| texts.join(",")),
        other => scalar_text(other),
    }
}

/// The columns of one object: its own scalar fields, then those under `properties`
/// (az shows them flattened, so `clientId` is a column of `identity show -o table`).
fn columns(object: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let mut cells: Vec<(String, String)> = object
        .iter()
        .filter_map(|(k, v)| cell_text(v).map(|text| (k.clone(), text)))
        .collect();
    if let Some(Value::Object(properties)) = object.get("properties") {
        for (k, v) in properties {
            if cells.iter().any(|(name, _)| name == k) {
                continue;
            }
            if let Some(text) = cell_text(v) {
                cells.push((k.clone(), text));
            }
        }
    }
    cells
}

fn tsv_line(value: &Value) -> String {
    match value {
        Value::Object(object) => columns(object)
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
            .join("\t"),
        Value::Array(items) => items.iter().map(tsv_line).collect::<Vec<_>>().join("\t"),
        scalar => scalar_text(scalar).unwrap_or_default(),
    }
}

fn render_tsv(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(|item| tsv_line(item) + "\n").collect(),
        other => tsv_line(other) + "\n",
    }
}

/// Fields az leaves out of tables: long, and the same for every row of a list.
const TABLE_SKIPPED_FIELDS: [&str; 3] = ["id", "type", "etag"];

/// A table row: like [`columns`], minus the skipped fields, plus the resource group
/// read from the id (as az shows it).
fn table_columns(object: &serde_json::Map<String, Value>) -> Vec<(String, String)> {
    let mut cells: Vec<(String, String)> = columns(object)
        .into_iter()
        .filter(|(name, _)| !TABLE_SKIPPED_FIELDS.contains(&name.as_str()))
        .collect();
    let group = object
        .get("id")
        .and_then(Value::as_str)
        .and_then(resource_group_of_id);
    if let Some(group) = group
        && !cells.iter().any(|(name, _)| name == "resourceGroup")
    {
        cells.push(("resourceGroup".to_owned(), group.to_owned()));
    }
    cells
}

/// The `{rg}` in `.../resourceGroups/{rg}/...`, compared case-insensitively like ARM.
fn resource_group_of_id(id: &str) -> Option<&str> {
    let mut segments = id.split('/');
    segments.find(|s| s.eq_ignore_ascii_case("resourceGroups"))?;
    segments.next().filter(|s| !s.is_empty())
}

fn render_table(value: &Value) -> String {
    let rows: Vec<Vec<(String, String)>> = match value {
        Value::Object(object) => vec![table_columns(object)],
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(object) => table_columns(object),
                other => vec![("Result".to_owned(), tsv_line(other))],
            })
            .collect(),
        scalar => return scalar_text(scalar).unwrap_or_default() + "\n",
    };
    if rows.is_empty() {
        return String::new();
    }
    // Columns in order of first appearance across rows, so a heterogeneous list still
    // lines up.
    let mut headers: Vec<String> = Vec::new();
    for row in &rows {
        for (name, _) in row {
            if !headers.contains(name) {
                headers.push(name.clone());
            }
        }
    }
    // A column that is empty on every row (e.g. an unused `condition`) only widens the
    // table.
    headers.retain(|h| {
        rows.iter()
            .any(|row| row.iter().any(|(name, text)| name == h && !text.is_empty()))
    });
    let grid: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            headers
                .iter()
                .map(|h| {
                    row.iter()
                        .find(|(name, _)| name == h)
                        .map(|(_, text)| text.clone())
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let titles: Vec<String> = headers.iter().map(|h| title_case(h)).collect();
    let widths: Vec<usize> = titles
        .iter()
        .enumerate()
        .map(|(i, title)| {
            grid.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .chain(std::iter::once(title.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    push_row(&mut out, &titles, &widths);
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    push_row(&mut out, &rules, &widths);
    for row in &grid {
        push_row(&mut out, row, &widths);
    }
    out
}

fn push_row(out: &mut String, cells: &[String], widths: &[usize]) {
    let line = cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}"))
        .collect::<Vec<_>>()
        .join("  ");
    out.push_str(line.trim_end());
    out.push('\n');
}

/// `clientId` → `ClientId`, as az titles its table columns.
fn title_case(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(name: &str, client: &str) -> Value {
        json!({
            "id": format!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"),
            "name": name,
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "location": "local",
            "tags": {"env": "prod"},
            "properties": {"tenantId": "t", "principalId": "p", "clientId": client}
        })
    }

    fn query(text: &str) -> Query {
        match Query::parse(text) {
            Ok(q) => q,
            Err(e) => unreachable!("{e}"),
        }
    }

    fn render_ok(value: &Value, q: Option<&str>, format: OutputFormat) -> String {
        let q = q.map(query);
        match render_result(value, q.as_ref(), format) {
            Ok(text) => text,
            Err(e) => unreachable!("{e:#}"),
        }
    }

    #[test]
    fn a_hostile_subject_cannot_forge_rows_or_colour_the_terminal() {
        let row = json!({
            "clientId": "c1",
            "subject": "system:serviceaccount:ns:app\tFORGED\nc2\tsuccess\u{1b}[2J",
            "status": "failure",
        });
        let list = json!([row.clone()]);
        for format in [OutputFormat::Tsv, OutputFormat::Table] {
            let out = render_ok(&list, None, format);
            assert!(!out.contains('\u{1b}'), "{format:?}: {out:?}");
            let lines: Vec<&str> = out.lines().filter(|l| l.contains("c1")).collect();
            assert_eq!(lines.len(), 1, "{format:?}: {out:?}");
            assert!(
                !out.lines().any(|l| l.starts_with("c2")),
                "{format:?}: {out:?}"
            );
            assert!(lines[0].contains("\\tFORGED\\nc2"), "{format:?}: {out:?}");
        }
        // A TSV line has exactly one tab between its three cells.
        let tsv = render_ok(&row, None, OutputFormat::Tsv);
        assert_eq!(
            tsv.trim_end_matches('\n').matches('\t').count(),
            2,
            "{tsv:?}"
        );
        // JSON stays exact: the value round-trips.
        let json = render_ok(&row, None, OutputFormat::Json);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), row);
    }

    #[test]
    fn tsv_scalar_is_bare() {
        let v = identity("app", "c-1");
        assert_eq!(render_ok(&v, Some("clientId"), OutputFormat::Tsv), "c-1\n");
        assert_eq!(render_ok(&json!(42), None, OutputFormat::Tsv), "42\n");
        assert_eq!(render_ok(&json!(true), None, OutputFormat::Tsv), "true\n");
    }

    #[test]
    fn json_scalar_keeps_quotes() {
        let v = identity("app", "c-1");
        assert_eq!(
            render_ok(&v, Some("clientId"), OutputFormat::Json),
            "\"c-1\"\n"
        );
    }

    #[test]
    fn tsv_object_is_one_line_of_scalars_then_properties() {
        let v = json!({"name": "n", "tags": {"a": "b"}, "properties": {"issuer": "https://i", "audiences": ["x", "y"]}});
        assert_eq!(
            render_ok(&v, None, OutputFormat::Tsv),
            "n\thttps://i\tx,y\n"
        );
    }

    #[test]
    fn tsv_list_is_one_line_per_item() {
        let v = json!([identity("a", "c1"), identity("b", "c2")]);
        assert_eq!(render_ok(&v, Some("[].name"), OutputFormat::Tsv), "a\nb\n");
        assert_eq!(
            render_ok(&v, Some("[].clientId"), OutputFormat::Tsv),
            "c1\nc2\n"
        );
        let full = render_ok(&v, None, OutputFormat::Tsv);
        assert_eq!(full.lines().count(), 2);
        assert!(full.starts_with("/subscriptions/s/"), "{full}");
        assert!(full.contains("\tc1\n"), "{full}");
    }

    #[test]
    fn table_aligns_columns_and_flattens_properties() {
        let v = json!([identity("a", "c1"), identity("longer-name", "c2")]);
        let table = render_ok(&v, Some("[]"), OutputFormat::Table);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            vec![
                "Name         Location  TenantId  PrincipalId  ClientId  ResourceGroup",
                "-----------  --------  --------  -----------  --------  -------------",
                "a            local     t         p            c1        rg",
                "longer-name  local     t         p            c2        rg",
            ],
            "{table}"
        );
    }

    #[test]
    fn table_drops_columns_that_are_empty_everywhere() {
        let v = json!([
            {"name": "a", "condition": null, "description": ""},
            {"name": "b", "condition": null, "description": "set"}
        ]);
        let table = render_ok(&v, None, OutputFormat::Table);
        assert_eq!(
            table,
            "Name  Description\n----  -----------\na\nb     set\n"
        );
    }

    #[test]
    fn resource_groups_are_read_from_ids() {
        assert_eq!(
            resource_group_of_id("/subscriptions/s/resourcegroups/My-RG/providers/x"),
            Some("My-RG")
        );
        assert_eq!(resource_group_of_id("/subscriptions/s"), None);
        assert_eq!(
            resource_group_of_id("/subscriptions/s/resourceGroups/"),
            None
        );
    }

    #[test]
    fn table_of_scalars_and_empty_lists() {
        assert_eq!(render_ok(&json!("x"), None, OutputFormat::Table), "x\n");
        assert_eq!(render_ok(&json!([]), None, OutputFormat::Table), "");
        let t = render_ok(&json!(["a", "bb"]), None, OutputFormat::Table);
        assert_eq!(t, "Result\n------\na\nbb\n");
    }

    #[test]
    fn null_and_none_print_nothing() {
        assert_eq!(render_ok(&Value::Null, None, OutputFormat::Json), "");
        assert_eq!(render_ok(&identity("a", "c"), None, OutputFormat::None), "");
    }

    #[test]
    fn json_is_pretty() {
        let text = render_ok(&json!({"a": 1}), None, OutputFormat::Json);
        assert_eq!(text, "{\n  \"a\": 1\n}\n");
    }

    #[test]
    fn a_query_that_matches_nothing_is_an_error_naming_the_fields() {
        let v = identity("app", "c");
        let q = query("clientid");
        let Err(e) = render_result(&v, Some(&q), OutputFormat::Tsv) else {
            unreachable!("should fail")
        };
        let msg = format!("{e:#}");
        assert!(msg.contains("matched nothing"), "{msg}");
        assert!(msg.contains("properties.clientId"), "{msg}");

        let list = json!([identity("app", "c")]);
        let Err(e) = render_result(&list, Some(&q), OutputFormat::Tsv) else {
            unreachable!("should fail")
        };
        assert!(format!("{e:#}").contains("[].FIELD"));
    }
}
