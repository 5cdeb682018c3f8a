//! `keyless login --service-principal`: check the credential by getting a resource
//! manager token, list the subscriptions it can read, save the session.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use keyless_credential::{AZURE_PUBLIC_CLOUD, ENV_AUTHORITY_HOST, scope_for_resource};
use serde_json::Value;

use super::LoginArgs;
use super::session::{CredentialKind, LAYOUT, Profile, Secrets, Session, Subscription};
use crate::manage::session::{AdminFile, admin_file_path, http_client};
use crate::process::absolute;

/// api-version of `GET /subscriptions`.
const SUBSCRIPTIONS_API: &str = "2022-12-01";

/// Microsoft clouds: authority host → (resource manager resource, endpoint), as az's
/// cloud table has them.
const MICROSOFT_CLOUDS: [(&str, &str, &str, &str); 3] = [
    (
        "login.microsoftonline.com",
        "AzureCloud",
        "https://management.core.windows.net/",
        "https://management.azure.com/",
    ),
    (
        "login.microsoftonline.us",
        "AzureUSGovernment",
        "https://management.core.usgovcloudapi.net/",
        "https://management.usgovcloudapi.net/",
    ),
    (
        "login.chinacloudapi.cn",
        "AzureChinaCloud",
        "https://management.core.chinacloudapi.cn/",
        "https://management.chinacloudapi.cn/",
    ),
];

/// Where to sign in, after applying the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Token service base URL, no trailing slash.
    pub authority_host: String,
    /// CA to trust, if any.
    pub ca_file: Option<PathBuf>,
    /// az's `environmentName`.
    pub environment_name: String,
    /// Resource manager resource (audience).
    pub resource_manager_resource: String,
    /// Resource manager endpoint.
    pub resource_manager_endpoint: String,
}

/// Picks the token service: `--authority`, else `AZURE_AUTHORITY_HOST`, else the admin
/// file's server (with its CA and resource manager), else Entra ID's public cloud.
pub fn resolve_target(
    authority: Option<&str>,
    ca_file: Option<&Path>,
    env_authority: Option<String>,
    admin: Option<&AdminFile>,
) -> Target {
    let authority = authority
        .map(str::to_owned)
        .or_else(|| env_authority.filter(|v| !v.trim().is_empty()))
        .or_else(|| admin.map(|a| a.authority_host.clone()))
        .unwrap_or_else(|| AZURE_PUBLIC_CLOUD.to_owned());
    let authority = authority.trim().trim_end_matches('/').to_owned();
    let admin = admin.filter(|a| same_origin(&a.authority_host, &authority));
    let ca_file = ca_file
        .map(absolute)
        .or_else(|| admin.and_then(|a| a.ca_file.as_deref().map(absolute)));
    let host = reqwest::Url::parse(&authority)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .unwrap_or_default();
    if let Some((_, env, resource, endpoint)) = MICROSOFT_CLOUDS.iter().find(|(h, ..)| *h == host) {
        return Target {
            authority_host: authority,
            ca_file,
            environment_name: (*env).to_owned(),
            resource_manager_resource: (*resource).to_owned(),
            resource_manager_endpoint: (*endpoint).to_owned(),
        };
    }
    // Keyless serves its management API at the authority host's root.
    let resource_manager = admin
        .map(|a| a.resource_manager_url.clone())
        .unwrap_or_else(|| format!("{authority}/"));
    Target {
        authority_host: authority,
        ca_file,
        environment_name: "Keyless".to_owned(),
        resource_manager_resource: resource_manager.clone(),
        resource_manager_endpoint: resource_manager,
    }
}

fn same_origin(a: &str, b: &str) -> bool {
    let origin = |s: &str| {
        reqwest::Url::parse(s.trim()).ok().map(|u| {
            (
                u.scheme().to_owned(),
                u.host_str().map(str::to_ascii_lowercase),
                u.port_or_known_default(),
            )
        })
    };
    origin(a).is_some() && origin(a) == origin(b)
}

/// `TOKEN` or `@FILE`: the value, and the file it came from.
fn value_or_file(raw: &str, what: &str) -> Result<(String, Option<PathBuf>)> {
    match raw.strip_prefix('@') {
        Some(path) => {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
            let value = text.trim().to_owned();
            if value.is_empty() {
                bail!("the {what} file {} is empty", path.display());
            }
            Ok((value, Some(absolute(&path))))
        }
        None => {
            let value = raw.trim().to_owned();
            if value.is_empty() {
                bail!("the {what} is empty");
            }
            Ok((value, None))
        }
    }
}

