//! Pure helpers for roles: telling a role name from an id, finding a definition by
//! name, and picking assignments out of a list. Kept free of IO so they are unit-tested.

use anyhow::{Result, bail};
use serde_json::Value;
use uuid::Uuid;

/// Path suffix of role definitions under a scope.
pub const ROLE_DEFINITIONS: &str = "/providers/Microsoft.Authorization/roleDefinitions";
/// Path suffix of role assignments under a scope.
pub const ROLE_ASSIGNMENTS: &str = "/providers/Microsoft.Authorization/roleAssignments";

/// What the user passed to `--role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRef {
    /// A full role definition id, used as is.
    Id(String),
    /// A role definition GUID.
    Guid(Uuid),
    /// A role name such as `Key Vault Secrets User`, resolved against the scope.
    Name(String),
}

impl RoleRef {
    /// Classifies `--role`: a GUID, a full `.../roleDefinitions/{guid}` id, or a name.
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        if let Ok(guid) = Uuid::parse_str(raw) {
            return Self::Guid(guid);
        }
        if raw.starts_with('/') && contains_ignore_case(raw, ROLE_DEFINITIONS) {
            return Self::Id(raw.trim_end_matches('/').to_owned());
        }
        Self::Name(raw.to_owned())
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

/// `/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}`: the form
/// ARM expects in an assignment's `roleDefinitionId`.
pub fn role_definition_id(subscription: &str, guid: &str) -> String {
    format!("/subscriptions/{subscription}{ROLE_DEFINITIONS}/{guid}")
}

/// The GUID at the end of a role definition id.
pub fn guid_of_id(id: &str) -> Option<&str> {
    id.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
}

/// A definition's GUID: its `name`, else the end of its `id`.
pub fn definition_guid(definition: &Value) -> Option<&str> {
    definition.get("name").and_then(Value::as_str).or_else(|| {
        definition
            .get("id")
            .and_then(Value::as_str)
            .and_then(guid_of_id)
    })
}

/// A definition's display name (`properties.roleName`).
pub fn definition_role_name(definition: &Value) -> Option<&str> {
    definition
        .get("properties")
        .and_then(|p| p.get("roleName"))
        .and_then(Value::as_str)
}

/// Whether a definition is the one `wanted` names: by role name (case-insensitive, as
/// ARM compares them) or by GUID.
pub fn definition_matches(definition: &Value, wanted: &str) -> bool {
    let wanted = wanted.trim();
    definition_role_name(definition).is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        || definition_guid(definition).is_some_and(|g| g.eq_ignore_ascii_case(wanted))
}

/// Finds the one definition named `wanted`; the error lists what exists, so a typo is
/// easy to fix.
pub fn find_definition<'a>(definitions: &'a [Value], wanted: &str) -> Result<&'a Value> {
    let matches: Vec<&Value> = definitions
        .iter()
        .filter(|d| definition_matches(d, wanted))
        .collect();
    // The same role can be listed once per scope it is assignable at; one GUID is one role.
    let mut guids: Vec<String> = matches
        .iter()
        .filter_map(|d| definition_guid(d))
        .map(str::to_ascii_lowercase)
        .collect();
    guids.sort();
    guids.dedup();
    match (matches.first(), guids.len()) {
        (Some(first), 0 | 1) => Ok(first),
        (Some(_), _) => bail!(
            "more than one role is named '{wanted}' ({}); pass the role's id instead",
            guids.join(", ")
        ),
        (None, _) => {
            let mut names: Vec<&str> = definitions
                .iter()
                .filter_map(definition_role_name)
                .collect();
            names.sort_unstable();
            bail!(
                "there is no role named '{wanted}' at this scope; roles are: {}",
                if names.is_empty() {
                    "(none)".to_owned()
                } else {
                    names.join(", ")
                }
            )
        }
    }
}

/// An assignment's principal id.
pub fn assignment_principal(assignment: &Value) -> Option<&str> {
    assignment
        .get("properties")
        .and_then(|p| p.get("principalId"))
        .and_then(Value::as_str)
}

