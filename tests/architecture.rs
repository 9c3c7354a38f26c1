//! Dependencies point inward only: `api -> authority -> {oidc, identity, ca, ct} -> model`.
//! This test reads the sources and fails when an inner module reaches outward, or when a
//! module that must not do network IO imports an HTTP or async runtime crate.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = dir.with_extension("rs");
    if dir.is_file() {
        return vec![dir.to_path_buf()];
    }
    if !dir.exists() && file.is_file() {
        return vec![file];
    }
    let path = dir;
    for e in std::fs::read_dir(path).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// (module, crate modules it may use, external crates it must not use)
const RULES: &[(&str, &[&str], &[&str])] = &[
    (
        "model",
        &["model"],
        &["actix_web", "actix_rt", "reqwest", "tokio", "rusqlite"],
    ),
    (
        "config",
        &["model", "config"],
        &["actix_web", "reqwest", "tokio", "rusqlite"],
    ),
    (
        "identity",
        &["model", "config", "identity"],
        &["actix_web", "reqwest", "tokio", "rusqlite"],
    ),
    (
        "ca",
        &["model", "ca"],
        &["actix_web", "actix_rt", "reqwest", "tokio", "rusqlite"],
    ),
    (
        "oidc",
        &["model", "config", "metrics", "ratelimit", "oidc"],
        &["actix_web", "actix_rt", "rusqlite"],
    ),
    (
        "ct",
        &["model", "metrics", "ct"],
        &["actix_web", "actix_rt"],
    ),
    ("metrics", &["metrics"], &["actix_web", "reqwest", "tokio"]),
    ("files.rs", &["files"], &["actix_web", "reqwest", "tokio"]),
    (
        "ratelimit.rs",
        &["ratelimit"],
        &["actix_web", "reqwest", "tokio"],
    ),
    ("tls.rs", &["tls"], &["actix_web", "reqwest", "tokio"]),
    (
        "authority.rs",
        &[
            "model",
            "config",
            "metrics",
            "oidc",
            "identity",
            "ca",
            "ct",
            "ratelimit",
            "authority",
        ],
        &["actix_web", "actix_rt"],
    ),
];

const MODULES: &[&str] = &[
    "api",
    "authority",
    "ca",
    "config",
    "ct",
    "identity",
    "metrics",
    "model",
    "oidc",
    "ratelimit",
    "reload",
    "serve",
    "tls",
];

#[test]
fn inner_modules_do_not_import_outer_ones() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (module, allowed, forbidden_crates) in RULES {
        let files = sources(&src.join(module));
        assert!(!files.is_empty(), "no sources for {module}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for m in MODULES {
                    let pat = format!("crate::{m}");
                    let uses = code.match_indices(&pat).any(|(i, _)| {
                        !code[i + pat.len()..]
                            .starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                    if uses && !allowed.contains(m) {
                        violations.push(format!(
                            "{}:{}: {module} uses crate::{m}",
                            f.display(),
                            n + 1
                        ));
                    }
                }
                for c in *forbidden_crates {
                    if code.contains(&format!("{c}::")) {
                        violations.push(format!("{}:{}: {module} uses {c}", f.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_rule_table_can_fail() {
    // A line that breaks the rule is detected by the same matcher.
    let code = "use crate::api::AppState;";
    assert!(
        code.match_indices("crate::api")
            .any(|(i, _)| !code[i + 10..].starts_with(char::is_alphanumeric))
    );
}
