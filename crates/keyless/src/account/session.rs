//! The signed-in account on disk, and the credential it makes.
//!
//! Two files in the config directory, like az's `azureProfile.json` and
//! `service_principal_entries.json`: [`Profile`] (`profile.json`: who and where, shown
//! by `account show`) and [`Secrets`] (`credentials.json`: the client secret or the
//! federated token given at login). Both are written mode 0600 through a temporary file
//! and a rename, so a reader never sees half a file.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use keyless_credential::{
    ClientAssertionCredential, ClientSecretCredential, CredentialOptions, TokenCredential,
    WorkloadIdentityCredential, WorkloadIdentityOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Environment variable naming the config directory.
pub const CONFIG_DIR_ENV: &str = "KEYLESS_CONFIG_DIR";
const PROFILE_FILE: &str = "profile.json";
const SECRETS_FILE: &str = "credentials.json";
/// Version of the files' layout.
pub const LAYOUT: u32 = 1;

/// How the account proves its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialKind {
    /// A client secret (`--password`).
    ClientSecret,
    /// A federated token given at login (`--federated-token TOKEN`).
    FederatedToken,
    /// A federated token file read at every token request (`--federated-token @FILE`).
    FederatedTokenFile,
}

/// A subscription the account can see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Subscription id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `Enabled`, ...
    pub state: String,
}

/// `profile.json`: everything about the session except its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Layout version.
    pub version: u32,
    /// `Keyless`, or `AzureCloud` for Entra ID's public cloud (az's `environmentName`).
    pub environment_name: String,
    /// Token service base URL.
    pub authority_host: String,
    /// CA the token service's certificate is checked against (absolute path).
    pub ca_file: Option<PathBuf>,
    /// Tenant id.
    pub tenant_id: String,
    /// Client id of the service principal or identity.
    pub client_id: String,
    /// Kind of credential.
    pub credential_type: CredentialKind,
    /// The federated token file (absolute), for [`CredentialKind::FederatedTokenFile`].
    pub token_file: Option<PathBuf>,
    /// The resource manager's resource (audience) — the default token resource.
    pub resource_manager_resource: String,
    /// The resource manager's endpoint.
    pub resource_manager_endpoint: String,
    /// Subscriptions the account could read at login; the first is the default.
    pub subscriptions: Vec<Subscription>,
}

/// `credentials.json`: the secret given at login.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secrets {
    /// Client secret, for [`CredentialKind::ClientSecret`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Federated token, for [`CredentialKind::FederatedToken`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_assertion: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "client_assertion",
                &self.client_assertion.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who and where.
    pub profile: Profile,
    /// The secret.
    pub secrets: Secrets,
}

/// The config directory: `$KEYLESS_CONFIG_DIR`, else `$HOME/.keyless`.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".keyless")),
        None => bail!("cannot find the config directory: set {CONFIG_DIR_ENV} or HOME"),
    }
}

impl Session {
    /// Loads the session; the error says how to sign in when there is none.
    pub fn load() -> Result<Self> {
        Self::load_from(&config_dir()?)
    }

