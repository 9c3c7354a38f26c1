//! Fulcio's hard-coded CI identity types (`github-workflow`, `gitlab-pipeline`,
//! `buildkite-job`, `codefresh-workflow`) and `chainguard-identity`, as data: one
//! [`Spec`] per type says which claims are required and what every certificate field is
//! built from. Both the principal ([`Spec::principal`]) and `brevis config check`'s
//! description ([`Spec::describe`]) are derived from it, so they cannot disagree. The
//! public-good deployment routes CI providers through `ci-provider` templates now, but
//! configurations that name these types keep working.

use super::claims::Claims;
use super::{IdentityError, join_path};
use crate::config::IssuerType;
use crate::model::{Extensions, Field, Principal, SubjectAltName};
use serde_json::Value;

/// Where a URL starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Base {
    Fixed(&'static str),
    /// The token's `iss`.
    Issuer,
    /// A claim, or the default when the claim is absent or empty.
    ClaimOr(&'static str, &'static str),
}

/// One path element of a URL: a claim, literal text, or pieces concatenated.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Part {
    Claim(&'static str),
    Lit(&'static str),
    Cat(&'static [Part]),
}

/// How one certificate field is built from the claims.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// A string claim, as it is ("" when absent; listed in `required` when it must be set).
    Claim(&'static str),
    /// `base` joined with `parts` the way Go's `url.URL.JoinPath` does.
    Url(Base, &'static [Part]),
    /// `https://` + a claim that carries no scheme (GitLab's `ci_config_ref_uri`).
    Https(&'static str),
    /// `refs/heads/<name>` or `refs/tags/<name>`, by the `kind` claim (`branch`, `tag`).
    GitRef {
        name: &'static str,
        kind: &'static str,
    },
}

/// What the proof of possession is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Challenge {
    Sub,
    /// The verified `email` when the token carries one, else `sub` (what cosign signs).
    EmailElseSub,
}

/// One legacy issuer type.
#[derive(Debug)]
pub(crate) struct Spec {
    pub kind: IssuerType,
    /// Claims that must be non-empty strings.
    pub required: &'static [&'static str],
    /// Claims that must be non-zero numbers.
    pub nonzero_numbers: &'static [&'static str],
    pub challenge: Challenge,
    pub san: Source,
    /// The Sigstore extensions beyond issuer (`.1`/`.8`) and subject (`.24`), in order.
    pub extensions: &'static [(Field, Source)],
}

const GH: Base = Base::Fixed("https://github.com/");
const GL: Base = Base::Fixed("https://gitlab.com/");
const CF: Base = Base::ClaimOr("platform_url", "https://g.codefresh.io");

pub(crate) const GITHUB: Spec = Spec {
    kind: IssuerType::GithubWorkflow,
    required: &[
        "job_workflow_ref",
        "sha",
        "event_name",
        "repository",
        "workflow",
        "ref",
        "job_workflow_sha",
        "runner_environment",
        "repository_id",
        "repository_owner",
        "repository_owner_id",
        "repository_visibility",
        "workflow_ref",
        "workflow_sha",
        "run_id",
        "run_attempt",
    ],
    nonzero_numbers: &[],
    challenge: Challenge::Sub,
    san: Source::Url(GH, &[Part::Claim("job_workflow_ref")]),
    extensions: &[
        (Field::GithubWorkflowTrigger, Source::Claim("event_name")),
        (Field::GithubWorkflowSha, Source::Claim("sha")),
        (Field::GithubWorkflowName, Source::Claim("workflow")),
        (Field::GithubWorkflowRepository, Source::Claim("repository")),
        (Field::GithubWorkflowRef, Source::Claim("ref")),
        (
            Field::BuildSignerUri,
            Source::Url(GH, &[Part::Claim("job_workflow_ref")]),
        ),
        (Field::BuildSignerDigest, Source::Claim("job_workflow_sha")),
        (
            Field::RunnerEnvironment,
            Source::Claim("runner_environment"),
        ),
        (
            Field::SourceRepositoryUri,
            Source::Url(GH, &[Part::Claim("repository")]),
        ),
        (Field::SourceRepositoryDigest, Source::Claim("sha")),
        (Field::SourceRepositoryRef, Source::Claim("ref")),
        (
            Field::SourceRepositoryIdentifier,
            Source::Claim("repository_id"),
        ),
        (
            Field::SourceRepositoryOwnerUri,
            Source::Url(GH, &[Part::Claim("repository_owner")]),
        ),
        (
            Field::SourceRepositoryOwnerIdentifier,
            Source::Claim("repository_owner_id"),
        ),
        (
            Field::BuildConfigUri,
            Source::Url(GH, &[Part::Claim("workflow_ref")]),
        ),
        (Field::BuildConfigDigest, Source::Claim("workflow_sha")),
        (Field::BuildTrigger, Source::Claim("event_name")),
        (
            Field::RunInvocationUri,
            Source::Url(
                GH,
                &[
                    Part::Claim("repository"),
                    Part::Lit("actions/runs"),
                    Part::Claim("run_id"),
                    Part::Lit("attempts"),
                    Part::Claim("run_attempt"),
                ],
            ),
        ),
        (
            Field::SourceRepositoryVisibilityAtSigning,
            Source::Claim("repository_visibility"),
        ),
    ],
};

pub(crate) const GITLAB: Spec = Spec {
    kind: IssuerType::GitlabPipeline,
    required: &[
        "project_path",
        "pipeline_source",
        "pipeline_id",
        "ci_config_ref_uri",
        "job_id",
        "ref",
        "ref_type",
        "namespace_path",
        "namespace_id",
        "project_id",
        "sha",
        "runner_environment",
    ],
    nonzero_numbers: &["runner_id"],
    challenge: Challenge::Sub,
    san: Source::Https("ci_config_ref_uri"),
    extensions: &[
        (Field::BuildSignerUri, Source::Https("ci_config_ref_uri")),
        (Field::BuildSignerDigest, Source::Claim("ci_config_sha")),
        (
            Field::RunnerEnvironment,
            Source::Claim("runner_environment"),
        ),
        (
            Field::SourceRepositoryUri,
            Source::Url(GL, &[Part::Claim("project_path")]),
        ),
        (Field::SourceRepositoryDigest, Source::Claim("sha")),
        (
            Field::SourceRepositoryRef,
            Source::GitRef {
                name: "ref",
                kind: "ref_type",
            },
        ),
        (
            Field::SourceRepositoryIdentifier,
            Source::Claim("project_id"),
        ),
        (
            Field::SourceRepositoryOwnerUri,
            Source::Url(GL, &[Part::Claim("namespace_path")]),
        ),
        (
            Field::SourceRepositoryOwnerIdentifier,
            Source::Claim("namespace_id"),
        ),
        (Field::BuildConfigUri, Source::Https("ci_config_ref_uri")),
        (Field::BuildConfigDigest, Source::Claim("ci_config_sha")),
        (Field::BuildTrigger, Source::Claim("pipeline_source")),
        (
            Field::RunInvocationUri,
            Source::Url(
                GL,
                &[
                    Part::Claim("project_path"),
                    Part::Lit("/-/jobs/"),
                    Part::Claim("job_id"),
                ],
            ),
        ),
        (
            Field::SourceRepositoryVisibilityAtSigning,
            Source::Claim("project_visibility"),
        ),
    ],
};

pub(crate) const BUILDKITE: Spec = Spec {
    kind: IssuerType::BuildkiteJob,
    required: &["organization_slug", "pipeline_slug"],
    nonzero_numbers: &[],
    challenge: Challenge::Sub,
    san: Source::Url(
        Base::Fixed("https://buildkite.com"),
        &[
            Part::Claim("organization_slug"),
            Part::Claim("pipeline_slug"),
        ],
    ),
    extensions: &[],
};

/// `<platform_url>/build/<workflow_id>` (Fulcio uses it for .9, .18 and .21).
const CF_BUILD: Source = Source::Url(CF, &[Part::Lit("build"), Part::Claim("workflow_id")]);

pub(crate) const CODEFRESH: Spec = Spec {
    kind: IssuerType::CodefreshWorkflow,
    required: &["account_id", "pipeline_id", "workflow_id"],
    nonzero_numbers: &[],
    challenge: Challenge::Sub,
    san: Source::Url(
        CF,
        &[
            Part::Claim("account_name"),
            Part::Cat(&[
                Part::Claim("pipeline_name"),
                Part::Lit(":"),
                Part::Claim("account_id"),
                Part::Lit("/"),
                Part::Claim("pipeline_id"),
            ]),
        ],
    ),
    extensions: &[
        (Field::BuildSignerUri, CF_BUILD),
        (
            Field::RunnerEnvironment,
            Source::Claim("runner_environment"),
        ),
        (Field::SourceRepositoryUri, Source::Claim("scm_repo_url")),
        (Field::SourceRepositoryRef, Source::Claim("scm_ref")),
        (Field::BuildConfigUri, CF_BUILD),
        (Field::RunInvocationUri, CF_BUILD),
    ],
};

pub(crate) const CHAINGUARD: Spec = Spec {
    kind: IssuerType::ChainguardIdentity,
    required: &[],
    nonzero_numbers: &[],
    challenge: Challenge::EmailElseSub,
    san: Source::Url(Base::Issuer, &[Part::Claim("sub")]),
    extensions: &[],
};

/// Every legacy type's spec.
pub(crate) const ALL: [&Spec; 5] = [&GITHUB, &GITLAB, &BUILDKITE, &CODEFRESH, &CHAINGUARD];

/// The spec of a legacy issuer type, if it is one.
pub(crate) fn spec(kind: &IssuerType) -> Option<&'static Spec> {
    ALL.into_iter().find(|s| &s.kind == kind)
}