/// Runs `keyless login`.
pub async fn run(args: LoginArgs) -> Result<()> {
    if !args.service_principal {
        bail!(
            "interactive sign-in is not supported: sign in as a service principal or workload \
             identity with --service-principal -u CLIENT_ID -t TENANT and --federated-token or --password"
        );
    }
    let admin = load_admin(args.admin_file.as_deref())?;
    let target = resolve_target(
        args.authority.as_deref(),
        args.ca_file.as_deref(),
        std::env::var(ENV_AUTHORITY_HOST).ok(),
        admin.as_ref(),
    );

    let (credential_type, token_file, secrets) = match (&args.federated_token, &args.password) {
        (Some(token), _) => {
            let (value, file) = value_or_file(token, "federated token")?;
            match file {
                Some(file) => (
                    CredentialKind::FederatedTokenFile,
                    Some(file),
                    Secrets::default(),
                ),
                None => (
                    CredentialKind::FederatedToken,
                    None,
                    Secrets {
                        client_assertion: Some(value),
                        client_secret: None,
                    },
                ),
            }
        }
        (None, Some(password)) => {
            let (value, _) = value_or_file(password, "password")?;
            (
                CredentialKind::ClientSecret,
                None,
                Secrets {
                    client_secret: Some(value),
                    client_assertion: None,
                },
            )
        }
        (None, None) => bail!("pass --federated-token TOKEN|@FILE or --password SECRET|@FILE"),
    };
    let mut session = Session {
        profile: Profile {
            version: LAYOUT,
            environment_name: target.environment_name.clone(),
            authority_host: target.authority_host.clone(),
            ca_file: target.ca_file.clone(),
            tenant_id: args.tenant.trim().to_owned(),
            client_id: args.username.trim().to_owned(),
            credential_type,
            token_file,
            resource_manager_resource: target.resource_manager_resource.clone(),
            resource_manager_endpoint: target.resource_manager_endpoint.clone(),
            subscriptions: vec![],
        },
        secrets,
    };

    // Prove the credential works before saving anything.
    let credential = session.credential()?;
    let scope = scope_for_resource(&target.resource_manager_resource);
    let token = credential.get_token(&scope).await.with_context(|| {
        format!(
            "login failed for {} in tenant {}",
            session.profile.client_id, session.profile.tenant_id
        )
    })?;
    session.profile.subscriptions = list_subscriptions(&target, token.secret()).await;
    session.save()?;
    args.output.emit(&Value::Array(session.accounts_json()))
}

/// The admin file for defaults: an explicit one must exist; the default location is
/// used only when present.
fn load_admin(explicit: Option<&Path>) -> Result<Option<AdminFile>> {
    let path = admin_file_path(explicit, std::env::var_os("KEYLESS_DATA_DIR"));
    if explicit.is_none() && !path.exists() {
        return Ok(None);
    }
    AdminFile::load(&path).map(Some)
}

/// The subscriptions the account can read (`GET /subscriptions`). A workload identity
/// usually has none (az's "tenant level account"); failures are treated the same way,
/// since the token itself was obtained.
async fn list_subscriptions(target: &Target, token: &str) -> Vec<Subscription> {
    let Ok(http) = http_client(target.ca_file.as_deref()) else {
        return vec![];
    };
    let url = format!(
        "{}/subscriptions?api-version={SUBSCRIPTIONS_API}",
        target.resource_manager_endpoint.trim_end_matches('/')
    );
    let Ok(response) = http.get(&url).bearer_auth(token).send().await else {
        return vec![];
    };
    if !response.status().is_success() {
        return vec![];
    }
    let Ok(body) = response.json::<Value>().await else {
        return vec![];
    };
    body.get("value")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|s| {
                    let text = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
                    Some(Subscription {
                        id: text("subscriptionId")?,
                        name: text("displayName").unwrap_or_default(),
                        state: text("state").unwrap_or_else(|| "Enabled".to_owned()),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> AdminFile {
        match serde_json::from_value(serde_json::json!({
            "tenantId": "t", "subscriptionId": "s", "clientId": "c", "clientSecret": "x",
            "authorityHost": "https://localhost:8443",
            "resourceManagerUrl": "https://localhost:8443/",
            "caFile": "/data/ca.pem",
        })) {
            Ok(a) => a,
            Err(e) => unreachable!("{e}"),
        }
    }

    #[test]
    fn defaults_prefer_flags_then_env_then_the_admin_file_then_entra() {
        let a = admin();
        let t = resolve_target(None, None, None, Some(&a));
        assert_eq!(t.authority_host, "https://localhost:8443");
        assert_eq!(t.ca_file.as_deref(), Some(Path::new("/data/ca.pem")));
        assert_eq!(t.environment_name, "Keyless");
        assert_eq!(t.resource_manager_resource, "https://localhost:8443/");

        // The env names another server: the admin file's CA is not used for it.
        let t = resolve_target(
            None,
            None,
            Some("https://keyless.example:9443/".into()),
            Some(&a),
        );
        assert_eq!(t.authority_host, "https://keyless.example:9443");
        assert_eq!(t.ca_file, None);
        assert_eq!(t.resource_manager_endpoint, "https://keyless.example:9443/");

        // The flag wins, and an explicit CA is kept (absolute).
        let t = resolve_target(
            Some("https://login.microsoftonline.com/"),
            Some(Path::new("/etc/ca.pem")),
            Some("https://x".into()),
            Some(&a),
        );
        assert_eq!(t.authority_host, "https://login.microsoftonline.com");
        assert_eq!(t.environment_name, "AzureCloud");
        assert_eq!(
            t.resource_manager_resource,
            "https://management.core.windows.net/"
        );
        assert_eq!(t.resource_manager_endpoint, "https://management.azure.com/");
        assert_eq!(t.ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));

        let t = resolve_target(None, None, None, None);
        assert_eq!(t.authority_host, AZURE_PUBLIC_CLOUD);
        assert_eq!(t.environment_name, "AzureCloud");
    }

    #[test]
    fn values_come_inline_or_from_a_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let file = dir.path().join("token");
        std::fs::write(&file, "a.b.c\n").unwrap_or_else(|e| unreachable!("{e}"));
        let (value, from) = value_or_file(&format!("@{}", file.display()), "federated token")
            .unwrap_or_else(|e| unreachable!("{e:#}"));
        assert_eq!(value, "a.b.c");
        assert_eq!(from.as_deref(), Some(file.as_path()));
        let (value, from) =
            value_or_file(" x.y.z ", "federated token").unwrap_or_else(|e| unreachable!("{e:#}"));
        assert_eq!((value.as_str(), from), ("x.y.z", None));
        assert!(value_or_file("@/nonexistent/token", "federated token").is_err());
        assert!(value_or_file("  ", "password").is_err());
    }
}