    /// Loads the session from `dir`.
    pub fn load_from(dir: &Path) -> Result<Self> {
        let profile_path = dir.join(PROFILE_FILE);
        let text = match std::fs::read_to_string(&profile_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "not logged in: run `keyless login --service-principal -u CLIENT_ID -t TENANT \
                 --federated-token @FILE` (or --password) first"
            ),
            Err(e) => {
                return Err(anyhow!(e).context(format!("cannot read {}", profile_path.display())));
            }
        };
        let profile: Profile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a Keyless profile: run `keyless logout` and log in again",
                profile_path.display()
            )
        })?;
        if profile.version != LAYOUT {
            bail!(
                "{} has layout version {} (this keyless understands {LAYOUT}): log in again",
                profile_path.display(),
                profile.version
            );
        }
        let secrets_path = dir.join(SECRETS_FILE);
        let secrets: Secrets = match std::fs::read_to_string(&secrets_path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!("{} is not valid: log in again", secrets_path.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Secrets::default(),
            Err(e) => {
                return Err(anyhow!(e).context(format!("cannot read {}", secrets_path.display())));
            }
        };
        Ok(Self { profile, secrets })
    }

    /// Saves the session in the config directory (created mode 0700).
    pub fn save(&self) -> Result<PathBuf> {
        let dir = config_dir()?;
        self.save_to(&dir)?;
        Ok(dir)
    }

    /// Saves the session in `dir`.
    pub fn save_to(&self, dir: &Path) -> Result<()> {
        create_private_dir(dir)?;
        let profile =
            serde_json::to_vec_pretty(&self.profile).context("serialising the profile")?;
        let secrets =
            serde_json::to_vec_pretty(&self.secrets).context("serialising the credentials")?;
        // The secret first: a profile without its secret would look like a session.
        write_private(&dir.join(SECRETS_FILE), &secrets)?;
        write_private(&dir.join(PROFILE_FILE), &profile)
    }

    /// The subscription commands report: `--subscription`, else the account's default.
    pub fn subscription(&self) -> Option<&Subscription> {
        self.profile.subscriptions.first()
    }

    /// The account as `az account show` prints it (plus where the token service is and
    /// how the account signs in; never the secret).
    pub fn account_json(&self) -> Value {
        self.accounts_json()
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    }

    /// Every account of the session (one per subscription, or one tenant-level
    /// account), as `az login` prints them.
    pub fn accounts_json(&self) -> Vec<Value> {
        let p = &self.profile;
        let base = |id: &str, name: &str, state: &str, default: bool| {
            let mut v = json!({
                "environmentName": p.environment_name,
                "homeTenantId": p.tenant_id,
                "id": id,
                "isDefault": default,
                "managedByTenants": [],
                "name": name,
                "state": state,
                "tenantId": p.tenant_id,
                "user": {"name": p.client_id, "type": "servicePrincipal"},
                "authorityHost": p.authority_host,
                "credentialType": p.credential_type,
            });
            if let (Some(file), Some(o)) = (&p.token_file, v.as_object_mut()) {
                o.insert("federatedTokenFile".into(), json!(file));
            }
            v
        };
        if p.subscriptions.is_empty() {
            return vec![base(
                &p.tenant_id,
                "N/A(tenant level account)",
                "Enabled",
                true,
            )];
        }
        p.subscriptions
            .iter()
            .enumerate()
            .map(|(i, s)| base(&s.id, &s.name, &s.state, i == 0))
            .collect()
    }

    /// Options trusting the session's CA.
    pub fn credential_options(&self) -> CredentialOptions {
        let mut options = CredentialOptions::new().authority_host(&self.profile.authority_host);
        if let Some(ca) = &self.profile.ca_file {
            options = options.ca_file(ca);
        }
        options
    }

    /// The credential this session signs in with.
    pub fn credential(&self) -> Result<Box<dyn TokenCredential>> {
        let p = &self.profile;
        let options = self.credential_options();
        let missing = || {
            anyhow!(
                "the saved credentials do not match the profile ({}): log in again",
                config_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default()
            )
        };
        Ok(match p.credential_type {
            CredentialKind::ClientSecret => {
                let secret = self.secrets.client_secret.clone().ok_or_else(missing)?;
                Box::new(ClientSecretCredential::new(
                    &p.tenant_id,
                    &p.client_id,
                    secret,
                    options,
                )?)
            }
            CredentialKind::FederatedToken => {
                let assertion = self.secrets.client_assertion.clone().ok_or_else(missing)?;
                Box::new(ClientAssertionCredential::new(
                    &p.tenant_id,
                    &p.client_id,
                    assertion,
                    options,
                )?)
            }
            CredentialKind::FederatedTokenFile => {
                let file = p.token_file.clone().ok_or_else(missing)?;
                Box::new(WorkloadIdentityCredential::new(
                    WorkloadIdentityOptions::new()
                        .tenant_id(&p.tenant_id)
                        .client_id(&p.client_id)
                        .token_file_path(file)
                        .options(options),
                )?)
            }
        })
    }
}

/// `keyless logout`: removes the session files (az says so when there is none).
pub fn logout() -> Result<()> {
    logout_from(&config_dir()?)
}

