//! `email` issuers: rfc822Name SAN, proof of possession over the email address.

use super::IdentityError;
use super::claims::{Claims, is_email, stringify};
use crate::config::IssuerConfig;
use crate::model::{Extensions, Field, Principal, SubjectAltName};
use serde_json::Value;

pub(crate) fn principal(
    issuer: &IssuerConfig,
    claims: &Claims<'_>,
) -> Result<Principal, IdentityError> {
    let email = claims.required_string("email")?;
    if !issuer.skip_email_verification && !claims.email_verified()? {
        return Err(IdentityError::Claim(
            "email_verified claim is not true".into(),
        ));
    }
    if !is_email(email) {
        return Err(IdentityError::Claim(format!(
            "{email:?} is not a valid email address"
        )));
    }
    let issuer_value = match &issuer.issuer_claim {
        None => claims.issuer().to_string(),
        Some(path) => {
            let mut v: Option<&Value> = None;
            for (i, seg) in path.segments.iter().enumerate() {
                v = if i == 0 {
                    claims.get(seg)
                } else {
                    v.and_then(|x| x.get(seg))
                };
            }
            let v = v.ok_or_else(|| {
                IdentityError::Claim(format!("issuer claim {} is not in the token", path.text))
            })?;
            stringify(v)
        }
    };
    let mut ext = Extensions::default();
    ext.set(Field::Issuer, issuer_value);
    ext.set(Field::Subject, claims.optional_string("sub")?.unwrap_or(""));
    Ok(Principal {
        challenge: email.to_string(),
        san: SubjectAltName::email(email).map_err(|e| IdentityError::Claim(e.to_string()))?,
        extensions: ext,
    })
}

/// What an email issuer's certificate fields are built from (`config check`).
pub(crate) fn describe(issuer: &IssuerConfig) -> Vec<(String, String)> {
    vec![
        ("challenge".into(), "claim email".into()),
        (
            "SAN rfc822Name".into(),
            if issuer.skip_email_verification {
                "claim email (email_verified not required)".into()
            } else {
                "claim email (email_verified must be true)".into()
            },
        ),
    ]
}
