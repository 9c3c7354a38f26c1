//! `ci-provider` issuers: the SAN and the Sigstore extensions come from the provider's
//! templates in `ci-issuer-metadata`, evaluated over the token's claims merged over the
//! provider's default values (claims win). The issuer (`.1`/`.8`) and subject (`.24`) always
//! come from the token itself; proof of possession is over `sub`.

use super::IdentityError;
use super::claims::{Claims, stringify};
use super::template::{Template, Vars};
use crate::config::ConfigError;
use crate::config::identity::CiProviderMetadata;
use crate::model::{Extensions, Field, Principal, SubjectAltName};

/// One provider's compiled templates.
#[derive(Debug, Clone)]
pub struct Provider {
    /// `default-template-values`: values the templates see where the token lacks the claim.
    pub defaults: Vars,
    /// `subject-alternative-name-template`: must render a non-empty URL (the SAN URI).
    pub san: Template,
    /// The Sigstore extension templates with their fields (blank ones, issuer and subject left
    /// out: those come from the token).
    pub extensions: Vec<(Field, Template)>,
}

impl Provider {
    /// Parses provider `name`'s templates; a missing SAN template or a parse error is a
    /// `ConfigError` naming the offending `ci-issuer-metadata` key.
    pub fn compile(name: &str, meta: &CiProviderMetadata) -> Result<Provider, ConfigError> {
        let at = |what: &str, reason: String| ConfigError {
            path: format!("ci-issuer-metadata.{name:?}.{what}"),
            reason,
        };
        if meta.subject_alternative_name_template.trim().is_empty() {
            return Err(at(
                "subject-alternative-name-template",
                "is required".into(),
            ));
        }
        let san = Template::parse(&meta.subject_alternative_name_template)
            .map_err(|e| at("subject-alternative-name-template", e.to_string()))?;
        let mut extensions = Vec::new();
        for (field, text) in &meta.extension_templates {
            // Blank templates are skipped, and the issuer and subject never come from
            // templates, as in Fulcio.
            if text.trim().is_empty() || matches!(field, Field::Issuer | Field::Subject) {
                continue;
            }
            let t = Template::parse(text).map_err(|e| {
                at(
                    &format!("extension-templates.{}", field.yaml_key()),
                    e.to_string(),
                )
            })?;
            extensions.push((*field, t));
        }
        Ok(Provider {
            defaults: meta.default_template_values.clone(),
            san,
            extensions,
        })
    }

    /// What this provider's certificate fields are built from (`config check`).
    pub(crate) fn describe(&self) -> Vec<(String, String)> {
        let src = |t: &Template| {
            if t.is_lookup() {
                format!("claim {}", t.source())
            } else {
                format!("template {}", t.source())
            }
        };
        let mut rows = vec![
            ("challenge".to_string(), "claim sub".to_string()),
            ("SAN URI".to_string(), src(&self.san)),
        ];
        for (f, t) in &self.extensions {
            rows.push((format!(".{} {}", f.arc(), f.yaml_key()), src(t)));
        }
        if !self.defaults.is_empty() {
            let d: Vec<String> = self
                .defaults
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            rows.push(("defaults".into(), d.join(", ")));
        }
        rows
    }

    pub(crate) fn principal(&self, claims: &Claims<'_>) -> Result<Principal, IdentityError> {
        let sub = claims.subject()?;
        let (san, ext) = self.render(claims)?;
        Ok(Principal {
            challenge: sub.to_string(),
            san,
            extensions: ext,
        })
    }

    /// The defaults with the token's claims (stringified) laid over them.
    pub(crate) fn variables(&self, claims: &Claims<'_>) -> Vars {
        let mut vars = self.defaults.clone();
        for (k, v) in claims.0 {
            vars.insert(k.clone(), stringify(v));
        }
        vars
    }

    /// The SAN and extensions for `claims` (issuer from `iss`, subject from `sub` when
    /// present).
    pub fn render(
        &self,
        claims: &Claims<'_>,
    ) -> Result<(SubjectAltName, Extensions), IdentityError> {
        let vars = self.variables(claims);
        let t = |e: super::template::TemplateError| IdentityError::Template(e.to_string());
        let san = self.san.render(&vars).map_err(t)?;
        if san.is_empty() {
            return Err(IdentityError::Template(
                "the subject alternative name template rendered empty".into(),
            ));
        }
        url::Url::parse(&san).map_err(|e| {
            IdentityError::Template(format!(
                "subject alternative name {san:?} is not a URL: {e}"
            ))
        })?;
        let mut ext = Extensions::default();
        for (field, template) in &self.extensions {
            ext.set(*field, template.render(&vars).map_err(t)?);
        }
        ext.set(Field::Issuer, claims.issuer());
        ext.set(Field::Subject, claims.optional_string("sub")?.unwrap_or(""));
        let san = SubjectAltName::uri(san).map_err(|e| IdentityError::Template(e.to_string()))?;
        Ok((san, ext))
    }
}
