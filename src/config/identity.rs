//! Fulcio's identity configuration file (`OIDCIssuers`, `MetaIssuers`, `CIIssuerMetadata`),
//! parsed from YAML (kebab-case keys) or JSON (Go field names, matched case-insensitively as
//! Go's decoder does), then validated into typed values. Any problem stops startup with a
//! message naming the field.

use crate::model::extensions::Field;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// A configuration problem, with the path of the offending field.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is, e.g. `oidc-issuers."https://issuer.example".client-id`; empty
    /// when it concerns the whole file.
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

fn err(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        reason: reason.into(),
    }
}

/// Issuer types Fulcio recognises (`type:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerType {
    /// `email`: the SAN is the token's `email` claim.
    Email,
    /// `spiffe`: `sub` is a SPIFFE ID in the configured trust domain.
    Spiffe,
    /// `uri`: `sub` is a URL on the configured subject domain.
    Uri,
    /// `username`: the SAN is `sub!<subject-domain>`.
    Username,
    /// `kubernetes`: the service account from the token's `kubernetes.io` claim.
    Kubernetes,
    /// `github-workflow`: GitHub Actions workload tokens.
    GithubWorkflow,
    /// `gitlab-pipeline`: GitLab CI job tokens.
    GitlabPipeline,
    /// `buildkite-job`: Buildkite job tokens.
    BuildkiteJob,
    /// `codefresh-workflow`: Codefresh workflow tokens.
    CodefreshWorkflow,
    /// `chainguard-identity`: Chainguard identity tokens.
    ChainguardIdentity,
    /// `ci-provider`: SAN and extensions come from the provider's `ci-issuer-metadata`
    /// templates.
    CiProvider,
    /// A type brevis does not know, accepted (as Fulcio does) only with an explicit
    /// challenge claim; tokens from such an issuer are always refused.
    Unknown(String),
}

impl IssuerType {
    /// Reads a `type:` value; a name brevis does not know becomes [`IssuerType::Unknown`].
    pub fn parse(s: &str) -> IssuerType {
        match s {
            "email" => IssuerType::Email,
            "spiffe" => IssuerType::Spiffe,
            "uri" => IssuerType::Uri,
            "username" => IssuerType::Username,
            "kubernetes" => IssuerType::Kubernetes,
            "github-workflow" => IssuerType::GithubWorkflow,
            "gitlab-pipeline" => IssuerType::GitlabPipeline,
            "buildkite-job" => IssuerType::BuildkiteJob,
            "codefresh-workflow" => IssuerType::CodefreshWorkflow,
            "chainguard-identity" => IssuerType::ChainguardIdentity,
            "ci-provider" => IssuerType::CiProvider,
            other => IssuerType::Unknown(other.to_string()),
        }
    }

    /// The `type:` name, as written in the configuration (the inverse of [`IssuerType::parse`]).
    pub fn as_str(&self) -> &str {
        match self {
            IssuerType::Email => "email",
            IssuerType::Spiffe => "spiffe",
            IssuerType::Uri => "uri",
            IssuerType::Username => "username",
            IssuerType::Kubernetes => "kubernetes",
            IssuerType::GithubWorkflow => "github-workflow",
            IssuerType::GitlabPipeline => "gitlab-pipeline",
            IssuerType::BuildkiteJob => "buildkite-job",
            IssuerType::CodefreshWorkflow => "codefresh-workflow",
            IssuerType::ChainguardIdentity => "chainguard-identity",
            IssuerType::CiProvider => "ci-provider",
            IssuerType::Unknown(s) => s,
        }
    }

    /// The claim a proof of possession covers when none is configured.
    pub fn default_challenge_claim(&self) -> Option<&'static str> {
        match self {
            IssuerType::Email => Some("email"),
            IssuerType::Unknown(_) => None,
            _ => Some("sub"),
        }
    }
}

/// A JSONPath of the simple form Fulcio's configs use: `$.a.b` or `$['a']['b']`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    /// The path as written.
    pub text: String,
    /// The claim names it selects, outermost first; never empty.
    pub segments: Vec<String>,
}

/// Why a JSONPath is not of the form Fulcio's configs use.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("JSONPath {text:?} {problem}")]
pub(crate) struct ClaimPathError {
    pub text: String,
    pub problem: &'static str,
}

