//! The canonical form of a role-assignment scope, and the one way scopes are compared.
//!
//! It lives here, below the domain, because both sides of the contract depend on it:
//! the domain writes [`RoleAssignmentRecord::scope`](crate::RoleAssignmentRecord) in
//! this form and compares scopes with [`contains`], and a backend deleting a resource
//! removes the assignments at or below the resource's scope with the same [`contains`]
//! (see `docs/design/scopes.md`).
//!
//! **Canonical form.** `/` for the tenant root; otherwise `/` followed by the scope's
//! segments joined with `/`: no empty segment, no trailing slash, no `/` inside a
//! segment, and the ARM keywords at their places spelled `subscriptions`,
//! `resourceGroups` and `providers` (the subscription id in lowercase). Every other
//! segment keeps the caller's casing; comparisons ignore ASCII case, as ARM names do.

/// The tenant root scope.
pub const ROOT: &str = "/";

/// Why a list of segments is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A segment holds a `/` (an encoded `%2F` decoded inside one path segment). Such a
    /// segment would read as two segments once joined, so it is refused rather than
    /// guessed at.
    #[error("the scope segment '{0}' contains '/'")]
    SlashInSegment(String),
}

/// The non-empty segments of a scope string.
pub fn segments(scope: &str) -> impl Iterator<Item = &str> {
    scope.split('/').filter(|s| !s.is_empty())
}

/// The canonical scope made of `segments` (already percent-decoded). Empty segments are
/// skipped (so `//` and a trailing slash collapse); a segment containing `/` is refused.
///
/// ```
/// use keyless_store::scope::canonical;
/// let s = canonical("/SUBSCRIPTIONS/AB/RESOURCEGROUPS/Rg1/".split('/')).unwrap();
/// assert_eq!(s, "/subscriptions/ab/resourceGroups/Rg1");
/// assert!(canonical(["subscriptions", "ab", "/", "resourceGroups", "rg"]).is_err());
/// ```
pub fn canonical<'a>(segments: impl IntoIterator<Item = &'a str>) -> Result<String, ScopeError> {
    let mut out: Vec<String> = Vec::new();
    for seg in segments.into_iter().filter(|s| !s.is_empty()) {
        if seg.contains('/') {
            return Err(ScopeError::SlashInSegment(seg.to_string()));
        }
        let keyword = keyword_at(&out, seg);
        out.push(keyword.map_or_else(|| seg.to_string(), str::to_string));
    }
    // The subscription id is a GUID: one spelling, so ids from any client agree.
    if let [first, id, ..] = out.as_mut_slice()
        && first == "subscriptions"
    {
        id.make_ascii_lowercase();
    }
    Ok(format!("/{}", out.join("/")))
}

/// The canonical spelling of `seg` if it is an ARM keyword in the place it appears
/// (after the canonical segments `before`); `None` for a name.
fn keyword_at(before: &[String], seg: &str) -> Option<&'static str> {
    let is = |k: &str| seg.eq_ignore_ascii_case(k);
    let at = |i: usize, k: &str| before.get(i).is_some_and(|s| s == k);
    match before.len() {
        0 if is("subscriptions") => Some("subscriptions"),
        0 if is("providers") => Some("providers"),
        2 if at(0, "subscriptions") && is("resourceGroups") => Some("resourceGroups"),
        2 if at(0, "subscriptions") && is("providers") => Some("providers"),
        4 if at(2, "resourceGroups") && is("providers") => Some("providers"),
        _ => None,
    }
}

/// Whether `ancestor` is `target` or one of its parents (`/` contains everything),
/// segment by segment and ignoring ASCII case: `.../rg1` does not contain `.../rg10`.
pub fn contains(ancestor: &str, target: &str) -> bool {
    let mut t = segments(target);
    segments(ancestor).all(|a| t.next().is_some_and(|seg| seg.eq_ignore_ascii_case(a)))
}

/// Whether two scopes name the same thing (by segment, ignoring ASCII case).
pub fn same(a: &str, b: &str) -> bool {
    segments(a).count() == segments(b).count() && contains(a, b)
}

