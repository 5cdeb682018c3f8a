//! Options shared by every management command, and small argument parsers.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::output::OutputFormat;
use super::query::Query;

/// Options every management command accepts (flattened into each leaf command, so they
/// can be given after the subcommand, as with az: `keyless identity show ... -o tsv`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Global Options")]
pub struct CommonArgs {
    /// Admin credential file written by `keyless serve`
    /// [default: $KEYLESS_DATA_DIR/admin.json, else ./keyless-data/admin.json].
    #[arg(long, env = "KEYLESS_ADMIN_FILE", value_name = "PATH")]
    pub admin_file: Option<PathBuf>,

    /// Subscription to work in [default: the admin file's subscriptionId].
    #[arg(long, value_name = "ID")]
    pub subscription: Option<String>,

    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Json)]
    pub output: OutputFormat,

    /// Take one value out of the result: a dotted path such as `clientId`,
    /// `properties.clientId`, `tags.env`, `[0].id` or `[].name` (a small JMESPath subset).
    /// Fields az shows flattened (e.g. `clientId` of an identity) are also found under
    /// `properties`.
    #[arg(long, value_name = "PATH", value_parser = Query::parse)]
    pub query: Option<Query>,
}

/// Parses one `--tags` item the way az does: `key=value`, or a bare `key` for an empty
/// value.
pub fn parse_tag(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw.split_once('=').unwrap_or((raw, ""));
    if key.is_empty() {
        return Err(format!("tag '{raw}' has no key; write key=value"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Turns parsed `--tags` into the JSON object ARM expects.
pub fn tags_json(tags: &[(String, String)]) -> Value {
    let map: Map<String, Value> = tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_like_az() {
        assert_eq!(parse_tag("env=prod"), Ok(("env".into(), "prod".into())));
        assert_eq!(parse_tag("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_tag("flag"), Ok(("flag".into(), String::new())));
        assert!(parse_tag("=x").is_err());
    }

    #[test]
    fn tags_become_an_object() {
        let tags = vec![
            ("env".to_owned(), "prod".to_owned()),
            ("team".to_owned(), String::new()),
        ];
        assert_eq!(
            tags_json(&tags),
            serde_json::json!({"env": "prod", "team": ""})
        );
        assert_eq!(tags_json(&[]), serde_json::json!({}));
    }
}