impl ClaimPath {
    pub(crate) fn parse(text: &str) -> Result<ClaimPath, ClaimPathError> {
        let bad = |problem| ClaimPathError {
            text: text.to_string(),
            problem,
        };
        let rest = text
            .strip_prefix('$')
            .ok_or_else(|| bad("must start with '$'"))?;
        let mut segments = Vec::new();
        let mut s = rest;
        while !s.is_empty() {
            if let Some(r) = s.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end == 0 {
                    return Err(bad("has an empty segment"));
                }
                segments.push(r[..end].to_string());
                s = &r[end..];
            } else if let Some(r) = s.strip_prefix("['") {
                let end = r.find("']").ok_or_else(|| bad("has an unclosed bracket"))?;
                segments.push(r[..end].to_string());
                s = &r[end + 2..];
            } else {
                return Err(bad("is not of the form $.a.b or $['a']['b']"));
            }
        }
        if segments.is_empty() {
            return Err(bad("selects nothing"));
        }
        Ok(ClaimPath {
            text: text.to_string(),
            segments,
        })
    }
}

/// One configured issuer (exact) or the template a meta-issuer pattern stamps out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The map key: what a token's `iss` is matched against (exact URL or meta pattern).
    pub key: String,
    /// The URL the token's `iss` must equal after verification (Fulcio's `IssuerURL`;
    /// for meta-issuers, the pattern until a concrete URL replaces it).
    pub issuer_url: String,
    /// The audience a token must carry (`client-id`); never empty.
    pub client_id: String,
    /// How a token's claims become the certificate's identity (`type`).
    pub kind: IssuerType,
    /// For `ci-provider` issuers: the `ci-issuer-metadata` entry to use (required then).
    pub ci_provider: Option<String>,
    /// For `email` issuers only: the claim recorded as the certificate's issuer instead of
    /// `iss`.
    pub issuer_claim: Option<ClaimPath>,
    /// For `uri` (a URL) and `username` (a bare domain) issuers: the domain subjects must be
    /// on; required for them.
    pub subject_domain: Option<String>,
    /// For `spiffe` issuers: the trust domain SPIFFE IDs must be in; required for them.
    pub spiffe_trust_domain: Option<String>,
    /// Explicitly configured challenge claim (only advertised, as in Fulcio).
    pub challenge_claim: Option<String>,
    /// PEM certificates trusted, besides the system roots, when fetching the issuer's
    /// discovery document and keys.
    pub ca_cert: Option<String>,
    /// For `email` issuers: accept tokens whose `email_verified` is not true.
    pub skip_email_verification: bool,
    /// Free-text description of the issuer; informational only.
    pub description: Option<String>,
    /// Who runs the issuer; informational only.
    pub contact: Option<String>,
    /// The environment the issuer serves (e.g. `prod`); informational only.
    pub environment: Option<String>,
    /// For a concrete issuer admitted under a meta-issuer pattern: that pattern (the key
    /// issuance policies name).
    pub pattern: Option<String>,
}

impl IssuerConfig {
    /// The challenge claim advertised in `/api/v2/configuration`.
    pub fn effective_challenge_claim(&self) -> &str {
        self.challenge_claim
            .as_deref()
            .filter(|c| !c.is_empty())
            .or(self.kind.default_challenge_claim())
            .unwrap_or("")
    }

    /// The configuration a meta-issuer match runs with: the concrete URL plus the fields
    /// Fulcio copies (not the SPIFFE trust domain or the challenge claim).
    pub(crate) fn for_concrete_issuer(&self, url: &str) -> IssuerConfig {
        IssuerConfig {
            key: url.to_string(),
            issuer_url: url.to_string(),
            pattern: Some(self.key.clone()),
            spiffe_trust_domain: None,
            challenge_claim: None,
            ..self.clone()
        }
    }
}

/// A CI provider's template block (`ci-issuer-metadata.<name>`), as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CiProviderMetadata {
    /// Values the templates use for claims a token lacks; the token's claims win.
    pub default_template_values: BTreeMap<String, String>,
    /// One template per certificate extension, sorted by field.
    pub extension_templates: Vec<(Field, String)>,
    /// The template for the certificate's SAN URI; empty when not written (then refused when
    /// the provider is compiled).
    pub subject_alternative_name_template: String,
}

