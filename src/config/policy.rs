//! Issuance policies (`--issuance-policy FILE`): which verified tokens of a trusted issuer
//! may get a certificate, decided on their claims. A separate file, so the identity
//! config stays exactly Fulcio's.
//!
//! ```yaml
//! default: allow            # or deny: issuers without a policy get nothing
//! policies:
//!   - name: acme-release
//!     issuer: https://token.actions.githubusercontent.com
//!     allow:                # every listed claim must match one of its patterns
//!       repository_owner: ["acme"]
//!       ref: ["refs/heads/main", "refs/tags/v*"]
//!     deny:                 # any match refuses, even when allow matched
//!       job_workflow_ref: ["acme/sandbox/*"]
//! ```
//!
//! Patterns are globs: `*` matches any run of characters (`/` included), everything else
//! is literal. A claim is a top-level claim of the token; numbers and booleans match their
//! JSON text, an array matches when one of its scalar elements does, an absent claim never
//! matches an allow pattern (nor a deny pattern). Several policies for one issuer: a token
//! must satisfy at least one; a refusal names the issuer's first policy (file order) and
//! its first failing claim (claims are checked in name order).

use super::identity::{ConfigError, IdentityConfig};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Longest pattern accepted (a glob is matched in time proportional to pattern x value).
const MAX_PATTERN: usize = 1024;

/// A parsed, validated policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuancePolicy {
    /// `default: deny`: an issuer without a policy gets nothing.
    pub default_deny: bool,
    /// The policies in file order.
    pub policies: Vec<Policy>,
}

/// One named policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Unique; appears in errors, logs and metrics-adjacent audit records.
    pub name: String,
    /// The identity config key it applies to: an exact issuer URL or a meta-issuer
    /// pattern.
    pub issuer: String,
    /// Claims that must each match one of their patterns, in claim-name order (the order
    /// they are checked and reported in).
    pub allow: Vec<(String, Vec<String>)>,
    /// Claims that refuse the token when one matches, in claim-name order.
    pub deny: Vec<(String, Vec<String>)>,
}

/// Why a policy refused a token: what the client is told (no claim value is echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The issuer has no policy and the file says `default: deny`.
    #[error("no issuance policy allows tokens from this issuer (default: deny)")]
    NoPolicy,
    /// A policy's allow list did not match.
    #[error("refused by issuance policy {policy:?}: claim {claim:?} {}", if *.absent { "is absent" } else { "matches no allowed pattern" })]
    NotAllowed {
        /// The policy (the first of the issuer's, in file order).
        policy: String,
        /// The first claim that failed.
        claim: String,
        /// The token has no such claim.
        absent: bool,
    },
    /// A policy's deny list matched.
    #[error("refused by issuance policy {policy:?}: claim {claim:?} matches a denied pattern")]
    Denied {
        /// The policy.
        policy: String,
        /// The claim that matched.
        claim: String,
    },
}

impl Refusal {
    /// The policy that refused, if one did.
    pub fn policy(&self) -> Option<&str> {
        match self {
            Refusal::NoPolicy => None,
            Refusal::NotAllowed { policy, .. } | Refusal::Denied { policy, .. } => Some(policy),
        }
    }
}

fn err(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        reason: reason.into(),
    }
}

/// `*` matches any run of characters; everything else is literal.
pub fn glob_matches(pattern: &str, value: &str) -> bool {
    let (p, v) = (pattern.as_bytes(), value.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < v.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == v[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == b'*')
}

/// The texts a claim value is matched as: a string itself, a number or boolean its JSON
/// text, an array each scalar element; objects and null match nothing.
fn claim_texts(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Number(_) | Value::Bool(_) => vec![v.to_string()],
        Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_array())
            .flat_map(claim_texts)
            .collect(),
        _ => Vec::new(),
    }
}

fn any_match(patterns: &[String], value: &Value) -> bool {
    claim_texts(value)
        .iter()
        .any(|t| patterns.iter().any(|p| glob_matches(p, t)))
}

