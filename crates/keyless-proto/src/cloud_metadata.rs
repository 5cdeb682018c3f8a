//! The ARM cloud metadata document (`GET /metadata/endpoints`): where a cloud's resource
//! manager, token service and service DNS suffixes are. `az cloud register
//! --endpoint-resource-manager URL` and Terraform's `metadata_host` configure themselves
//! from it.
//!
//! Clients read it with fixed names (azure-cli's `_arm_to_cli_mapper` indexes `name`,
//! `authentication.loginEndpoint`, `authentication.audiences[0]` and `suffixes`; the Go
//! SDK behind Terraform's azurerm provider refuses a document without `name`,
//! `resourceManager` or `microsoftGraphResourceId`), so every field here is spelled as
//! ARM spells it. Services a cloud does not have are simply absent.

use serde::{Deserialize, Serialize};

/// One cloud's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudMetadata {
    /// The cloud's name (`AzureCloud` for Azure's public cloud).
    pub name: String,
    /// Resource manager URL, with a trailing slash.
    pub resource_manager: String,
    /// Token service and token audiences of the resource manager.
    pub authentication: CloudAuthentication,
    /// Resource id (token audience) of Microsoft Graph. Required by the Go SDK's loader.
    pub microsoft_graph_resource_id: String,
    /// DNS suffixes of the cloud's services.
    pub suffixes: CloudSuffixes,
}

/// `authentication` of [`CloudMetadata`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudAuthentication {
    /// The token service (authority host), with a trailing slash.
    pub login_endpoint: String,
    /// Token audiences of the resource manager; clients ask for tokens for the first.
    pub audiences: Vec<String>,
    /// The tenant clients use when none is given (`common`).
    pub tenant: String,
    /// `AAD`.
    pub identity_provider: String,
}

/// `suffixes` of [`CloudMetadata`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudSuffixes {
    /// Vault host suffix without a leading dot (`vault.azure.net`): a vault is
    /// `https://{name}.{keyVaultDns}` and its token resource `https://{keyVaultDns}`.
    pub key_vault_dns: String,
}