/// The validated identity configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityConfig {
    /// The exact issuers (`oidc-issuers`), in key order.
    pub issuers: Vec<IssuerConfig>,
    /// Problems that do not stop startup but that an operator should see.
    pub warnings: Vec<String>,
    /// The meta-issuer patterns (`meta-issuers`), in pattern order.
    pub meta_issuers: Vec<IssuerConfig>,
    /// The `ci-issuer-metadata` blocks, by provider name.
    pub ci_metadata: BTreeMap<String, CiProviderMetadata>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "oidc-issuers", default)]
    oidc_issuers: Option<BTreeMap<String, RawIssuer>>,
    #[serde(rename = "meta-issuers", default)]
    meta_issuers: Option<BTreeMap<String, RawIssuer>>,
    #[serde(rename = "ci-issuer-metadata", default)]
    ci_issuer_metadata: Option<BTreeMap<String, RawMetadata>>,
    /// Upstream's YAML keeps anchors here; it carries no configuration.
    #[serde(default)]
    #[allow(dead_code)]
    define: Option<serde_norway::Value>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    #[serde(rename = "issuer-url", default)]
    issuer_url: Option<String>,
    #[serde(rename = "client-id", default)]
    client_id: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(rename = "ci-provider", default)]
    ci_provider: Option<String>,
    #[serde(rename = "issuer-claim", default)]
    issuer_claim: Option<String>,
    #[serde(rename = "subject-domain", default)]
    subject_domain: Option<String>,
    #[serde(rename = "spiffe-trust-domain", default)]
    spiffe_trust_domain: Option<String>,
    #[serde(rename = "challenge-claim", default)]
    challenge_claim: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    contact: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(rename = "ca-cert", default)]
    ca_cert: Option<String>,
    #[serde(rename = "skip-email-verification", default)]
    skip_email_verification: Option<bool>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetadata {
    #[serde(rename = "default-template-values", default)]
    default_template_values: Option<BTreeMap<String, String>>,
    #[serde(rename = "extension-templates", default)]
    extension_templates: Option<BTreeMap<String, String>>,
    #[serde(rename = "subject-alternative-name-template", default)]
    subject_alternative_name_template: Option<String>,
}

const TOP_KEYS: [(&str, &str); 3] = [
    ("OIDCIssuers", "oidc-issuers"),
    ("MetaIssuers", "meta-issuers"),
    ("CIIssuerMetadata", "ci-issuer-metadata"),
];

const ISSUER_KEYS: [(&str, &str); 13] = [
    ("IssuerURL", "issuer-url"),
    ("ClientID", "client-id"),
    ("Type", "type"),
    ("CIProvider", "ci-provider"),
    ("IssuerClaim", "issuer-claim"),
    ("SubjectDomain", "subject-domain"),
    ("SPIFFETrustDomain", "spiffe-trust-domain"),
    ("ChallengeClaim", "challenge-claim"),
    ("Description", "description"),
    ("Contact", "contact"),
    ("Environment", "environment"),
    ("CACert", "ca-cert"),
    ("SkipEmailVerification", "skip-email-verification"),
];

const METADATA_KEYS: [(&str, &str); 3] = [
    ("DefaultTemplateValues", "default-template-values"),
    ("ExtensionTemplates", "extension-templates"),
    (
        "SubjectAlternativeNameTemplate",
        "subject-alternative-name-template",
    ),
];

impl IdentityConfig {
    /// Parses and validates a configuration file's text.
    pub fn parse(text: &str) -> Result<IdentityConfig, ConfigError> {
        let raw: Option<RawConfig> = if text.trim_start().starts_with('{') {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| err("", format!("invalid JSON: {e}")))?;
            let value = json_to_yaml_names(value)?;
            serde_json::from_value(value).map_err(|e| err("", e.to_string()))?
        } else {
            serde_norway::from_str(text).map_err(|e| err("", e.to_string()))?
        };
        let raw = raw.ok_or_else(|| err("", "the configuration is empty"))?;
        validate(raw)
    }
}

