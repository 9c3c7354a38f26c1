//! From verified claims to a [`Principal`]: one file per issuer type, plus the
//! `ci-provider` templates. Pure functions of (issuer config, claims).

pub mod ciprovider;
pub mod claims;
mod email;
mod hardcoded;
pub mod template;
mod uri;

use crate::config::{ConfigError, IdentityConfig, IssuerConfig, IssuerType};
use crate::model::Principal;
use claims::Claims;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// The token lacks what this issuer type requires (reported to clients as a token
    /// error, as Fulcio does).
    #[error("{0}")]
    Claim(String),
    /// The principal could not fill the certificate (e.g. a template referencing a
    /// missing claim); reported to clients verbatim, as Fulcio does.
    #[error("{0}")]
    Template(String),
}

/// Builds principals for every configured issuer type.
#[derive(Debug, Default)]
pub struct Identities {
    providers: BTreeMap<String, ciprovider::Provider>,
}

impl Identities {
    /// Prepares everything the configuration needs at request time (every CI template is
    /// parsed here); every problem is reported at startup.
    pub fn new(config: &IdentityConfig) -> Result<Identities, ConfigError> {
        let mut providers = BTreeMap::new();
        for (name, meta) in &config.ci_metadata {
            let p = ciprovider::Provider::compile(name, meta).map_err(|reason| ConfigError {
                path: String::new(),
                reason,
            })?;
            providers.insert(name.clone(), p);
        }
        Ok(Identities { providers })
    }

    /// The compiled templates of a CI provider.
    pub fn provider(&self, name: &str) -> Option<&ciprovider::Provider> {
        self.providers.get(name)
    }

    pub fn principal(
        &self,
        issuer: &IssuerConfig,
        claims: &Map<String, Value>,
    ) -> Result<Principal, IdentityError> {
        let claims = Claims(claims);
        match &issuer.kind {
            IssuerType::Email => email::principal(issuer, &claims),
            IssuerType::Spiffe => uri::spiffe(issuer, &claims),
            IssuerType::Uri => uri::uri(issuer, &claims),
            IssuerType::Username => uri::username(issuer, &claims),
            IssuerType::Kubernetes => uri::kubernetes(&claims),
            IssuerType::GithubWorkflow => hardcoded::github(&claims),
            IssuerType::GitlabPipeline => hardcoded::gitlab(&claims),
            IssuerType::BuildkiteJob => hardcoded::buildkite(&claims),
            IssuerType::CodefreshWorkflow => hardcoded::codefresh(&claims),
            IssuerType::ChainguardIdentity => hardcoded::chainguard(&claims),
            IssuerType::CiProvider => {
                let name = issuer.ci_provider.as_deref().unwrap_or("");
                // Config validation guarantees the provider exists.
                let p = self.providers.get(name).ok_or_else(|| {
                    IdentityError::Template(format!("no ci-issuer-metadata for {name:?}"))
                })?;
                p.principal(&claims)
            }
            IssuerType::Unknown(t) => Err(IdentityError::Claim(format!(
                "issuer type {t:?} cannot issue certificates"
            ))),
        }
    }
}

