//! Federated credential presets for the CI issuers users federate most after
//! Kubernetes: GitHub Actions and GitLab CI. A preset builds the issuer, the subject (or
//! a claims-matching expression) and the audience the way each issuer writes its
//! tokens, so a user names a repository and a branch instead of a subject format.
//!
//! Names are not identities: a repository that is renamed, deleted or transferred
//! frees its name, and whoever takes the name next gets tokens with the same
//! name-based subject. Both issuers also put immutable numeric ids in their tokens
//! (GitHub: `repository_id`, `repository_owner_id`; GitLab: `project_id`,
//! `namespace_id`). Given those ids, a preset pins them with a claims-matching
//! expression; without them it says what it could not pin.

use anyhow::{Result, bail};

/// GitHub's issuer on github.com (GHES: `https://HOST/_services/token`; an enterprise
/// with a customised issuer: `https://token.actions.githubusercontent.com/SLUG`).
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// GitLab.com's issuer (self-managed: the instance's URL).
pub const GITLAB_ISSUER: &str = "https://gitlab.com";

/// Which runs of the repository may sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Jobs on a branch.
    Branch(String),
    /// Jobs on a tag.
    Tag(String),
    /// Jobs that deploy to an environment (GitHub).
    Environment(String),
    /// Jobs of `pull_request` events (GitHub).
    PullRequest,
}

/// What a preset puts in the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// The issuer URL.
    pub issuer: String,
    /// Exact subject, when nothing else is pinned.
    pub subject: Option<String>,
    /// Expression pinning the immutable ids (and the run's context).
    pub expression: Option<String>,
    /// A note for the user (what was not pinned).
    pub warning: Option<String>,
}

/// Characters that would change the meaning of a subject or an expression.
fn check_part(what: &str, value: &str, allow_slash: bool) -> Result<()> {
    let bad = value.is_empty()
        || value.len() > 255
        || value.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(c, ':' | '*' | '?' | '\'' | '\\')
                || (!allow_slash && c == '/')
        });
    if bad {
        bail!(
            "{what} {value:?} cannot be used in a preset: it must be 1-255 characters without spaces, ':', '*', '?', quotes or backslashes"
        );
    }
    Ok(())
}

/// `ORG/REPO` (GitHub) or `GROUP[/SUBGROUP...]/PROJECT` (GitLab).
fn check_path(what: &str, path: &str, nested: bool) -> Result<()> {
    let parts: Vec<&str> = path.split('/').collect();
    let ok = if nested {
        parts.len() >= 2
    } else {
        parts.len() == 2
    };
    if !ok || parts.iter().any(|p| p.is_empty()) {
        bail!(
            "{what} must be {}, not {path:?}",
            if nested {
                "GROUP/PROJECT (subgroups allowed)"
            } else {
                "OWNER/REPO"
            }
        );
    }
    check_part(what, path, true)
}

fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{what} must be a number (the id the issuer puts in its tokens), not {id:?}");
    }
    Ok(())
}

/// GitHub Actions. `ids` = (repository_id, repository_owner_id).
pub fn github(
    repo: &str,
    trigger: &Trigger,
    ids: Option<(&str, &str)>,
    issuer: Option<&str>,
) -> Result<Preset> {
    check_path("--github-repo", repo, false)?;
    let context = match trigger {
        Trigger::Branch(b) => {
            check_part("--branch", b, true)?;
            format!("ref:refs/heads/{b}")
        }
        Trigger::Tag(t) => {
            check_part("--tag", t, true)?;
            format!("ref:refs/tags/{t}")
        }
        Trigger::Environment(e) => {
            check_part("--environment", e, true)?;
            format!("environment:{e}")
        }
        Trigger::PullRequest => "pull_request".to_string(),
    };
    let issuer = issuer
        .unwrap_or(GITHUB_ISSUER)
        .trim_end_matches('/')
        .to_string();
    Ok(match ids {
        Some((repo_id, owner_id)) => {
            check_id("--github-repo-id", repo_id)?;
            check_id("--github-owner-id", owner_id)?;
            // The subject is `repo:OWNER/REPO:CONTEXT`, or in GitHub's immutable form
            // `repo:OWNER@OWNER_ID/REPO@REPO_ID:CONTEXT` (new and renamed repositories
            // since July 2026). The ids pin the repository either way; the glob keeps
            // the context exact and accepts both forms.
            Preset {
                issuer,
                subject: None,
                expression: Some(format!(
                    "claims['sub'] matches 'repo:*:{context}' and claims['repository_id'] eq '{repo_id}' and claims['repository_owner_id'] eq '{owner_id}'"
                )),
                warning: None,
            }
        }
        None => Preset {
            issuer,
            subject: Some(format!("repo:{repo}:{context}")),
            expression: None,
            warning: Some(format!(
                "the credential trusts the repository by name: if {repo} is renamed, deleted or transferred, whoever takes the name next gets its tokens, and a repository on GitHub's immutable subject claims (repo:OWNER@ID/REPO@ID:...) will not match. Give --github-repo-id and --github-owner-id (gh api repos/{repo} --jq '.id, .owner.id') to pin the ids instead"
            )),
        },
    })
}

