//! Federation commands: `keyless issuer` (static-JWKS issuers), `keyless signin-log`
//! and `keyless explain`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::manage::args::CommonArgs;
use crate::manage::output::emit;
use crate::manage::session::Session;

const API: &str = "2024-01-01";

/// Issuers trusted through a static JWKS.
#[derive(Debug, Subcommand)]
pub enum IssuerCommand {
    /// Register (or replace) an issuer with its JWKS, for clusters whose issuer
    /// Keyless cannot reach (private or air-gapped). No discovery fetch happens.
    Register {
        /// Registration name.
        #[arg(long, short = 'n')]
        name: String,
        /// Issuer URL, exactly as in the tokens' `iss`.
        #[arg(long)]
        issuer: String,
        /// JWKS file (e.g. from `kubectl get --raw /openid/v1/jwks`).
        #[arg(long)]
        jwks_file: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List registrations.
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Show a registration.
    Show {
        /// Registration name.
        #[arg(long, short = 'n')]
        name: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Delete a registration.
    Delete {
        /// Registration name.
        #[arg(long, short = 'n')]
        name: String,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// The sign-in log.
#[derive(Debug, Subcommand)]
pub enum SigninLogCommand {
    /// List token requests, newest first.
    List {
        /// Only this identity: a client id, or an identity name (looked up in the
        /// subscription).
        #[arg(long)]
        identity: Option<String>,
        /// Only failed requests.
        #[arg(long)]
        failed: bool,
        /// Only since: a duration (`90s`, `15m`, `2h`, `7d`), Unix seconds or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// Most entries.
        #[arg(long, default_value_t = 100)]
        top: u32,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Options of `keyless explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Token file, or `-` for standard input.
    #[arg(long, default_value = "-")]
    pub token: String,
    /// Client id of the identity.
    #[arg(long, conflicts_with = "identity_name")]
    pub client_id: Option<String>,
    /// Identity name (with --resource-group) instead of a client id.
    #[arg(long, requires = "resource_group")]
    pub identity_name: Option<String>,
    /// Resource group of --identity-name.
    #[arg(long, short = 'g')]
    pub resource_group: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs an issuer command.
pub async fn run_issuer(cmd: IssuerCommand) -> Result<()> {
    match cmd {
        IssuerCommand::Register {
            name,
            issuer,
            jwks_file,
            common,
        } => {
            let text = std::fs::read_to_string(&jwks_file)
                .with_context(|| format!("reading {}", jwks_file.display()))?;
            let jwks: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", jwks_file.display()))?;
            let s = Session::open(&common).await?;
            let body = json!({"properties": {"issuer": issuer, "jwks": jwks}});
            let out = s
                .arm
                .put(
                    &format!("/providers/Keyless/trustedIssuers/{name}"),
                    API,
                    &body,
                )
                .await?;
            emit(&out, &common)
        }
        IssuerCommand::List { common } => {
            let s = Session::open(&common).await?;
            emit(
                &Value::Array(s.arm.list("/providers/Keyless/trustedIssuers", API).await?),
                &common,
            )
        }
        IssuerCommand::Show { name, common } => {
            let s = Session::open(&common).await?;
            emit(
                &s.arm
                    .get(&format!("/providers/Keyless/trustedIssuers/{name}"), API)
                    .await?,
                &common,
            )
        }
        IssuerCommand::Delete { name, common } => {
            let s = Session::open(&common).await?;
            s.arm
                .delete(&format!("/providers/Keyless/trustedIssuers/{name}"), API)
                .await?;
            Ok(())
        }
    }
}

/// `90s`, `15m`, `2h`, `7d` → seconds.
fn parse_duration(s: &str) -> Option<i64> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn since_param(s: &str) -> Result<String> {
    if let Some(d) = parse_duration(s) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        return Ok((i64::try_from(now)? - d).to_string());
    }
    if s.parse::<i64>().is_ok()
        || time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
    {
        return Ok(s.to_string());
    }
    bail!("--since '{s}' is not a duration (15m, 2h, 7d), Unix seconds or an RFC 3339 time")
}

async fn client_id_of(s: &Session, identity: &str) -> Result<String> {
    if uuid::Uuid::parse_str(identity).is_ok() {
        return Ok(identity.to_string());
    }
    let list = s
        .arm
        .list(
            &format!(
                "/subscriptions/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                s.subscription
            ),
            "2023-01-31",
        )
        .await?;
    let found: Vec<&Value> = list
        .iter()
        .filter(|i| {
            i.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(identity))
        })
        .collect();
    match found.as_slice() {
        [one] => one
            .pointer("/properties/clientId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .context("the identity has no clientId"),
        [] => bail!(
            "no identity named '{identity}' in subscription {}",
            s.subscription
        ),
        _ => bail!("several identities are named '{identity}'; pass the client id instead"),
    }
}

/// Runs a sign-in log command.
pub async fn run_signin_log(cmd: SigninLogCommand) -> Result<()> {
    let SigninLogCommand::List {
        identity,
        failed,
        since,
        top,
        common,
    } = cmd;
    let s = Session::open(&common).await?;
    // Pages of up to 1,000 rows until `top` are read.
    let page = top.clamp(1, 1000);
    let mut q: Vec<(String, String)> = vec![("$top".into(), page.to_string())];
    if let Some(i) = identity {
        q.push(("clientId".into(), client_id_of(&s, &i).await?));
    }
    if failed {
        q.push(("failed".into(), "true".into()));
    }
    if let Some(since) = since {
        q.push(("since".into(), since_param(&since)?));
    }
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = s
        .arm
        .list_at_most(
            "/providers/Keyless/signInLogs",
            API,
            &pairs,
            usize::try_from(top).unwrap_or(usize::MAX),
        )
        .await?;
    emit(&Value::Array(out), &common)
}

/// Runs `keyless explain`: prints each check and exits non-zero when the token would
/// be refused.
pub async fn run_explain(args: ExplainArgs) -> Result<()> {
    let token = if args.token == "-" {
        let mut buf = String::new();
        std::io::stdin()
            .read_to_string(&mut buf)
            .context("reading the token from standard input")?;
        buf
    } else {
        std::fs::read_to_string(&args.token).with_context(|| format!("reading {}", args.token))?
    };
    let s = Session::open(&args.common).await?;
    let client_id = match (&args.client_id, &args.identity_name, &args.resource_group) {
        (Some(c), _, _) => c.clone(),
        (None, Some(name), Some(rg)) => {
            let path = format!(
                "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
                s.subscription
            );
            let identity = s.arm.get(&path, "2023-01-31").await?;
            identity
                .pointer("/properties/clientId")
                .and_then(Value::as_str)
                .context("the identity has no clientId")?
                .to_string()
        }
        _ => bail!("pass --client-id, or --identity-name with --resource-group"),
    };
    let body = json!({"clientId": client_id, "assertion": token.trim()});
    let out = s
        .arm
        .send(
            Method::POST,
            "/providers/Keyless/explain",
            API,
            &[],
            Some(&body),
        )
        .await?;
    if matches!(
        args.common.output,
        crate::manage::output::OutputFormat::Json
    ) && args.common.query.is_none()
    {
        for step in out
            .get("steps")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let mark = if step.get("ok").and_then(Value::as_bool) == Some(true) {
                "PASS"
            } else {
                "FAIL"
            };
            let text = |key: &str| {
                crate::manage::terminal::escaped(
                    step.get(key).and_then(Value::as_str).unwrap_or_default(),
                )
                .into_owned()
            };
            println!("{mark}  {:<22} {}", text("check"), text("detail"));
        }
        let verdict = out.get("wouldSucceed").and_then(Value::as_bool) == Some(true);
        println!(
            "{}",
            if verdict {
                "=> the token would be exchanged"
            } else {
                "=> the token would be refused"
            }
        );
    } else {
        emit(&out, &args.common)?;
    }
    if out.get("wouldSucceed").and_then(Value::as_bool) == Some(true) {
        Ok(())
    } else {
        bail!("the token would be refused")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("7d"), Some(604800));
        assert_eq!(parse_duration("7w"), None);
        assert_eq!(parse_duration(""), None);
        assert!(since_param("yesterday").is_err());
        assert!(since_param("2026-01-01T00:00:00Z").is_ok());
    }
}