/// What each certificate field of an issuer is built from, for `brevis config check`:
/// (field, source) pairs in certificate order.
pub fn describe(identities: &Identities, issuer: &IssuerConfig) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |f: &str, s: String| rows.push((f.to_string(), s));
    let issuer_source = match &issuer.issuer_claim {
        Some(p) => format!("claim at {}", p.text),
        None => "token iss".to_string(),
    };
    let legacy = |fields: &[(&str, &str)], rows: &mut Vec<(String, String)>| {
        for (f, s) in fields {
            rows.push((f.to_string(), s.to_string()));
        }
    };
    match &issuer.kind {
        IssuerType::Email => {
            row("challenge", "claim email".into());
            row(
                "SAN rfc822Name",
                if issuer.skip_email_verification {
                    "claim email (email_verified not required)".into()
                } else {
                    "claim email (email_verified must be true)".into()
                },
            );
        }
        IssuerType::Uri => {
            row("challenge", "claim sub".into());
            row(
                "SAN URI",
                format!(
                    "claim sub (a URL on {})",
                    issuer.subject_domain.as_deref().unwrap_or("?")
                ),
            );
        }
        IssuerType::Username => {
            row("challenge", "claim sub".into());
            row(
                "SAN otherName 1.3.6.1.4.1.57264.1.7",
                format!(
                    "claim sub + \"!{}\"",
                    issuer.subject_domain.as_deref().unwrap_or("?")
                ),
            );
        }
        IssuerType::Spiffe => {
            row("challenge", "claim sub".into());
            row(
                "SAN URI",
                format!(
                    "claim sub (a SPIFFE ID in trust domain {})",
                    issuer.spiffe_trust_domain.as_deref().unwrap_or("?")
                ),
            );
        }
        IssuerType::Kubernetes => {
            row("challenge", "claim sub".into());
            row(
                "SAN URI",
                "https://kubernetes.io/namespaces/{kubernetes.io.namespace}/serviceaccounts/{kubernetes.io.serviceaccount.name}".into(),
            );
        }
        IssuerType::ChainguardIdentity => {
            row(
                "challenge",
                "claim email if present (verified), else sub".into(),
            );
            row("SAN URI", "token iss + \"/\" + claim sub".into());
        }
        IssuerType::BuildkiteJob => {
            row("challenge", "claim sub".into());
            row(
                "SAN URI",
                "https://buildkite.com/{organization_slug}/{pipeline_slug}".into(),
            );
        }
        IssuerType::GithubWorkflow => {
            row("challenge", "claim sub".into());
            row("SAN URI", "https://github.com/{job_workflow_ref}".into());
            legacy(
                &[
                    (".2 github-workflow-trigger", "claim event_name"),
                    (".3 github-workflow-sha", "claim sha"),
                    (".4 github-workflow-name", "claim workflow"),
                    (".5 github-workflow-repository", "claim repository"),
                    (".6 github-workflow-ref", "claim ref"),
                    (
                        ".9 build-signer-uri",
                        "https://github.com/{job_workflow_ref}",
                    ),
                    (".10 build-signer-digest", "claim job_workflow_sha"),
                    (".11 runner-environment", "claim runner_environment"),
                    (
                        ".12 source-repository-uri",
                        "https://github.com/{repository}",
                    ),
                    (".13 source-repository-digest", "claim sha"),
                    (".14 source-repository-ref", "claim ref"),
                    (".15 source-repository-identifier", "claim repository_id"),
                    (
                        ".16 source-repository-owner-uri",
                        "https://github.com/{repository_owner}",
                    ),
                    (
                        ".17 source-repository-owner-identifier",
                        "claim repository_owner_id",
                    ),
                    (".18 build-config-uri", "https://github.com/{workflow_ref}"),
                    (".19 build-config-digest", "claim workflow_sha"),
                    (".20 build-trigger", "claim event_name"),
                    (
                        ".21 run-invocation-uri",
                        "https://github.com/{repository}/actions/runs/{run_id}/attempts/{run_attempt}",
                    ),
                    (
                        ".22 source-repository-visibility-at-signing",
                        "claim repository_visibility",
                    ),
                ],
                &mut rows,
            );
        }
        IssuerType::GitlabPipeline => {
            rows.push(("challenge".into(), "claim sub".into()));
            rows.push(("SAN URI".into(), "https://{ci_config_ref_uri}".into()));
            legacy(
                &[
                    (".9 build-signer-uri", "https://{ci_config_ref_uri}"),
                    (".10 build-signer-digest", "claim ci_config_sha"),
                    (".11 runner-environment", "claim runner_environment"),
                    (
                        ".12 source-repository-uri",
                        "https://gitlab.com/{project_path}",
                    ),
                    (".13 source-repository-digest", "claim sha"),
                    (
                        ".14 source-repository-ref",
                        "refs/heads|tags/{ref} by ref_type",
                    ),
                    (".15 source-repository-identifier", "claim project_id"),
                    (
                        ".16 source-repository-owner-uri",
                        "https://gitlab.com/{namespace_path}",
                    ),
                    (
                        ".17 source-repository-owner-identifier",
                        "claim namespace_id",
                    ),
                    (".18 build-config-uri", "https://{ci_config_ref_uri}"),
                    (".19 build-config-digest", "claim ci_config_sha"),
                    (".20 build-trigger", "claim pipeline_source"),
                    (
                        ".21 run-invocation-uri",
                        "https://gitlab.com/{project_path}/-/jobs/{job_id}",
                    ),
                    (
                        ".22 source-repository-visibility-at-signing",
                        "claim project_visibility",
                    ),
                ],
                &mut rows,
            );
        }
        IssuerType::CodefreshWorkflow => {
            rows.push(("challenge".into(), "claim sub".into()));
            rows.push((
                "SAN URI".into(),
                "{platform_url}/{account_name}/{pipeline_name}:{account_id}/{pipeline_id}".into(),
            ));
            legacy(
                &[
                    (".9 build-signer-uri", "{platform_url}/build/{workflow_id}"),
                    (".11 runner-environment", "claim runner_environment"),
                    (".12 source-repository-uri", "claim scm_repo_url"),
                    (".14 source-repository-ref", "claim scm_ref"),
                    (
                        ".18 build-config-uri",
                        "{platform_url}/api/pipelines/{pipeline_id}",
                    ),
                    (
                        ".21 run-invocation-uri",
                        "{platform_url}/build/{workflow_id}",
                    ),
                ],
                &mut rows,
            );
        }
        IssuerType::CiProvider => {
            let name = issuer.ci_provider.as_deref().unwrap_or("");
            rows.push(("challenge".into(), "claim sub".into()));
            if let Some(p) = identities.provider(name) {
                let src = |t: &template::Template| {
                    if t.is_lookup() {
                        format!("claim {}", t.source())
                    } else {
                        format!("template {}", t.source())
                    }
                };
                rows.push(("SAN URI".into(), src(&p.san)));
                for (f, t) in &p.extensions {
                    rows.push((format!(".{} {}", f.arc(), f.yaml_key()), src(t)));
                }
                if !p.defaults.is_empty() {
                    let d: Vec<String> = p
                        .defaults
                        .iter()
                        .map(|(k, v)| format!("{k}={v:?}"))
                        .collect();
                    rows.push(("defaults".into(), d.join(", ")));
                }
            }
        }
        IssuerType::Unknown(t) => {
            rows.push((
                "note".into(),
                format!("type {t:?} is unknown: tokens are refused"),
            ));
        }
    }
    rows.insert(
        rows.iter()
            .position(|(f, _)| f.starts_with('.'))
            .unwrap_or(rows.len()),
        (".1/.8 issuer".into(), issuer_source),
    );
    rows.push((".24 subject".into(), "claim sub".into()));
    rows
}