impl Spec {
    /// The principal for verified `claims`.
    pub(crate) fn principal(&self, claims: &Claims<'_>) -> Result<Principal, IdentityError> {
        let sub = claims.subject()?;
        for name in self.required {
            claims.required_string(name)?;
        }
        for name in self.nonzero_numbers {
            match claims.get(name) {
                Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v != 0) => {}
                _ => {
                    return Err(IdentityError::Claim(format!(
                        "missing {name} claim in ID token"
                    )));
                }
            }
        }
        let challenge = match self.challenge {
            Challenge::Sub => sub,
            Challenge::EmailElseSub => match claims.optional_string("email")? {
                Some(email) if !email.is_empty() => {
                    if !claims.email_verified()? {
                        return Err(IdentityError::Claim(
                            "email_verified claim is not true".into(),
                        ));
                    }
                    email
                }
                _ => sub,
            },
        };
        let san = self.san.render(claims)?;
        let san = SubjectAltName::uri(san).map_err(|e| IdentityError::Claim(e.to_string()))?;
        let mut ext = Extensions::default();
        ext.set(Field::Issuer, claims.issuer());
        ext.set(Field::Subject, sub);
        for (field, source) in self.extensions {
            ext.set(*field, source.render(claims)?);
        }
        Ok(Principal {
            challenge: challenge.to_string(),
            san,
            extensions: ext,
        })
    }

    /// What each field is built from: (field, source) rows for `config check`.
    pub(crate) fn describe(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            (
                "challenge".to_string(),
                match self.challenge {
                    Challenge::Sub => "claim sub".to_string(),
                    Challenge::EmailElseSub => {
                        "claim email if present (verified), else sub".to_string()
                    }
                },
            ),
            ("SAN URI".to_string(), self.san.describe()),
        ];
        for (field, source) in self.extensions {
            rows.push((
                format!(".{} {}", field.arc(), field.yaml_key()),
                source.describe(),
            ));
        }
        if !self.required.is_empty() {
            rows.push(("required claims".into(), self.required.join(", ")));
        }
        rows
    }
}