/// The GUID of the role an assignment grants.
pub fn assignment_role_guid(assignment: &Value) -> Option<&str> {
    assignment
        .get("properties")
        .and_then(|p| p.get("roleDefinitionId"))
        .and_then(Value::as_str)
        .and_then(guid_of_id)
}

/// The scope an assignment was made at: `properties.scope`, else the part of its id
/// before `/providers/Microsoft.Authorization/roleAssignments/`.
pub fn assignment_scope(assignment: &Value) -> Option<String> {
    if let Some(scope) = assignment
        .get("properties")
        .and_then(|p| p.get("scope"))
        .and_then(Value::as_str)
    {
        return Some(scope.trim_end_matches('/').to_owned());
    }
    let id = assignment.get("id").and_then(Value::as_str)?;
    let at = id
        .to_ascii_lowercase()
        .find(&ROLE_ASSIGNMENTS.to_ascii_lowercase())?;
    id.get(..at).map(str::to_owned)
}

/// Which assignments a list or delete selects.
#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter<'a> {
    /// Only this principal (object id).
    pub principal: Option<&'a str>,
    /// Only this role (definition GUID).
    pub role_guid: Option<&'a str>,
    /// Only assignments made exactly at this scope (not inherited ones).
    pub exact_scope: Option<&'a str>,
}

