//! One wildcard matcher for both role actions (`*`, case-insensitive) and
//! claims-matching expressions (`*` and `?`, case-sensitive). Backtracks only to the
//! last `*`, so hostile patterns cannot make it exponential.

/// How a pattern is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GlobRules {
    /// `?` matches exactly one byte (else it is a literal).
    pub single: bool,
    /// ASCII letters compare case-insensitively.
    pub ignore_case: bool,
}

/// Whether `pattern` matches `text` entirely.
pub(crate) fn glob_matches(pattern: &[u8], text: &[u8], rules: GlobRules) -> bool {
    let same = |a: u8, b: u8| {
        if rules.ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        match (pattern.get(pi), text.get(ti)) {
            (Some(b'*'), _) => {
                star = Some((pi, ti));
                pi += 1;
            }
            (Some(b'?'), Some(_)) if rules.single => {
                pi += 1;
                ti += 1;
            }
            (Some(&p), Some(&t)) if same(p, t) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}