/// Go's `url.URL.JoinPath` on an absolute URL string: path elements joined and cleaned,
/// a trailing slash on the last element kept.
pub(crate) fn join_path(base: &str, elems: &[&str]) -> String {
    let (prefix, base_path) = match base.find("://") {
        Some(i) => {
            let after = &base[i + 3..];
            let slash = after.find('/').map(|j| i + 3 + j).unwrap_or(base.len());
            (&base[..slash], &base[slash..])
        }
        None => ("", base),
    };
    let mut parts: Vec<&str> = vec![base_path];
    parts.extend_from_slice(elems);
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    let mut cleaned = clean_path(&format!("/{joined}"));
    if elems.last().is_some_and(|e| e.ends_with('/')) && !cleaned.ends_with('/') {
        cleaned.push('/');
    }
    format!("{prefix}{cleaned}")
}

/// Go's `path.Clean` for rooted paths.
fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_path_matches_go() {
        assert_eq!(
            join_path("https://gitlab.com/", &["group/proj"]),
            "https://gitlab.com/group/proj"
        );
        assert_eq!(
            join_path("https://gitlab.com/", &["group/proj", "/-/jobs/", "302"]),
            "https://gitlab.com/group/proj/-/jobs/302"
        );
        assert_eq!(
            join_path("https://g.codefresh.io", &["build", "abc"]),
            "https://g.codefresh.io/build/abc"
        );
        assert_eq!(
            join_path("https://issuer.enforce.dev", &["a/b"]),
            "https://issuer.enforce.dev/a/b"
        );
        assert_eq!(
            join_path("https://x.dev/base/", &["../y/"]),
            "https://x.dev/y/"
        );
    }
}
