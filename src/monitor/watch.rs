//! The monitor's watch file: named rules over a logged certificate's identity (any SAN),
//! OIDC issuer and Sigstore extensions. Every condition of one watch must hold. A watch
//! that could never match is refused when the file is read, naming the field's path.

use crate::config::policy::glob_matches;
use crate::ct::facts::{self, CertFacts};
use serde_json::Value;

/// Why a watch file is refused: the field's path and the reason.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{path}: {reason}")]
pub struct WatchError {
    /// Where in the file (`watches[2].extensions.foo`); empty for the whole file.
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

fn err(path: impl Into<String>, reason: impl Into<String>) -> WatchError {
    WatchError {
        path: path.into(),
        reason: reason.into(),
    }
}

/// One named rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// The watch's name (reported in events and metrics).
    pub name: String,
    identity: Option<String>,
    identity_pattern: Option<String>,
    issuer: Option<String>,
    extensions: Vec<(u8, String)>,
}

impl Watch {
    /// Whether every condition holds for `f`. The identity conditions hold if any SAN
    /// satisfies them.
    pub fn matches(&self, f: &CertFacts) -> bool {
        if let Some(id) = &self.identity
            && !f.sans.iter().any(|s| &s.value == id)
        {
            return false;
        }
        if let Some(p) = &self.identity_pattern
            && !f.sans.iter().any(|s| glob_matches(p, &s.value))
        {
            return false;
        }
        if let Some(iss) = &self.issuer
            && f.oidc_issuer.as_deref() != Some(iss.as_str())
        {
            return false;
        }
        self.extensions
            .iter()
            .all(|(arc, want)| f.extension(*arc) == Some(want.as_str()))
    }
}

/// A parsed watch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchFile {
    /// The watches in file order.
    pub watches: Vec<Watch>,
}

impl WatchFile {
    /// Parses YAML or JSON.
    pub fn parse(text: &str) -> Result<WatchFile, WatchError> {
        let v: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| err("", format!("invalid JSON: {e}")))?
        } else {
            serde_norway::from_str(text).map_err(|e| err("", e.to_string()))?
        };
        let Value::Object(top) = v else {
            return Err(err("", "the watch file must be a mapping with `watches`"));
        };
        let mut watches: Vec<Watch> = Vec::new();
        for (k, v) in &top {
            if k != "watches" {
                return Err(err(k.as_str(), "unknown field (expected watches)"));
            }
            let Value::Array(items) = v else {
                return Err(err("watches", "must be a list"));
            };
            for (i, item) in items.iter().enumerate() {
                let path = format!("watches[{i}]");
                let w = parse_watch(item, &path)?;
                if watches.iter().any(|o| o.name == w.name) {
                    return Err(err(format!("{path}.name"), "duplicate watch name"));
                }
                watches.push(w);
            }
        }
        if watches.is_empty() {
            return Err(err(
                "watches",
                "no watches: the monitor would report nothing",
            ));
        }
        Ok(WatchFile { watches })
    }

    /// The names of the watches that match `f`.
    pub fn matching<'a>(&'a self, f: &CertFacts) -> impl Iterator<Item = &'a Watch> {
        self.watches.iter().filter(move |w| w.matches(f))
    }
}

fn text(v: &Value, path: &str) -> Result<String, WatchError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::String(_) => Err(err(path, "must not be empty")),
        _ => Err(err(path, "must be a string")),
    }
}