/// Renames Go-style JSON keys to the YAML names, case-insensitively (as encoding/json
/// matches struct fields), and reports unknown keys with their path.
fn json_to_yaml_names(v: serde_json::Value) -> Result<serde_json::Value, ConfigError> {
    use serde_json::{Map, Value};
    fn rename(
        obj: Map<String, Value>,
        keys: &[(&str, &str)],
        path: &str,
    ) -> Result<Vec<(String, Value)>, ConfigError> {
        obj.into_iter()
            .map(|(k, v)| {
                keys.iter()
                    .find(|(go, yaml)| go.eq_ignore_ascii_case(&k) || *yaml == k)
                    .map(|(_, yaml)| (yaml.to_string(), v))
                    .ok_or_else(|| err(format!("{path}{k}"), "unknown field"))
            })
            .collect()
    }
    let Value::Object(top) = v else {
        return Err(err("", "the configuration must be an object"));
    };
    let mut out = Map::new();
    for (k, v) in rename(top, &TOP_KEYS, "")? {
        let v = match (k.as_str(), v) {
            ("oidc-issuers" | "meta-issuers", Value::Object(m)) => {
                let mut issuers = Map::new();
                for (name, issuer) in m {
                    let Value::Object(fields) = issuer else {
                        return Err(err(format!("{k}.{name:?}"), "must be an object"));
                    };
                    let renamed = rename(fields, &ISSUER_KEYS, &format!("{k}.{name:?}."))?;
                    issuers.insert(name, Value::Object(renamed.into_iter().collect()));
                }
                Value::Object(issuers)
            }
            ("ci-issuer-metadata", Value::Object(m)) => {
                let mut providers = Map::new();
                for (name, meta) in m {
                    let Value::Object(fields) = meta else {
                        return Err(err(format!("{k}.{name:?}"), "must be an object"));
                    };
                    let mut renamed: Map<String, Value> =
                        rename(fields, &METADATA_KEYS, &format!("{k}.{name:?}."))?
                            .into_iter()
                            .collect();
                    if let Some(Value::Object(templates)) = renamed.remove("extension-templates") {
                        let mut t = Map::new();
                        for (field, tmpl) in templates {
                            let key = Field::ALL
                                .into_iter()
                                .find(|f| {
                                    f.json_name().eq_ignore_ascii_case(&field)
                                        || f.yaml_key() == field
                                })
                                .map(|f| f.yaml_key().to_string())
                                .unwrap_or(field);
                            t.insert(key, tmpl);
                        }
                        renamed.insert("extension-templates".into(), Value::Object(t));
                    }
                    providers.insert(name, Value::Object(renamed));
                }
                Value::Object(providers)
            }
            (_, other) => other,
        };
        out.insert(k, v);
    }
    Ok(Value::Object(out))
}

