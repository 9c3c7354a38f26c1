//! From verified claims to a [`Principal`]: one file per issuer type, plus the
//! `ci-provider` templates. Pure functions of (issuer config, claims).

pub mod ciprovider;
pub mod claims;
mod email;
pub(crate) mod legacy;
pub mod template;
mod uri;

use crate::config::{ConfigError, IdentityConfig, IssuerConfig, IssuerType};
use crate::model::Principal;
use claims::Claims;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a verified token's claims cannot make a certificate principal for its issuer.
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
            providers.insert(name.clone(), ciprovider::Provider::compile(name, meta)?);
        }
        Ok(Identities { providers })
    }

    /// The compiled templates of a CI provider.
    pub(crate) fn provider(&self, name: &str) -> Option<&ciprovider::Provider> {
        self.providers.get(name)
    }

    /// The principal for a token verified against `issuer`: SAN, Sigstore extensions and the
    /// proof-of-possession challenge, by the issuer's type.
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
            IssuerType::GithubWorkflow
            | IssuerType::GitlabPipeline
            | IssuerType::BuildkiteJob
            | IssuerType::CodefreshWorkflow
            | IssuerType::ChainguardIdentity => match legacy::spec(&issuer.kind) {
                Some(spec) => spec.principal(&claims),
                None => Err(IdentityError::Claim("no spec for this issuer type".into())),
            },
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
/// (field, source) pairs in certificate order. Each issuer type's rows come from where
/// its principal is built: the legacy types' specs, the CI provider's compiled
/// templates, the URI and email modules.
pub fn describe(identities: &Identities, issuer: &IssuerConfig) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = match &issuer.kind {
        IssuerType::Email => email::describe(issuer),
        IssuerType::Uri | IssuerType::Username | IssuerType::Spiffe | IssuerType::Kubernetes => {
            uri::describe(issuer)
        }
        IssuerType::CiProvider => identities
            .provider(issuer.ci_provider.as_deref().unwrap_or(""))
            .map(ciprovider::Provider::describe)
            .unwrap_or_default(),
        IssuerType::Unknown(t) => vec![(
            "note".into(),
            format!("type {t:?} is unknown: tokens are refused"),
        )],
        other => legacy::spec(other)
            .map(legacy::Spec::describe)
            .unwrap_or_default(),
    };
    let issuer_source = match &issuer.issuer_claim {
        Some(p) => format!("claim at {}", p.text),
        None => "token iss".to_string(),
    };
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