fn parse_watch(v: &Value, path: &str) -> Result<Watch, WatchError> {
    let Value::Object(m) = v else {
        return Err(err(path, "must be a mapping"));
    };
    let mut w = Watch {
        name: String::new(),
        identity: None,
        identity_pattern: None,
        issuer: None,
        extensions: Vec::new(),
    };
    for (k, v) in m {
        let p = format!("{path}.{k}");
        match k.as_str() {
            "name" => w.name = text(v, &p)?,
            "identity" => w.identity = Some(text(v, &p)?),
            "identity-pattern" => w.identity_pattern = Some(text(v, &p)?),
            "issuer" => w.issuer = Some(text(v, &p)?),
            "extensions" => {
                let Value::Object(exts) = v else {
                    return Err(err(p, "must be a mapping of extension name to value"));
                };
                if exts.is_empty() {
                    return Err(err(p, "is empty: it would not restrict anything"));
                }
                for (name, value) in exts {
                    let ep = format!("{p}.{name}");
                    let arc = facts::extension_arc(name).ok_or_else(|| {
                        err(
                            ep.as_str(),
                            "unknown extension (use Fulcio's names, e.g. source-repository-uri, or a dotted OID under 1.3.6.1.4.1.57264.1)",
                        )
                    })?;
                    w.extensions.push((arc, text(value, &ep)?));
                }
            }
            other => {
                return Err(err(
                    p,
                    format!(
                        "unknown field `{other}` (expected name, identity, identity-pattern, issuer, extensions)"
                    ),
                ));
            }
        }
    }
    if w.name.is_empty() {
        return Err(err(format!("{path}.name"), "is required"));
    }
    if w.identity.is_none()
        && w.identity_pattern.is_none()
        && w.issuer.is_none()
        && w.extensions.is_empty()
    {
        return Err(err(
            path,
            "has no condition: give identity, identity-pattern, issuer or extensions",
        ));
    }
    if let Some(p) = &w.identity_pattern
        && p.chars().all(|c| c == '*')
        && w.issuer.is_none()
        && w.extensions.is_empty()
    {
        return Err(err(
            format!("{path}.identity-pattern"),
            "matches every certificate on its own; add issuer or extensions, or narrow it",
        ));
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ct::facts::San;
    use std::collections::BTreeMap;

    fn facts(sans: &[(&'static str, &str)], issuer: &str, exts: &[(u8, &str)]) -> CertFacts {
        let mut extensions = BTreeMap::new();
        for (a, v) in exts {
            extensions.insert(*a, Some(v.to_string()));
        }
        CertFacts {
            precertificate: true,
            serial: "01".into(),
            not_before: 0,
            not_after: 600,
            issuer_dn: "CN=x".into(),
            sans: sans
                .iter()
                .map(|(k, v)| San {
                    kind: k,
                    value: v.to_string(),
                })
                .collect(),
            oidc_issuer: Some(issuer.into()),
            extensions,
        }
    }

    const FILE: &str = r#"
watches:
  - name: release
    identity: "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
  - name: staff
    identity-pattern: "*@example.com"
    issuer: "https://accounts.example.com"
  - name: acme-repos
    extensions:
      source-repository-owner-uri: "https://github.com/acme"
"#;

    #[test]
    fn the_issue_example_parses_and_matches() {
        let w = WatchFile::parse(FILE).unwrap();
        let names = |f: &CertFacts| w.matching(f).map(|w| w.name.clone()).collect::<Vec<_>>();
        let staff = facts(
            &[("email", "alice@example.com")],
            "https://accounts.example.com",
            &[],
        );
        assert_eq!(names(&staff), ["staff"]);
        let other_issuer = facts(&[("email", "alice@example.com")], "https://other", &[]);
        assert!(names(&other_issuer).is_empty());
        let release = facts(
            &[(
                "uri",
                "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
            )],
            "https://token.actions.githubusercontent.com",
            &[(16, "https://github.com/acme")],
        );
        assert_eq!(names(&release), ["release", "acme-repos"]);
        let other_owner = facts(
            &[("uri", "https://github.com/evil/app/x.yml@refs/heads/main")],
            "https://token.actions.githubusercontent.com",
            &[(16, "https://github.com/evil")],
        );
        assert!(names(&other_owner).is_empty());
    }

    #[test]
    fn watches_that_cannot_work_are_refused_with_their_path() {
        let cases = [
            ("watches: []", "watches"),
            ("watches:\n  - name: a\n", "watches[0]"),
            ("watches:\n  - identity: x\n", "watches[0].name"),
            (
                "watches:\n  - name: a\n    extensions:\n      no-such: x\n",
                "watches[0].extensions.no-such",
            ),
            (
                "watches:\n  - name: a\n    extensions: {}\n",
                "watches[0].extensions",
            ),
            (
                "watches:\n  - name: a\n    identity: \"\"\n",
                "watches[0].identity",
            ),
            (
                "watches:\n  - name: a\n    identiy: x\n",
                "watches[0].identiy",
            ),
            (
                "watches:\n  - name: a\n    identity: x\n  - name: a\n    identity: y\n",
                "watches[1].name",
            ),
            (
                "watches:\n  - name: a\n    identity-pattern: '*'\n",
                "watches[0].identity-pattern",
            ),
            ("other: 1", "other"),
        ];
        for (text, path) in cases {
            let e = WatchFile::parse(text).unwrap_err();
            assert_eq!(e.path, path, "{text}: {e}");
        }
    }

    #[test]
    fn dotted_oids_and_json_names_work() {
        let w = WatchFile::parse(
            r#"{"watches":[{"name":"r","extensions":{"1.3.6.1.4.1.57264.1.12":"https://github.com/acme/app","SourceRepositoryRef":"refs/heads/main"}}]}"#,
        )
        .unwrap();
        let f = facts(
            &[("uri", "x")],
            "i",
            &[(12, "https://github.com/acme/app"), (14, "refs/heads/main")],
        );
        assert_eq!(w.matching(&f).count(), 1);
        let g = facts(&[("uri", "x")], "i", &[(12, "https://github.com/acme/app")]);
        assert_eq!(w.matching(&g).count(), 0);
    }
}
