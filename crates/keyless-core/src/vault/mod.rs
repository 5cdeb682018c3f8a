//! Vaults: the management resource (`Microsoft.KeyVault/vaults`) and the Key
//! Vault-compatible secrets data plane, with RBAC on data actions and values sealed at
//! rest with the key-encryption key.

mod cache;
mod data_plane;
mod resource;

pub use cache::SecretCache;
pub use data_plane::{
    DeletedSecretView, SecretAttributesInput, SecretPut, SecretUpdate, SecretVersionView,
    VaultError,
};
pub use resource::{VaultInput, check_vault_name, vault_id};

/// Longest secret value accepted (Key Vault's limit is 25 KB).
pub const MAX_SECRET_BYTES: usize = 25 * 1024;
