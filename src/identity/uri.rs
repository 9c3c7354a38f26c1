//! The URI-shaped identities: `uri`, `username`, `spiffe`, `kubernetes`. Proof of
//! possession is over `sub` for all of them.

use super::IdentityError;
use super::claims::{Claims, is_email};
use crate::config::{IssuerConfig, IssuerType};
use crate::model::{Extensions, Field, Principal, SubjectAltName};
use serde_json::Value;

fn base_extensions(claims: &Claims<'_>, sub: &str) -> Extensions {
    let mut ext = Extensions::default();
    ext.set(Field::Issuer, claims.issuer());
    ext.set(Field::Subject, sub);
    ext
}

fn uri_san(v: &str) -> Result<SubjectAltName, IdentityError> {
    SubjectAltName::uri(v).map_err(|e| IdentityError::Claim(e.to_string()))
}

/// `uri`: `sub` is a URL on exactly the configured subject domain's scheme and host.
pub(crate) fn uri(issuer: &IssuerConfig, claims: &Claims<'_>) -> Result<Principal, IdentityError> {
    let sub = claims.subject()?;
    if is_email(sub) {
        return Err(IdentityError::Claim(
            "uri subject should not be an email address".into(),
        ));
    }
    let domain = issuer.subject_domain.as_deref().unwrap_or("");
    let s = url::Url::parse(sub)
        .map_err(|e| IdentityError::Claim(format!("subject {sub:?} is not a URL: {e}")))?;
    let d = url::Url::parse(domain)
        .map_err(|e| IdentityError::Claim(format!("subject domain {domain:?}: {e}")))?;
    if s.scheme() != d.scheme() {
        return Err(IdentityError::Claim(format!(
            "subject URI scheme ({}) must match expected domain URI scheme ({})",
            s.scheme(),
            d.scheme()
        )));
    }
    if s.host_str() != d.host_str() {
        return Err(IdentityError::Claim(format!(
            "subject hostname ({}) must match expected domain ({})",
            s.host_str().unwrap_or(""),
            d.host_str().unwrap_or("")
        )));
    }
    Ok(Principal {
        challenge: sub.to_string(),
        san: uri_san(sub)?,
        extensions: base_extensions(claims, sub),
    })
}

/// `username`: `<sub>!<subject-domain>` as an otherName SAN.
pub(crate) fn username(
    issuer: &IssuerConfig,
    claims: &Claims<'_>,
) -> Result<Principal, IdentityError> {
    let sub = claims.subject()?;
    if sub.contains('!') {
        return Err(IdentityError::Claim(
            "username cannot contain ! character".into(),
        ));
    }
    if is_email(sub) {
        return Err(IdentityError::Claim(
            "username subject should not be an email address".into(),
        ));
    }
    let domain = issuer.subject_domain.as_deref().unwrap_or("");
    Ok(Principal {
        challenge: sub.to_string(),
        san: SubjectAltName::username(format!("{sub}!{domain}")),
        extensions: base_extensions(claims, sub),
    })
}

/// `spiffe`: `sub` is a SPIFFE ID in exactly the configured trust domain.
pub(crate) fn spiffe(
    issuer: &IssuerConfig,
    claims: &Claims<'_>,
) -> Result<Principal, IdentityError> {
    let sub = claims.subject()?;
    let rest = sub
        .strip_prefix("spiffe://")
        .ok_or_else(|| IdentityError::Claim(format!("{sub:?} is not a SPIFFE ID")))?;
    let td = rest.split('/').next().unwrap_or("");
    let valid_td = !td.is_empty()
        && td
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let path = &rest[td.len()..];
    let valid_path = path.is_empty()
        || (path.starts_with('/')
            && path[1..].split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            }));
    if !valid_td || !valid_path {
        return Err(IdentityError::Claim(format!(
            "{sub:?} is not a valid SPIFFE ID"
        )));
    }
    if Some(td) != issuer.spiffe_trust_domain.as_deref() {
        return Err(IdentityError::Claim(format!(
            "SPIFFE ID trust domain {td:?} does not match the configured trust domain"
        )));
    }
    Ok(Principal {
        challenge: sub.to_string(),
        san: uri_san(sub)?,
        extensions: base_extensions(claims, sub),
    })
}

/// `kubernetes`: the service account from the `kubernetes.io` claim.
pub(crate) fn kubernetes(claims: &Claims<'_>) -> Result<Principal, IdentityError> {
    let sub = claims.subject()?;
    let k8s = claims
        .get("kubernetes.io")
        .ok_or_else(|| IdentityError::Claim("missing kubernetes.io claim".into()))?;
    let text = |v: Option<&Value>, name: &str| -> Result<String, IdentityError> {
        match v {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(IdentityError::Claim(format!(
                "missing or empty kubernetes.io {name}"
            ))),
        }
    };
    let namespace = text(k8s.get("namespace"), "namespace")?;
    let sa = text(
        k8s.get("serviceaccount").and_then(|s| s.get("name")),
        "serviceaccount.name",
    )?;
    let san = format!("https://kubernetes.io/namespaces/{namespace}/serviceaccounts/{sa}");
    Ok(Principal {
        challenge: sub.to_string(),
        san: uri_san(&san)?,
        extensions: base_extensions(claims, sub),
    })
}

/// What a URI-shaped issuer's certificate fields are built from (`config check`).
pub(crate) fn describe(issuer: &IssuerConfig) -> Vec<(String, String)> {
    let domain = issuer.subject_domain.as_deref().unwrap_or("?");
    let san = match issuer.kind {
        IssuerType::Uri => ("SAN URI", format!("claim sub (a URL on {domain})")),
        IssuerType::Username => (
            "SAN otherName 1.3.6.1.4.1.57264.1.7",
            format!("claim sub + \"!{domain}\""),
        ),
        IssuerType::Spiffe => (
            "SAN URI",
            format!(
                "claim sub (a SPIFFE ID in trust domain {})",
                issuer.spiffe_trust_domain.as_deref().unwrap_or("?")
            ),
        ),
        _ => (
            "SAN URI",
            "https://kubernetes.io/namespaces/{kubernetes.io.namespace}/serviceaccounts/{kubernetes.io.serviceaccount.name}".to_string(),
        ),
    };
    vec![
        ("challenge".into(), "claim sub".into()),
        (san.0.into(), san.1),
    ]
}