/// Removes the session files in `dir`.
pub fn logout_from(dir: &Path) -> Result<()> {
    let mut removed = false;
    for name in [PROFILE_FILE, SECRETS_FILE] {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(anyhow!(e).context(format!("cannot remove {}", path.display()))),
        }
    }
    if !removed {
        bail!("there is no active account: nothing to log out of");
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the config directory {}", dir.display()))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` with mode 0600: a temporary file in the same directory,
/// then a rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow!(e).context(format!("cannot write {}", path.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn session(kind: CredentialKind) -> Session {
        Session {
            profile: Profile {
                version: LAYOUT,
                environment_name: "Keyless".into(),
                authority_host: "https://localhost:8443".into(),
                ca_file: None,
                tenant_id: "t".into(),
                client_id: "c".into(),
                credential_type: kind,
                token_file: None,
                resource_manager_resource: "https://localhost:8443/".into(),
                resource_manager_endpoint: "https://localhost:8443/".into(),
                subscriptions: vec![],
            },
            secrets: Secrets {
                client_secret: Some("hunter2".into()),
                client_assertion: None,
            },
        }
    }

    #[test]
    fn sessions_round_trip_with_private_files_and_log_out() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let config = dir.path().join("config");
        let s = session(CredentialKind::ClientSecret);
        s.save_to(&config).unwrap_or_else(|e| unreachable!("{e:#}"));
        for (name, mode) in [(PROFILE_FILE, 0o600), (SECRETS_FILE, 0o600)] {
            let meta = std::fs::metadata(config.join(name)).unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
        }
        let dir_mode = std::fs::metadata(&config)
            .map(|m| m.permissions().mode() & 0o777)
            .ok();
        assert_eq!(dir_mode, Some(0o700));
        let profile_text = std::fs::read_to_string(config.join(PROFILE_FILE)).unwrap_or_default();
        assert!(
            !profile_text.contains("hunter2"),
            "the profile holds no secret"
        );
        let loaded = Session::load_from(&config).unwrap_or_else(|e| unreachable!("{e:#}"));
        assert_eq!(loaded.profile, s.profile);
        assert_eq!(loaded.secrets.client_secret.as_deref(), Some("hunter2"));
        assert!(!format!("{loaded:?}").contains("hunter2"));
        logout_from(&config).unwrap_or_else(|e| unreachable!("{e:#}"));
        let Err(e) = Session::load_from(&config) else {
            unreachable!("logged out")
        };
        assert!(format!("{e:#}").contains("not logged in"), "{e:#}");
        assert!(logout_from(&config).is_err());
    }

    #[test]
    fn accounts_look_like_az() {
        let mut s = session(CredentialKind::FederatedTokenFile);
        s.profile.token_file = Some("/var/run/token".into());
        let a = s.account_json();
        assert_eq!(a["id"], "t");
        assert_eq!(a["name"], "N/A(tenant level account)");
        assert_eq!(a["user"], json!({"name": "c", "type": "servicePrincipal"}));
        assert_eq!(a["credentialType"], "federatedTokenFile");
        assert_eq!(a["federatedTokenFile"], "/var/run/token");
        s.profile.subscriptions = vec![
            Subscription {
                id: "s1".into(),
                name: "one".into(),
                state: "Enabled".into(),
            },
            Subscription {
                id: "s2".into(),
                name: "two".into(),
                state: "Enabled".into(),
            },
        ];
        let all = s.accounts_json();
        assert_eq!(all.len(), 2);
        assert_eq!(
            (all[0]["id"].clone(), all[0]["isDefault"].clone()),
            (json!("s1"), json!(true))
        );
        assert_eq!(all[1]["isDefault"], json!(false));
        assert!(
            !serde_json::to_string(&all)
                .unwrap_or_default()
                .contains("hunter2")
        );
    }

    #[test]
    fn a_profile_without_its_secret_is_reported() {
        let mut s = session(CredentialKind::FederatedToken);
        s.secrets = Secrets::default();
        let Err(e) = s.credential() else {
            unreachable!()
        };
        assert!(e.to_string().contains("log in again"), "{e}");
    }
}