impl Part {
    fn render(&self, claims: &Claims<'_>) -> Result<String, IdentityError> {
        Ok(match self {
            Part::Claim(name) => claims.optional_string(name)?.unwrap_or("").to_string(),
            Part::Lit(text) => text.to_string(),
            Part::Cat(parts) => parts
                .iter()
                .map(|p| p.render(claims))
                .collect::<Result<Vec<_>, _>>()?
                .concat(),
        })
    }

    fn describe(&self) -> String {
        match self {
            Part::Claim(name) => format!("{{{name}}}"),
            Part::Lit(text) => text.trim_matches('/').to_string(),
            Part::Cat(parts) => parts.iter().map(Part::describe).collect(),
        }
    }
}

impl Source {
    fn render(&self, claims: &Claims<'_>) -> Result<String, IdentityError> {
        Ok(match self {
            Source::Claim(name) => claims.optional_string(name)?.unwrap_or("").to_string(),
            Source::Url(base, parts) => {
                let base = match base {
                    Base::Fixed(url) => url.to_string(),
                    Base::Issuer => claims.issuer().to_string(),
                    Base::ClaimOr(name, default) => match claims.optional_string(name)? {
                        Some(v) if !v.is_empty() => v.to_string(),
                        _ => default.to_string(),
                    },
                };
                let parts = parts
                    .iter()
                    .map(|p| p.render(claims))
                    .collect::<Result<Vec<_>, _>>()?;
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                join_path(&base, &parts)
            }
            Source::Https(name) => {
                let uri = format!("https://{}", claims.required_string(name)?);
                url::Url::parse(&uri)
                    .map_err(|e| IdentityError::Template(format!("{name}: {e}")))?;
                uri
            }
            Source::GitRef { name, kind } => {
                let name = claims.required_string(name)?;
                match claims.required_string(kind)? {
                    "branch" => format!("refs/heads/{name}"),
                    "tag" => format!("refs/tags/{name}"),
                    other => {
                        return Err(IdentityError::Claim(format!("unexpected {kind}: {other}")));
                    }
                }
            }
        })
    }

