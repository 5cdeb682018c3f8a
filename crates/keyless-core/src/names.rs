//! Name rules of ARM resources, checked before anything is stored. Every rule also
//! rules out path traversal (`/`, `..`, `%`) because only safe characters pass.

use crate::error::ManagementError;

fn ascii_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Resource group names: 1–90 chars of letters, digits, `-_.()`, not ending in `.`.
pub fn check_resource_group_name(name: &str) -> Result<(), ManagementError> {
    let ok = !name.is_empty()
        && name.len() <= 90
        && name.chars().all(|c| ascii_alnum(c) || "-_.()".contains(c))
        && !name.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(ManagementError::bad_request(
            "InvalidResourceGroupName",
            format!(
                "Resource group name '{}' is invalid: use 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending in '.'.",
                printable(name)
            ),
        ))
    }
}

/// Identity names: 3–128 chars of letters, digits, `-` and `_`, starting with a letter
/// or digit.
pub fn check_identity_name(name: &str) -> Result<(), ManagementError> {
    let ok = (3..=128).contains(&name.len())
        && name.chars().next().is_some_and(ascii_alnum)
        && name.chars().all(|c| ascii_alnum(c) || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ManagementError::bad_request(
            "InvalidResourceName",
            format!(
                "Identity name '{}' is invalid: use 3-128 letters, digits, '-' or '_', starting with a letter or digit.",
                printable(name)
            ),
        ))
    }
}

/// Federated credential names: `^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$`.
pub fn check_federated_credential_name(name: &str) -> Result<(), ManagementError> {
    let ok = (3..=120).contains(&name.len())
        && name.chars().next().is_some_and(ascii_alnum)
        && name.chars().all(|c| ascii_alnum(c) || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ManagementError::bad_request(
            "BadRequest",
            format!(
                "Federated identity credential name '{}' is invalid: it must match ^[a-zA-Z0-9][a-zA-Z0-9-_]{{2,119}}$ (3-120 characters, starting with a letter or digit).",
                printable(name)
            ),
        ))
    }
}

/// Parses a GUID in its canonical 8-4-4-4-12 form and returns it lowercased.
pub fn parse_guid(s: &str) -> Option<String> {
    let ok = s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then(|| s.to_ascii_lowercase())
}

/// Whether `s` holds a control character (NUL included). Such text is refused in every
/// stored field: it cannot be stored by every backend (PostgreSQL text has no NUL) and
/// it only ever serves to confuse logs and comparisons.
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A name made safe to echo in an error message: control characters are escaped and
/// the length is capped, so a hostile name cannot forge log lines or flood a reply.
pub fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(130).flat_map(char::escape_default).collect();
    if s.chars().count() > 130 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_group_names() {
        assert!(check_resource_group_name("rg-1_(a).b").is_ok());
        assert!(check_resource_group_name("").is_err());
        assert!(check_resource_group_name("ends.").is_err());
        assert!(check_resource_group_name("../etc").is_err());
        assert!(check_resource_group_name(&"a".repeat(91)).is_err());
        assert!(check_resource_group_name(&"a".repeat(90)).is_ok());
    }

    #[test]
    fn identity_names() {
        assert!(check_identity_name("id1").is_ok());
        assert!(check_identity_name("ab").is_err());
        assert!(check_identity_name("-abc").is_err());
        assert!(check_identity_name("a.bc").is_err());
        assert!(check_identity_name(&"a".repeat(129)).is_err());
    }

    #[test]
    fn credential_names() {
        assert!(check_federated_credential_name("kubernetes-federated-credential").is_ok());
        assert!(check_federated_credential_name("ab").is_err());
        assert!(check_federated_credential_name("_ab").is_err());
        assert!(check_federated_credential_name(&"a".repeat(120)).is_ok());
        assert!(check_federated_credential_name(&"a".repeat(121)).is_err());
    }

    #[test]
    fn guids() {
        assert_eq!(
            parse_guid("4633458B-17de-408a-b874-0445c86b69e6").as_deref(),
            Some("4633458b-17de-408a-b874-0445c86b69e6")
        );
        assert!(parse_guid("4633458b17de408ab8740445c86b69e6").is_none());
        assert!(parse_guid("4633458b-17de-408a-b874-0445c86b69eg").is_none());
    }
}
