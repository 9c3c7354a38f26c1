//! From verified claims to a [`Principal`]: one file per issuer type, plus the
//! `ci-provider` templates. Pure functions of (issuer config, claims).

pub mod claims;
mod email;
mod hardcoded;
mod uri;

use crate::config::{ConfigError, IdentityConfig, IssuerConfig, IssuerType};
use crate::model::Principal;
use claims::Claims;
use serde_json::{Map, Value};
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
pub struct Identities {}

impl Identities {
    /// Prepares everything the configuration needs at request time; every problem is
    /// reported here, at startup.
    pub fn new(_config: &IdentityConfig) -> Result<Identities, ConfigError> {
        Ok(Identities {})
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
            IssuerType::CiProvider => Err(IdentityError::Claim(
                "ci-provider issuers are not supported by this build".into(),
            )),
            IssuerType::Unknown(t) => Err(IdentityError::Claim(format!(
                "issuer type {t:?} cannot issue certificates"
            ))),
        }
    }
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
