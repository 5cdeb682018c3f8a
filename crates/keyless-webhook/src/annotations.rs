//! Parsing and validation of the `azure.workload.identity/*` annotations.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Rejection, Source};
use crate::keys::{
    DEFAULT_TOKEN_EXPIRATION, MAX_TOKEN_EXPIRATION, MIN_TOKEN_EXPIRATION,
    SKIP_CONTAINERS_ANNOTATION, TOKEN_EXPIRATION_ANNOTATION,
};

/// The projected token's `expirationSeconds`: the pod's annotation when present and not
/// empty, else the ServiceAccount's when present and not empty, else 3600.
///
/// Values are plain decimal integers of seconds (no sign, no unit, no spaces) from
/// 3600 to 86400; anything else is refused with the value and the range in the message.
///
/// ```
/// use std::collections::BTreeMap;
/// use keyless_webhook::annotations::token_expiration;
/// let key = keyless_webhook::keys::TOKEN_EXPIRATION_ANNOTATION.to_owned();
/// let pod = BTreeMap::from([(key.clone(), "4000".to_owned())]);
/// let sa = BTreeMap::from([(key, "5000".to_owned())]);
/// assert_eq!(token_expiration(&pod, &sa), Ok(4000));
/// assert_eq!(token_expiration(&BTreeMap::new(), &sa), Ok(5000));
/// assert_eq!(token_expiration(&BTreeMap::new(), &BTreeMap::new()), Ok(3600));
/// ```
pub fn token_expiration(
    pod: &BTreeMap<String, String>,
    service_account: &BTreeMap<String, String>,
) -> Result<u64, Rejection> {
    let found = [
        (Source::Pod, pod.get(TOKEN_EXPIRATION_ANNOTATION)),
        (
            Source::ServiceAccount,
            service_account.get(TOKEN_EXPIRATION_ANNOTATION),
        ),
    ]
    .into_iter()
    .find_map(|(source, v)| v.filter(|v| !v.is_empty()).map(|v| (source, v)));
    let Some((source, value)) = found else {
        return Ok(DEFAULT_TOKEN_EXPIRATION);
    };
    let invalid = || Rejection::InvalidExpiration {
        key: TOKEN_EXPIRATION_ANNOTATION,
        origin: source,
        value: clip(value),
        min: MIN_TOKEN_EXPIRATION,
        max: MAX_TOKEN_EXPIRATION,
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // Overflow (a huge number) is out of range like any other too-large value.
    let seconds: u64 = value.parse().map_err(|_| invalid())?;
    if (MIN_TOKEN_EXPIRATION..=MAX_TOKEN_EXPIRATION).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(invalid())
    }
}

/// The container names in `azure.workload.identity/skip-containers`: split on `;`, each
/// trimmed, empty entries dropped.
///
/// ```
/// use std::collections::BTreeMap;
/// use keyless_webhook::annotations::skip_containers;
/// let pod = BTreeMap::from([(
///     keyless_webhook::keys::SKIP_CONTAINERS_ANNOTATION.to_owned(),
///     " a; b ;;".to_owned(),
/// )]);
/// assert_eq!(skip_containers(&pod).into_iter().collect::<Vec<_>>(), ["a", "b"]);
/// ```
pub fn skip_containers(pod: &BTreeMap<String, String>) -> BTreeSet<String> {
    pod.get(SKIP_CONTAINERS_ANNOTATION)
        .map(|v| {
            v.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// At most 64 characters of a user-supplied value, for messages.
fn clip(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(v: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(TOKEN_EXPIRATION_ANNOTATION.to_owned(), v.to_owned())])
    }

    #[test]
    fn expiration_precedence_and_defaults() {
        let none = BTreeMap::new();
        assert_eq!(token_expiration(&none, &none), Ok(3600));
        assert_eq!(token_expiration(&ann("86400"), &ann("4000")), Ok(86400));
        assert_eq!(token_expiration(&none, &ann("4800")), Ok(4800));
        // An empty pod annotation falls back to the ServiceAccount's.
        assert_eq!(token_expiration(&ann(""), &ann("7200")), Ok(7200));
        assert_eq!(token_expiration(&ann(""), &ann("")), Ok(3600));
    }

    #[test]
    fn expiration_refusals_name_value_source_and_range() {
        let none = BTreeMap::new();
        for bad in [
            "3599",
            "86401",
            "0",
            "-3600",
            "+3600",
            "1h",
            " 3600",
            "3600.0",
            "abc",
            "99999999999999999999999",
        ] {
            let err = token_expiration(&ann(bad), &none).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
            assert!(msg.contains("between 3600 and 86400"), "{msg}");
            assert!(msg.contains("on the pod"), "{msg}");
            assert_eq!(err.code(), 400);
        }
        let err = token_expiration(&none, &ann("100")).unwrap_err();
        assert!(err.to_string().contains("on the service account"), "{err}");
        // The pod's valid value wins over a bad ServiceAccount value.
        assert_eq!(token_expiration(&ann("3600"), &ann("bad")), Ok(3600));
    }

    #[test]
    fn long_values_are_clipped_in_messages() {
        let long = "9".repeat(500);
        let msg = token_expiration(&ann(&long), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(msg.len() < 300, "{msg}");
    }

    #[test]
    fn skip_list_is_split_and_trimmed() {
        let pod = BTreeMap::from([(
            SKIP_CONTAINERS_ANNOTATION.to_owned(),
            "sidecar ;  istio-proxy;;".to_owned(),
        )]);
        let skip = skip_containers(&pod);
        assert_eq!(skip.len(), 2);
        assert!(skip.contains("sidecar") && skip.contains("istio-proxy"));
        assert!(skip_containers(&BTreeMap::new()).is_empty());
    }
}