/// `/subscriptions/{sub}`.
pub fn subscription(sub: &str) -> String {
    format!("/subscriptions/{}", sub.to_ascii_lowercase())
}

/// `/subscriptions/{sub}/resourceGroups/{group}`.
pub fn resource_group(sub: &str, group: &str) -> String {
    format!("{}/resourceGroups/{group}", subscription(sub))
}

/// `/subscriptions/{sub}/resourceGroups/{group}/providers/{namespace}/{kind}/{name}`,
/// e.g. a vault (`Microsoft.KeyVault`, `vaults`) or a user-assigned identity
/// (`Microsoft.ManagedIdentity`, `userAssignedIdentities`).
pub fn resource(sub: &str, group: &str, namespace: &str, kind: &str, name: &str) -> String {
    format!(
        "{}/providers/{namespace}/{kind}/{name}",
        resource_group(sub, group)
    )
}

/// The scope of a Key Vault vault.
pub fn vault(sub: &str, group: &str, name: &str) -> String {
    resource(sub, group, "Microsoft.KeyVault", "vaults", name)
}

/// The scope of a user-assigned managed identity.
pub fn identity(sub: &str, group: &str, name: &str) -> String {
    resource(
        sub,
        group,
        "Microsoft.ManagedIdentity",
        "userAssignedIdentities",
        name,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const S: &str = "/subscriptions/22222222-2222-2222-2222-222222222222";

    fn canon(s: &str) -> String {
        canonical(s.split('/')).unwrap()
    }

    #[test]
    fn empty_segments_and_trailing_slashes_collapse() {
        assert_eq!(canon(""), "/");
        assert_eq!(canon("///"), "/");
        assert_eq!(
            canon(&format!("{S}///resourceGroups//rg2/")),
            format!("{S}/resourceGroups/rg2")
        );
    }

    #[test]
    fn keywords_get_one_casing_names_keep_theirs() {
        assert_eq!(
            canon(
                "/SUBSCRIPTIONS/22222222-2222-2222-2222-22222222222A/RESOURCEGROUPS/RG/PROVIDERS/Microsoft.KeyVault/vaults/V"
            ),
            "/subscriptions/22222222-2222-2222-2222-22222222222a/resourceGroups/RG/providers/Microsoft.KeyVault/vaults/V"
        );
        assert_eq!(canon("/Providers/X/y/z"), "/providers/X/y/z");
        // A group called "Providers" is a name, not a keyword.
        assert_eq!(
            canon(&format!("{S}/resourcegroups/Providers")),
            format!("{S}/resourceGroups/Providers")
        );
        let c = canon(&format!("{S}/resourceGroups/rg"));
        assert_eq!(canon(&c), c, "canonical is a fixed point");
    }

    #[test]
    fn a_slash_inside_a_segment_is_refused() {
        assert_eq!(
            canonical(["subscriptions", "s", "/", "resourceGroups", "rg"]),
            Err(ScopeError::SlashInSegment("/".into()))
        );
        assert!(canonical(["subscriptions", "s", "resourceGroups", "a/b"]).is_err());
    }

    #[test]
    fn containment_is_by_segment_and_ignores_case() {
        let rg1 = format!("{S}/resourceGroups/rg1");
        assert!(contains(ROOT, S));
        assert!(contains(S, &rg1));
        assert!(contains(
            &rg1.to_uppercase(),
            &format!("{rg1}/providers/X/y/z")
        ));
        assert!(!contains(&rg1, &format!("{S}/resourceGroups/rg10")));
        assert!(!contains(&rg1, S));
        assert!(same(&format!("{rg1}/"), &rg1.to_uppercase()));
        assert!(!same(&rg1, S));
    }

    #[test]
    fn builders_are_canonical() {
        let sub = "22222222-2222-2222-2222-222222222222";
        for s in [
            subscription(sub),
            resource_group(sub, "Rg"),
            vault(sub, "Rg", "v1"),
            identity(sub, "Rg", "id1"),
        ] {
            assert_eq!(canon(&s), s);
        }
    }
}