impl AssignmentFilter<'_> {
    /// Whether an assignment passes every condition set; ids and scopes compare
    /// case-insensitively, as ARM does.
    pub fn accepts(&self, assignment: &Value) -> bool {
        let same = |want: Option<&str>, have: Option<&str>| match want {
            None => true,
            Some(want) => have.is_some_and(|have| have.eq_ignore_ascii_case(want)),
        };
        same(self.principal, assignment_principal(assignment))
            && same(self.role_guid, assignment_role_guid(assignment))
            && same(self.exact_scope, assignment_scope(assignment).as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definitions() -> Vec<Value> {
        let def = |guid: &str, name: &str| {
            json!({
                "id": format!("/subscriptions/s{ROLE_DEFINITIONS}/{guid}"),
                "name": guid,
                "type": "Microsoft.Authorization/roleDefinitions",
                "properties": {"roleName": name, "type": "BuiltInRole", "permissions": []}
            })
        };
        vec![
            def(
                "4633458b-17de-408a-b874-0445c86b69e6",
                "Key Vault Secrets User",
            ),
            def(
                "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
                "Key Vault Secrets Officer",
            ),
            def("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader"),
        ]
    }

    #[test]
    fn role_refs_classify() {
        let guid = "4633458b-17de-408a-b874-0445c86b69e6";
        assert!(matches!(RoleRef::parse(guid), RoleRef::Guid(g) if g.to_string() == guid));
        let id = format!("/subscriptions/s{ROLE_DEFINITIONS}/{guid}");
        assert_eq!(RoleRef::parse(&id), RoleRef::Id(id.clone()));
        assert_eq!(
            RoleRef::parse("/subscriptions/s/providers/microsoft.authorization/roledefinitions/x/"),
            RoleRef::Id(
                "/subscriptions/s/providers/microsoft.authorization/roledefinitions/x".into()
            )
        );
        assert_eq!(RoleRef::parse(" Reader "), RoleRef::Name("Reader".into()));
    }

    #[test]
    fn names_resolve_case_insensitively() {
        let defs = definitions();
        let found = find_definition(&defs, "key vault secrets user").ok();
        assert_eq!(
            found.and_then(definition_guid),
            Some("4633458b-17de-408a-b874-0445c86b69e6")
        );
        let by_guid = find_definition(&defs, "B86A8FE4-44CE-4948-AEE5-ECCB2C155CD7").ok();
        assert_eq!(
            by_guid.and_then(definition_role_name),
            Some("Key Vault Secrets Officer")
        );
    }

    #[test]
    fn an_unknown_name_lists_the_roles() {
        let defs = definitions();
        let Err(e) = find_definition(&defs, "Key Vault Secret User") else {
            unreachable!("should fail")
        };
        let msg = e.to_string();
        assert!(
            msg.contains("no role named 'Key Vault Secret User'"),
            "{msg}"
        );
        assert!(
            msg.ends_with("roles are: Key Vault Secrets Officer, Key Vault Secrets User, Reader"),
            "{msg}"
        );
        let Err(e) = find_definition(&[], "Reader") else {
            unreachable!("should fail")
        };
        assert!(e.to_string().contains("(none)"));
    }

    #[test]
    fn duplicate_names_need_an_id_but_the_same_role_twice_is_fine() {
        let mut defs = definitions();
        defs.push(json!({"name": "11111111-0000-0000-0000-000000000000", "properties": {"roleName": "reader"}}));
        let Err(e) = find_definition(&defs, "Reader") else {
            unreachable!("should fail")
        };
        assert!(e.to_string().contains("more than one"), "{e}");

        let mut defs = definitions();
        defs.push(json!({"id": format!("/subscriptions/s/resourceGroups/rg{ROLE_DEFINITIONS}/ACDD72A7-3385-48EF-BD42-F606FBA81AE7"), "properties": {"roleName": "Reader"}}));
        assert!(find_definition(&defs, "Reader").is_ok());
    }

    #[test]
    fn definition_ids_are_subscription_level() {
        assert_eq!(
            role_definition_id("s", "g"),
            "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/g"
        );
        assert_eq!(guid_of_id("/a/b/g/"), Some("g"));
        assert_eq!(guid_of_id(""), None);
    }

    fn assignment(principal: &str, role: &str, scope: Option<&str>, id_scope: &str) -> Value {
        let mut properties = json!({
            "principalId": principal,
            "principalType": "ServicePrincipal",
            "roleDefinitionId": format!("/subscriptions/s{ROLE_DEFINITIONS}/{role}"),
        });
        if let (Some(scope), Some(map)) = (scope, properties.as_object_mut()) {
            map.insert("scope".into(), json!(scope));
        }
        json!({
            "id": format!("{id_scope}{ROLE_ASSIGNMENTS}/a1"),
            "name": "a1",
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": properties,
        })
    }

    #[test]
    fn assignment_scope_falls_back_to_the_id() {
        let a = assignment("p", "r", None, "/subscriptions/s/resourceGroups/rg");
        assert_eq!(
            assignment_scope(&a).as_deref(),
            Some("/subscriptions/s/resourceGroups/rg")
        );
        let b = assignment("p", "r", Some("/subscriptions/s/"), "/ignored");
        assert_eq!(assignment_scope(&b).as_deref(), Some("/subscriptions/s"));
    }

    #[test]
    fn filters_combine() {
        let at_sub = assignment("P1", "R1", Some("/subscriptions/s"), "/subscriptions/s");
        let at_rg = assignment("p1", "r2", Some("/subscriptions/s/resourceGroups/rg"), "");
        let other = assignment("p2", "r1", Some("/subscriptions/s"), "");

        let everything = AssignmentFilter::default();
        assert!(everything.accepts(&at_sub) && everything.accepts(&other));

        let by_principal = AssignmentFilter {
            principal: Some("p1"),
            ..Default::default()
        };
        assert!(by_principal.accepts(&at_sub) && by_principal.accepts(&at_rg));
        assert!(!by_principal.accepts(&other));

        let by_role = AssignmentFilter {
            principal: Some("p1"),
            role_guid: Some("r1"),
            ..Default::default()
        };
        assert!(by_role.accepts(&at_sub) && !by_role.accepts(&at_rg));

        let exact = AssignmentFilter {
            principal: Some("p1"),
            exact_scope: Some("/Subscriptions/S/resourcegroups/RG"),
            ..Default::default()
        };
        assert!(exact.accepts(&at_rg) && !exact.accepts(&at_sub));
    }
}