fn validate(raw: RawConfig) -> Result<IdentityConfig, ConfigError> {
    let mut config = IdentityConfig::default();
    for (name, meta) in raw.ci_issuer_metadata.unwrap_or_default() {
        let path = format!("ci-issuer-metadata.{name:?}");
        let mut templates = Vec::new();
        for (key, template) in meta.extension_templates.unwrap_or_default() {
            let field = Field::from_config_key(&key).ok_or_else(|| {
                err(
                    format!("{path}.extension-templates.{key}"),
                    "unknown extension name",
                )
            })?;
            templates.push((field, template));
        }
        templates.sort_by_key(|(f, _)| *f);
        config.ci_metadata.insert(
            name,
            CiProviderMetadata {
                default_template_values: meta.default_template_values.unwrap_or_default(),
                extension_templates: templates,
                subject_alternative_name_template: meta
                    .subject_alternative_name_template
                    .unwrap_or_default(),
            },
        );
    }
    for (key, raw_issuer) in raw.oidc_issuers.unwrap_or_default() {
        let path = format!("oidc-issuers.{key:?}");
        let issuer = issuer(&path, &key, raw_issuer, false)?;
        if issuer.issuer_url != issuer.key {
            config.warnings.push(format!(
                "{path}.issuer-url: {:?} differs from the issuer's key; tokens are routed by the key and must carry iss = issuer-url, so no token can satisfy both",
                issuer.issuer_url
            ));
        }
        validate_issuer(&path, &issuer, false, &config.ci_metadata)?;
        config.issuers.push(issuer);
    }
    for (pattern, raw_issuer) in raw.meta_issuers.unwrap_or_default() {
        let path = format!("meta-issuers.{pattern:?}");
        let issuer = issuer(&path, &pattern, raw_issuer, true)?;
        validate_issuer(&path, &issuer, true, &config.ci_metadata)?;
        config.meta_issuers.push(issuer);
    }
    Ok(config)
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

fn issuer(path: &str, key: &str, raw: RawIssuer, meta: bool) -> Result<IssuerConfig, ConfigError> {
    let kind = raw
        .kind
        .filter(|t| !t.is_empty())
        .map(|t| IssuerType::parse(&t))
        .ok_or_else(|| err(format!("{path}.type"), "is required"))?;
    let issuer_url = if meta {
        key.to_string()
    } else {
        non_empty(raw.issuer_url).unwrap_or_else(|| key.to_string())
    };
    let issuer_claim = non_empty(raw.issuer_claim)
        .map(|p| {
            ClaimPath::parse(&p).map_err(|e| err(format!("{path}.issuer-claim"), e.to_string()))
        })
        .transpose()?;
    Ok(IssuerConfig {
        key: key.to_string(),
        issuer_url,
        client_id: non_empty(raw.client_id)
            .ok_or_else(|| err(format!("{path}.client-id"), "is required"))?,
        kind,
        ci_provider: non_empty(raw.ci_provider),
        issuer_claim,
        subject_domain: non_empty(raw.subject_domain),
        spiffe_trust_domain: non_empty(raw.spiffe_trust_domain),
        challenge_claim: non_empty(raw.challenge_claim),
        ca_cert: non_empty(raw.ca_cert),
        skip_email_verification: raw.skip_email_verification.unwrap_or(false),
        description: non_empty(raw.description),
        contact: non_empty(raw.contact),
        environment: non_empty(raw.environment),
        pattern: None,
    })
}

fn validate_issuer(
    path: &str,
    issuer: &IssuerConfig,
    meta: bool,
    ci_metadata: &BTreeMap<String, CiProviderMetadata>,
) -> Result<(), ConfigError> {
    if let Some(pem_text) = &issuer.ca_cert {
        let ok = crate::model::pem::parse_all(pem_text)
            .map(|blocks| blocks.iter().any(|b| b.label == "CERTIFICATE"))
            .unwrap_or(false);
        if !ok {
            return Err(err(
                format!("{path}.ca-cert"),
                "contains no PEM certificate",
            ));
        }
    }
    if issuer.issuer_claim.is_some() && issuer.kind != IssuerType::Email {
        return Err(err(
            format!("{path}.issuer-claim"),
            "is only allowed for issuers of type email",
        ));
    }
    if issuer.effective_challenge_claim().is_empty() {
        return Err(err(
            format!("{path}.type"),
            format!(
                "unknown issuer type {:?} and no challenge-claim configured",
                issuer.kind.as_str()
            ),
        ));
    }
    validate_kind(path, issuer, meta, ci_metadata)
}

/// The rules of one issuer type (trust domains, subject domains, CI provider names).
fn validate_kind(
    path: &str,
    issuer: &IssuerConfig,
    meta: bool,
    ci_metadata: &BTreeMap<String, CiProviderMetadata>,
) -> Result<(), ConfigError> {
    match &issuer.kind {
        IssuerType::Spiffe => {
            if meta {
                return Err(err(
                    format!("{path}.type"),
                    "spiffe issuers cannot be meta-issuers",
                ));
            }
            let td = issuer.spiffe_trust_domain.as_deref().ok_or_else(|| {
                err(
                    format!("{path}.spiffe-trust-domain"),
                    "is required for spiffe issuers",
                )
            })?;
            if !valid_trust_domain(td) {
                return Err(err(
                    format!("{path}.spiffe-trust-domain"),
                    format!("{td:?} is not a valid SPIFFE trust domain"),
                ));
            }
        }
        IssuerType::Uri if !meta => {
            let sd = issuer.subject_domain.as_deref().ok_or_else(|| {
                err(
                    format!("{path}.subject-domain"),
                    "is required for uri issuers",
                )
            })?;
            uri_subject_allowed(sd, &issuer.issuer_url)
                .map_err(|e| err(format!("{path}.subject-domain"), e.to_string()))?;
        }
        IssuerType::Username if !meta => {
            let sd = issuer.subject_domain.as_deref().ok_or_else(|| {
                err(
                    format!("{path}.subject-domain"),
                    "is required for username issuers",
                )
            })?;
            if sd.contains("://") {
                return Err(err(
                    format!("{path}.subject-domain"),
                    "must be a bare domain without a scheme for username issuers",
                ));
            }
            let issuer_url = url::Url::parse(&issuer.issuer_url)
                .map_err(|_| err(format!("{path}.issuer-url"), "must be a URL with a scheme"))?;
            let host = issuer_url.host_str().unwrap_or("");
            allowed_domain(sd, host)
                .map_err(|e| err(format!("{path}.subject-domain"), e.to_string()))?;
        }
        IssuerType::Uri | IssuerType::Username if meta && issuer.subject_domain.is_none() => {
            return Err(err(
                format!("{path}.subject-domain"),
                format!("is required for {} issuers", issuer.kind.as_str()),
            ));
        }
        IssuerType::CiProvider => {
            let name = issuer.ci_provider.as_deref().ok_or_else(|| {
                err(
                    format!("{path}.ci-provider"),
                    "is required for ci-provider issuers",
                )
            })?;
            if !ci_metadata.contains_key(name) {
                return Err(err(
                    format!("{path}.ci-provider"),
                    format!("{name:?} has no entry in ci-issuer-metadata"),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// SPIFFE trust domain syntax: lowercase letters, digits, `.`, `-`, `_`.
fn valid_trust_domain(td: &str) -> bool {
    !td.is_empty()
        && td
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Why a subject's domain does not belong to its issuer (Fulcio's wording).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// The subject is not a URL with a scheme.
    #[error("{0:?} must be a URL with a scheme")]
    SubjectNotUrl(String),
    /// The issuer URL is not a URL with a scheme.
    #[error("issuer URL {0:?} must have a scheme")]
    IssuerNotUrl(String),
    /// The subject and issuer URLs have different schemes.
    #[error("subject ({subject}) and issuer ({issuer}) URI schemes do not match")]
    Scheme {
        /// The subject URL's scheme.
        subject: String,
        /// The issuer URL's scheme.
        issuer: String,
    },
    /// A hostname has fewer than two labels.
    #[error("URI hostname too short: {0}")]
    TooShort(String),
    /// The subject's and issuer's hostnames differ in their last two labels.
    #[error("hostname top-level and second-level domains do not match: {subject}, {issuer}")]
    Mismatch {
        /// The subject's hostname.
        subject: String,
        /// The issuer's hostname.
        issuer: String,
    },
}

/// Fulcio's `isURISubjectAllowed`: same scheme, and the hostnames share their last two labels.
pub fn uri_subject_allowed(subject: &str, issuer: &str) -> Result<(), DomainError> {
    let s = url::Url::parse(subject).map_err(|_| DomainError::SubjectNotUrl(subject.into()))?;
    let i = url::Url::parse(issuer).map_err(|_| DomainError::IssuerNotUrl(issuer.into()))?;
    if s.scheme() != i.scheme() {
        return Err(DomainError::Scheme {
            subject: s.scheme().to_string(),
            issuer: i.scheme().to_string(),
        });
    }
    allowed_domain(s.host_str().unwrap_or(""), i.host_str().unwrap_or(""))
}

/// Fulcio's `isDomainAllowed`: both names have at least two labels and share the last two.
pub fn allowed_domain(subject: &str, issuer: &str) -> Result<(), DomainError> {
    let s: Vec<&str> = subject.split('.').collect();
    let i: Vec<&str> = issuer.split('.').collect();
    if s.len() < 2 {
        return Err(DomainError::TooShort(subject.into()));
    }
    if i.len() < 2 {
        return Err(DomainError::TooShort(issuer.into()));
    }
    if s[s.len() - 2..] != i[i.len() - 2..] {
        return Err(DomainError::Mismatch {
            subject: subject.into(),
            issuer: issuer.into(),
        });
    }
    Ok(())
}
