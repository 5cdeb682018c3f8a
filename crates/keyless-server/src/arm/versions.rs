//! `api-version` rules per resource type.

/// The resource families with their accepted versions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Family {
    Tenants,
    Resources,
    ManagedIdentity,
    Authorization,
    KeyVault,
    Keyless,
}

const MANAGED_IDENTITY: &[&str] = &[
    "2018-11-30",
    "2021-09-30-preview",
    "2022-01-31-preview",
    "2023-01-31",
    "2023-07-31-preview",
    "2024-11-30",
    "2025-01-31-preview",
];
const AUTHORIZATION: &[&str] = &[
    "2015-07-01",
    "2018-01-01-preview",
    "2018-09-01-preview",
    "2020-04-01-preview",
    "2020-10-01-preview",
    "2022-04-01",
    "2022-05-01-preview",
];
const TENANTS: &[&str] = &[
    "2016-06-01",
    "2019-06-01",
    "2020-01-01",
    "2021-01-01",
    "2022-12-01",
];

/// The date of a dated api-version (`YYYY-MM-DD`, optionally `-preview`), if it is one.
pub(crate) fn version_date(v: &str) -> Option<&str> {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let well_formed = date.len() == 10
        && date.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    well_formed.then_some(date)
}

fn date_at_least(v: &str, min: &str) -> bool {
    version_date(v).is_some_and(|date| date >= min)
}

/// Whether `version` is accepted for `family`; on refusal, the list to show.
pub(crate) fn check(family: Family, version: &str) -> Result<(), String> {
    let ok = match family {
        Family::Tenants => TENANTS.contains(&version),
        Family::Resources => date_at_least(version, "2021-04-01"),
        Family::ManagedIdentity => MANAGED_IDENTITY.contains(&version),
        Family::Authorization => AUTHORIZATION.contains(&version),
        Family::KeyVault => date_at_least(version, "2019-09-01"),
        Family::Keyless => date_at_least(version, "2024-01-01"),
    };
    if ok {
        return Ok(());
    }
    Err(match family {
        Family::Tenants => TENANTS.join(", "),
        Family::Resources => "2021-04-01 or later".into(),
        Family::ManagedIdentity => MANAGED_IDENTITY.join(", "),
        Family::Authorization => AUTHORIZATION.join(", "),
        Family::KeyVault => "2019-09-01 or later".into(),
        Family::Keyless => "2024-01-01 or later".into(),
    })
}