    fn describe(&self) -> String {
        match self {
            Source::Claim(name) => format!("claim {name}"),
            Source::Url(base, parts) => {
                let base = match base {
                    Base::Fixed(url) => url.trim_end_matches('/').to_string(),
                    Base::Issuer => "{iss}".to_string(),
                    Base::ClaimOr(name, default) => format!("{{{name}, default {default}}}"),
                };
                let path: Vec<String> = parts.iter().map(Part::describe).collect();
                format!("{base}/{}", path.join("/"))
            }
            Source::Https(name) => format!("https://{{{name}}}"),
            Source::GitRef { name, kind } => {
                format!("refs/heads|tags/{{{name}}} by claim {kind}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The description lists exactly the extensions the principal sets, in the same
    /// order: both come from the spec.
    #[test]
    fn description_and_principal_name_the_same_fields() {
        let claims = json!({
            "iss": "https://issuer.example", "sub": "s", "platform_url": "https://cf.example",
            "account_id": "a", "account_name": "acct", "pipeline_id": "p", "pipeline_name": "proj/pipe",
            "workflow_id": "w", "runner_environment": "cloud", "scm_repo_url": "https://git.example/r",
            "scm_ref": "main",
        });
        let map = claims.as_object().unwrap();
        let p = CODEFRESH.principal(&Claims(map)).unwrap();
        assert_eq!(
            p.san.value(),
            "https://cf.example/acct/proj/pipe:a/p",
            "SAN"
        );
        let described: Vec<String> = CODEFRESH
            .describe()
            .into_iter()
            .filter(|(f, _)| f.starts_with('.'))
            .map(|(f, _)| f)
            .collect();
        let set: Vec<String> = CODEFRESH
            .extensions
            .iter()
            .map(|(f, _)| format!(".{} {}", f.arc(), f.yaml_key()))
            .collect();
        assert_eq!(described, set);
        // Fulcio's codefresh principal: .18 is the build URL, as .9 and .21.
        let rows = CODEFRESH.describe();
        let build_config = rows.iter().find(|(f, _)| f.starts_with(".18")).unwrap();
        assert_eq!(
            build_config.1,
            "{platform_url, default https://g.codefresh.io}/build/{workflow_id}"
        );
        let rendered = p.extensions.render().unwrap();
        assert_eq!(
            rendered.len(),
            3 + CODEFRESH.extensions.len(),
            "issuer (.1 and .8), subject and the rest"
        );
    }

    #[test]
    fn missing_required_claims_and_bad_refs_are_refused() {
        let map = json!({"iss": "https://i", "sub": "s"});
        assert!(GITHUB.principal(&Claims(map.as_object().unwrap())).is_err());
        let gitlab = json!({
            "iss": "https://i", "sub": "s", "project_path": "g/p", "pipeline_source": "push",
            "pipeline_id": "1", "ci_config_ref_uri": "gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main",
            "job_id": "3", "ref": "main", "ref_type": "merge_request", "namespace_path": "g",
            "namespace_id": "2", "project_id": "1", "sha": "abc", "runner_environment": "x",
            "runner_id": 4,
        });
        let e = GITLAB
            .principal(&Claims(gitlab.as_object().unwrap()))
            .unwrap_err();
        assert!(e.to_string().contains("unexpected ref_type"), "{e}");
        let mut no_runner = gitlab.clone();
        no_runner["ref_type"] = json!("branch");
        no_runner["runner_id"] = json!(0);
        let e = GITLAB
            .principal(&Claims(no_runner.as_object().unwrap()))
            .unwrap_err();
        assert!(e.to_string().contains("runner_id"), "{e}");
    }
}