impl Policy {
    fn check(&self, claims: &Map<String, Value>) -> Result<(), Refusal> {
        for (claim, patterns) in &self.allow {
            match claims.get(claim) {
                Some(v) if any_match(patterns, v) => {}
                found => {
                    return Err(Refusal::NotAllowed {
                        policy: self.name.clone(),
                        claim: claim.clone(),
                        absent: found.is_none(),
                    });
                }
            }
        }
        for (claim, patterns) in &self.deny {
            if claims.get(claim).is_some_and(|v| any_match(patterns, v)) {
                return Err(Refusal::Denied {
                    policy: self.name.clone(),
                    claim: claim.clone(),
                });
            }
        }
        Ok(())
    }
}

impl IssuancePolicy {
    /// Parses a policy file (YAML or JSON) and checks it against the identity config:
    /// every policy names an issuer or meta-issuer pattern the config trusts.
    pub fn parse(text: &str, identity: &IdentityConfig) -> Result<IssuancePolicy, ConfigError> {
        let v: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| err("", format!("invalid JSON: {e}")))?
        } else {
            serde_norway::from_str(text).map_err(|e| err("", e.to_string()))?
        };
        let Value::Object(top) = v else {
            return Err(err("", "the policy file must be a mapping with `policies`"));
        };
        let mut default_deny = false;
        let mut policies = Vec::new();
        for (k, v) in &top {
            match k.as_str() {
                "default" => {
                    default_deny = match v.as_str() {
                        Some("allow") => false,
                        Some("deny") => true,
                        _ => return Err(err("default", "must be `allow` or `deny`")),
                    }
                }
                "policies" => {
                    let Value::Array(items) = v else {
                        return Err(err("policies", "must be a list"));
                    };
                    for (i, item) in items.iter().enumerate() {
                        policies.push(parse_policy(item, &format!("policies[{i}]"), identity)?);
                    }
                }
                other => return Err(err(other, "unknown field (expected default, policies)")),
            }
        }
        let mut seen = BTreeMap::new();
        for (i, p) in policies.iter().enumerate() {
            if let Some(first) = seen.insert(p.name.clone(), i) {
                return Err(err(
                    format!("policies[{i}].name"),
                    format!("{:?} is already the name of policies[{first}]", p.name),
                ));
            }
        }
        Ok(IssuancePolicy {
            default_deny,
            policies,
        })
    }

    /// Decides whether a verified token of the issuer configured under `issuer_key` may
    /// get a certificate.
    pub fn check(&self, issuer_key: &str, claims: &Map<String, Value>) -> Result<(), Refusal> {
        let mut first_refusal = None;
        for p in self.policies.iter().filter(|p| p.issuer == issuer_key) {
            match p.check(claims) {
                Ok(()) => return Ok(()),
                Err(r) => {
                    first_refusal.get_or_insert(r);
                }
            }
        }
        match first_refusal {
            Some(r) => Err(r),
            None if self.default_deny => Err(Refusal::NoPolicy),
            None => Ok(()),
        }
    }

    /// Per trusted issuer, what the policy allows: for `brevis config check`.
    pub fn describe(&self, identity: &IdentityConfig) -> String {
        let mut out = String::new();
        let keys = identity
            .issuers
            .iter()
            .chain(&identity.meta_issuers)
            .map(|c| c.key.as_str());
        for key in keys {
            let mine: Vec<&Policy> = self.policies.iter().filter(|p| p.issuer == key).collect();
            out.push_str(&format!("{key}\n"));
            if mine.is_empty() {
                out.push_str(if self.default_deny {
                    "  refused: no policy (default: deny)\n"
                } else {
                    "  unrestricted: no policy (default: allow)\n"
                });
                continue;
            }
            out.push_str("  allowed when one of these policies holds:\n");
            for p in mine {
                out.push_str(&format!("  - {}\n", p));
            }
        }
        out
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |rules: &[(String, Vec<String>)]| {
            rules
                .iter()
                .map(|(c, p)| format!("{c} ~ {}", p.join(" | ")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(f, "{}:", self.name)?;
        if self.allow.is_empty() {
            write!(f, " any token")?;
        } else {
            write!(f, " {}", list(&self.allow))?;
        }
        if !self.deny.is_empty() {
            write!(f, "; never {}", list(&self.deny))?;
        }
        Ok(())
    }
}

fn parse_policy(v: &Value, path: &str, identity: &IdentityConfig) -> Result<Policy, ConfigError> {
    let Value::Object(m) = v else {
        return Err(err(path, "must be a mapping (name, issuer, allow, deny)"));
    };
    let text = |k: &str| -> Result<String, ConfigError> {
        match m.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(_) => Err(err(format!("{path}.{k}"), "must be a non-empty string")),
            None => Err(err(format!("{path}.{k}"), "is required")),
        }
    };
    for k in m.keys() {
        if !["name", "issuer", "allow", "deny"].contains(&k.as_str()) {
            return Err(err(
                format!("{path}.{k}"),
                "unknown field (expected name, issuer, allow, deny)",
            ));
        }
    }
    let name = text("name")?;
    let issuer = text("issuer")?;
    let trusted = identity
        .issuers
        .iter()
        .chain(&identity.meta_issuers)
        .any(|c| c.key == issuer);
    if !trusted {
        return Err(err(
            format!("{path}.issuer"),
            format!(
                "{issuer:?} is neither an issuer URL nor a meta-issuer pattern of the identity config"
            ),
        ));
    }
    let rules = |k: &str| -> Result<Vec<(String, Vec<String>)>, ConfigError> {
        let Some(v) = m.get(k) else {
            return Ok(Vec::new());
        };
        let Value::Object(claims) = v else {
            return Err(err(
                format!("{path}.{k}"),
                "must map claim names to lists of patterns",
            ));
        };
        let mut out = Vec::new();
        for (claim, patterns) in claims {
            let at = format!("{path}.{k}.{claim}");
            if claim.is_empty() {
                return Err(err(at, "a claim name cannot be empty"));
            }
            let list = match patterns {
                Value::Array(items) if !items.is_empty() => items,
                _ => return Err(err(at, "must be a non-empty list of patterns")),
            };
            let mut pats = Vec::new();
            for (i, p) in list.iter().enumerate() {
                let p = match p {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => p.to_string(),
                    _ => return Err(err(format!("{at}[{i}]"), "a pattern must be a string")),
                };
                if p.is_empty() || p.len() > MAX_PATTERN {
                    return Err(err(
                        format!("{at}[{i}]"),
                        format!("a pattern must have 1 to {MAX_PATTERN} characters"),
                    ));
                }
                pats.push(p);
            }
            out.push((claim.clone(), pats));
        }
        Ok(out)
    };
    let allow = rules("allow")?;
    let deny = rules("deny")?;
    if allow.is_empty() && deny.is_empty() {
        return Err(err(
            path,
            "a policy needs `allow` or `deny` (an issuer without restrictions needs no policy)",
        ));
    }
    Ok(Policy {
        name,
        issuer,
        allow,
        deny,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity() -> IdentityConfig {
        IdentityConfig::parse(
            "oidc-issuers:\n  https://token.actions.githubusercontent.com:\n    issuer-url: https://token.actions.githubusercontent.com\n    client-id: sigstore\n    type: github-workflow\n  https://accounts.example.com:\n    issuer-url: https://accounts.example.com\n    client-id: sigstore\n    type: email\nmeta-issuers:\n  https://*.example.org:\n    client-id: sigstore\n    type: email\n",
        )
        .unwrap()
    }

    #[test]
    fn globs_match_any_run_and_nothing_else() {
        for (p, v, want) in [
            ("refs/tags/v*", "refs/tags/v1.2.3", true),
            ("refs/tags/v*", "refs/tags/x1", false),
            ("*@example.com", "a@example.com", true),
            ("*@example.com", "a@example.com.evil", false),
            ("acme/*", "acme/a/b/c", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*", "", true),
            ("a?c", "abc", false),
            ("a.c", "abc", false),
        ] {
            assert_eq!(glob_matches(p, v), want, "{p} vs {v}");
        }
    }

    const FILE: &str = "policies:\n  - name: acme-release\n    issuer: https://token.actions.githubusercontent.com\n    allow:\n      repository_owner: [acme]\n      ref: [refs/heads/main, refs/tags/v*]\n    deny:\n      job_workflow_ref: [acme/sandbox/*]\n  - name: acme-numbers\n    issuer: https://token.actions.githubusercontent.com\n    allow:\n      repository_owner_id: [4242]\n      run_attempt: [\"1\"]\n  - name: staff\n    issuer: https://accounts.example.com\n    allow:\n      email: ['*@example.com']\n";

    #[test]
    fn allow_deny_absent_and_non_string_claims() {
        let p = IssuancePolicy::parse(FILE, &identity()).unwrap();
        let gh = "https://token.actions.githubusercontent.com";
        let ok = json!({"repository_owner": "acme", "ref": "refs/tags/v2", "job_workflow_ref": "acme/app/.github/workflows/r.yml@refs/tags/v2"});
        assert_eq!(p.check(gh, ok.as_object().unwrap()), Ok(()));
        let wrong = json!({"repository_owner": "evil", "ref": "refs/heads/main"});
        assert_eq!(
            p.check(gh, wrong.as_object().unwrap()),
            Err(Refusal::NotAllowed {
                policy: "acme-release".into(),
                claim: "repository_owner".into(),
                absent: false
            })
        );
        let denied = json!({"repository_owner": "acme", "ref": "refs/heads/main", "job_workflow_ref": "acme/sandbox/x.yml@refs/heads/main"});
        assert_eq!(
            p.check(gh, denied.as_object().unwrap()),
            Err(Refusal::Denied {
                policy: "acme-release".into(),
                claim: "job_workflow_ref".into()
            })
        );
        let absent = json!({"ref": "refs/heads/main"});
        let r = p.check(gh, absent.as_object().unwrap()).unwrap_err();
        assert!(
            r.to_string().contains("\"repository_owner\" is absent"),
            "{r}"
        );
        // Numbers and booleans match their JSON text; the second policy suffices.
        let numbers = json!({"repository_owner_id": 4242, "run_attempt": 1});
        assert_eq!(p.check(gh, numbers.as_object().unwrap()), Ok(()));
        let not = json!({"repository_owner_id": "4243", "run_attempt": 1});
        assert!(p.check(gh, not.as_object().unwrap()).is_err());
        // An array claim matches when an element does.
        let staff = json!({"email": ["x@other.org", "a@example.com"]});
        assert_eq!(
            p.check("https://accounts.example.com", staff.as_object().unwrap()),
            Ok(())
        );
        // An issuer without a policy is unrestricted unless default: deny.
        assert_eq!(p.check("https://*.example.org", &Map::new()), Ok(()));
        let strict = IssuancePolicy::parse(&format!("default: deny\n{FILE}"), &identity()).unwrap();
        assert_eq!(
            strict.check("https://*.example.org", &Map::new()),
            Err(Refusal::NoPolicy)
        );
        assert!(strict.describe(&identity()).contains("refused: no policy"));
    }

    #[test]
    fn broken_files_name_the_field() {
        for (text, path) in [
            ("policies: {}", "policies"),
            ("default: maybe", "default"),
            ("polices: []", "polices"),
            (
                "policies:\n  - issuer: https://accounts.example.com\n    allow: {email: [a]}",
                "policies[0].name",
            ),
            (
                "policies:\n  - name: x\n    issuer: https://other.example\n    allow: {email: [a]}",
                "policies[0].issuer",
            ),
            (
                "policies:\n  - name: x\n    issuer: https://accounts.example.com\n    allow: {email: []}",
                "policies[0].allow.email",
            ),
            (
                "policies:\n  - name: x\n    issuer: https://accounts.example.com\n    allow: {email: [{a: b}]}",
                "policies[0].allow.email[0]",
            ),
            (
                "policies:\n  - name: x\n    issuer: https://accounts.example.com",
                "policies[0]",
            ),
            (
                "policies:\n  - name: x\n    issuer: https://accounts.example.com\n    alow: {email: [a]}",
                "policies[0].alow",
            ),
            (
                "policies:\n  - name: x\n    issuer: https://accounts.example.com\n    allow: {email: [a]}\n  - name: x\n    issuer: https://accounts.example.com\n    allow: {email: [b]}",
                "policies[1].name",
            ),
        ] {
            let e = IssuancePolicy::parse(text, &identity()).unwrap_err();
            assert_eq!(e.path, path, "{text}: {e}");
        }
        // A meta-issuer pattern is a valid issuer.
        IssuancePolicy::parse(
            "policies:\n  - name: m\n    issuer: https://*.example.org\n    allow: {email: [a]}",
            &identity(),
        )
        .unwrap();
    }
}