/// GitLab CI. `ids` = (project_id, namespace_id).
pub fn gitlab(
    project: &str,
    trigger: &Trigger,
    ids: Option<(&str, &str)>,
    issuer: Option<&str>,
) -> Result<Preset> {
    check_path("--gitlab-project", project, true)?;
    let (ref_type, name) = match trigger {
        Trigger::Branch(b) => ("branch", b),
        Trigger::Tag(t) => ("tag", t),
        Trigger::Environment(_) | Trigger::PullRequest => bail!(
            "GitLab subjects name a branch or a tag: use --branch or --tag with --gitlab-project"
        ),
    };
    check_part(
        if ref_type == "branch" {
            "--branch"
        } else {
            "--tag"
        },
        name,
        true,
    )?;
    let subject = format!("project_path:{project}:ref_type:{ref_type}:ref:{name}");
    let issuer = issuer
        .unwrap_or(GITLAB_ISSUER)
        .trim_end_matches('/')
        .to_string();
    Ok(match ids {
        Some((project_id, namespace_id)) => {
            check_id("--gitlab-project-id", project_id)?;
            check_id("--gitlab-namespace-id", namespace_id)?;
            Preset {
                issuer,
                subject: None,
                expression: Some(format!(
                    "claims['sub'] eq '{subject}' and claims['project_id'] eq '{project_id}' and claims['namespace_id'] eq '{namespace_id}'"
                )),
                warning: None,
            }
        }
        None => Preset {
            issuer,
            subject: Some(subject),
            expression: None,
            warning: Some(format!(
                "the credential trusts the project by path: if {project} is renamed, deleted or transferred, whoever takes the path next gets its tokens. Give --gitlab-project-id and --gitlab-namespace-id (the project's and its group's numeric ids) to pin them"
            )),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(expression: &str, claims: serde_json::Value) -> bool {
        let e = keyless_core::expression::Expression::parse(expression).unwrap();
        e.first_failure(claims.as_object().unwrap()).is_none()
    }

    #[test]
    fn github_subjects_by_trigger() {
        let sub = |t: Trigger| github("org/app", &t, None, None).unwrap().subject.unwrap();
        assert_eq!(
            sub(Trigger::Branch("main".into())),
            "repo:org/app:ref:refs/heads/main"
        );
        assert_eq!(
            sub(Trigger::Tag("v1.2".into())),
            "repo:org/app:ref:refs/tags/v1.2"
        );
        assert_eq!(
            sub(Trigger::Environment("prod".into())),
            "repo:org/app:environment:prod"
        );
        assert_eq!(sub(Trigger::PullRequest), "repo:org/app:pull_request");
        let p = github("org/app", &Trigger::PullRequest, None, None).unwrap();
        assert_eq!(p.issuer, GITHUB_ISSUER);
        assert!(p.warning.unwrap().contains("--github-repo-id"));
    }

    #[test]
    fn github_ids_pin_the_repository_in_both_subject_forms() {
        let p = github(
            "org/app",
            &Trigger::Branch("main".into()),
            Some(("42", "7")),
            None,
        )
        .unwrap();
        assert!(p.subject.is_none() && p.warning.is_none());
        let e = p.expression.unwrap();
        let ok = |sub: &str, repo_id: &str| {
            holds(
                &e,
                json!({"sub": sub, "repository_id": repo_id, "repository_owner_id": "7"}),
            )
        };
        assert!(ok("repo:org/app:ref:refs/heads/main", "42"));
        assert!(ok("repo:org@7/app@42:ref:refs/heads/main", "42"));
        // The same name, recreated: another id.
        assert!(!ok("repo:org/app:ref:refs/heads/main", "43"));
        // Another branch, an environment job.
        assert!(!ok("repo:org/app:ref:refs/heads/dev", "42"));
        assert!(!ok("repo:org/app:environment:prod", "42"));
    }

    #[test]
    fn gitlab_subjects_and_ids() {
        let p = gitlab(
            "grp/sub/proj",
            &Trigger::Tag("v1".into()),
            None,
            Some("https://gitlab.example/"),
        )
        .unwrap();
        assert_eq!(
            p.subject.unwrap(),
            "project_path:grp/sub/proj:ref_type:tag:ref:v1"
        );
        assert_eq!(p.issuer, "https://gitlab.example");
        let p = gitlab(
            "grp/proj",
            &Trigger::Branch("main".into()),
            Some(("100", "9")),
            None,
        )
        .unwrap();
        let e = p.expression.unwrap();
        let sub = "project_path:grp/proj:ref_type:branch:ref:main";
        assert!(holds(
            &e,
            json!({"sub": sub, "project_id": "100", "namespace_id": "9"})
        ));
        assert!(!holds(
            &e,
            json!({"sub": sub, "project_id": "101", "namespace_id": "9"})
        ));
        assert!(gitlab("grp/proj", &Trigger::PullRequest, None, None).is_err());
    }

    #[test]
    fn values_that_would_change_the_match_are_refused() {
        for (repo, branch) in [
            ("org", "main"),
            ("org/app/x", "main"),
            ("org/app", "ma*in"),
            ("org/app", "a'b"),
            ("org/app", "a:b"),
            ("org/app", ""),
            ("org/app", "a b"),
        ] {
            assert!(
                github(repo, &Trigger::Branch(branch.into()), None, None).is_err(),
                "{repo} {branch}"
            );
        }
        assert!(github("org/app", &Trigger::PullRequest, Some(("4x", "7")), None).is_err());
    }
}
