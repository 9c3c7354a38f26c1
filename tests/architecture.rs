//! The layering of `src/`, checked from the sources.
//!
//! Dependencies point inward only:
//! `server -> {api, reload} -> authority -> {oidc, identity, ca, ct} -> model`, with `config`,
//! `metrics`, `errors`, `files` and `ratelimit` as leaves. Every module under `src/` has a
//! row in [`RULES`] (a new module without one fails the test), and the crates that do IO are
//! confined to the files that own that IO: only `api` and `server` know actix-web, only the
//! SQLite store knows rusqlite, only the HTTP clients know reqwest.

use std::path::{Path, PathBuf};

fn sources(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(path).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The library's top-level modules, read from the directory (the binary's own files excluded).
fn modules() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if p.is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs").map(str::to_string)
            }
        })
        .filter(|m| !["lib", "main", "cli"].contains(&m.as_str()))
        .collect();
    out.sort();
    out
}

/// (module, the crate modules it may use besides itself)
const RULES: &[(&str, &[&str])] = &[
    ("errors", &[]),
    ("files", &[]),
    ("metrics", &[]),
    ("ratelimit", &[]),
    ("tls", &[]),
    ("model", &[]),
    ("runtime", &[]),
    ("signers", &["model", "metrics", "runtime"]),
    ("config", &["model"]),
    ("identity", &["model", "config"]),
    ("ca", &["model", "files", "signers"]),
    (
        "ct",
        &["model", "metrics", "errors", "files", "runtime", "signers"],
    ),
    ("oidc", &["model", "config", "metrics", "ratelimit"]),
    (
        "authority",
        &[
            "model",
            "config",
            "errors",
            "metrics",
            "oidc",
            "identity",
            "ca",
            "ct",
            "ratelimit",
        ],
    ),
    ("trust", &["model", "ct"]),
    ("client", &["model", "ct", "oidc", "trust"]),
    (
        "api",
        &[
            "authority",
            "ca",
            "config",
            "ct",
            "errors",
            "identity",
            "metrics",
            "model",
            "ratelimit",
        ],
    ),
    (
        "reload",
        &[
            "authority",
            "ca",
            "config",
            "ct",
            "errors",
            "metrics",
            "model",
            "oidc",
            "tls",
        ],
    ),
    ("grpc", &["api", "authority", "metrics", "runtime"]),
    (
        "monitor",
        &[
            "config", "ct", "errors", "files", "metrics", "model", "trust",
        ],
    ),
    (
        "server",
        &[
            "grpc",
            "api",
            "authority",
            "ca",
            "config",
            "ct",
            "errors",
            "metrics",
            "model",
            "oidc",
            "ratelimit",
            "reload",
            "tls",
            "trust",
            "files",
            "identity",
            "signers",
        ],
    ),
    (
        "fuzzing",
        &[
            "api",
            "authority",
            "ca",
            "config",
            "ct",
            "identity",
            "model",
            "oidc",
        ],
    ),
];

/// (external crate, the files under `src/` that may name it)
const CONFINED: &[(&str, &[&str])] = &[
    (
        "actix_web",
        &[
            "api/mod.rs",
            "api/ctlog.rs",
            "api/explorer.rs",
            "api/error.rs",
            "api/json.rs",
            "api/middleware.rs",
            "server.rs",
            "main.rs",
        ],
    ),
    ("actix_rt", &["server.rs", "main.rs"]),
    ("actix_server", &["server.rs"]),
    (
        "rusqlite",
        &[
            "ct/log/store/mod.rs",
            "ct/log/store/sqlite.rs",
            "ct/log/store/search.rs",
        ],
    ),
    ("cryptoki", &["signers/pkcs11.rs"]),
    ("tonic", &["grpc/mod.rs", "grpc/serve.rs"]),
    ("hyper", &["grpc/serve.rs"]),
    ("aws_sdk_kms", &["signers/kms.rs"]),
    ("aws_config", &["signers/kms.rs"]),
    (
        "reqwest",
        &[
            "oidc/fetch.rs",
            "ct/client.rs",
            "client.rs",
            "main.rs",
            "monitor/mod.rs",
            "monitor/source.rs",
        ],
    ),
];

/// The crate modules one line of code names: `crate::m` and every head of `crate::{a, b::c}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `mycrate::` or `$crate::`
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut head = true;
            let mut word = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => head = true,
                    c if c.is_alphanumeric() || c == '_' => {
                        if head {
                            word.push(c)
                        }
                    }
                    _ => {
                        if !word.is_empty() {
                            out.push(std::mem::take(&mut word));
                        }
                        if c == ':' {
                            head = false;
                        }
                    }
                }
            }
            if !word.is_empty() {
                out.push(word);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

/// Lines of Rust code in a file with comments removed; a grouped `use crate::{...}` that
/// spans lines is joined into its first line.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut open: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("").to_string();
        match open {
            Some(i) => {
                out[i].1.push_str(&code);
                if code.contains("};") {
                    open = None;
                }
            }
            None => {
                if code.contains("crate::{") && !code.contains('}') {
                    open = Some(out.len());
                }
                out.push((n + 1, code));
            }
        }
    }
    out
}

#[test]
fn every_module_has_a_rule() {
    let ruled: Vec<&str> = RULES.iter().map(|r| r.0).collect();
    let mods = modules();
    let missing: Vec<&String> = mods
        .iter()
        .filter(|m| !ruled.contains(&m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layering rule: {missing:?}"
    );
    let stale: Vec<&&str> = ruled
        .iter()
        .filter(|r| !mods.iter().any(|m| m == *r))
        .collect();
    assert!(
        stale.is_empty(),
        "rules for modules that do not exist: {stale:?}"
    );
}

#[test]
fn inner_modules_do_not_import_outer_ones() {
    let mods = modules();
    let mut violations = Vec::new();
    for (module, allowed) in RULES {
        let dir = src().join(module);
        let files = if dir.is_dir() {
            sources(&dir)
        } else {
            sources(&dir.with_extension("rs"))
        };
        assert!(!files.is_empty(), "no sources for {module}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (n, code) in code_lines(&text) {
                for used in crate_paths(&code) {
                    let known = mods.contains(&used);
                    if known && used != *module && !allowed.contains(&used.as_str()) {
                        violations
                            .push(format!("{}:{n}: {module} uses crate::{used}", f.display()));
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
fn io_crates_stay_in_the_files_that_own_that_io() {
    let root = src();
    let mut violations = Vec::new();
    for f in sources(&root) {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, code) in code_lines(&text) {
            for (krate, owners) in CONFINED {
                let named = code.match_indices(&format!("{krate}::")).any(|(i, _)| {
                    i == 0 || !code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if named && !owners.contains(&rel.as_str()) {
                    violations.push(format!("src/{rel}:{n}: names {krate}"));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "IO crates outside their owners:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_matchers_can_fail() {
    assert_eq!(crate_paths("use crate::api::AppState;"), ["api"]);
    assert_eq!(
        crate_paths("use crate::{api::{a, b}, model, ct::log::X};"),
        ["api", "model", "ct"]
    );
    assert_eq!(
        crate_paths("use mycrate::api; $crate::x"),
        Vec::<String>::new()
    );
    let joined = code_lines("use crate::{\n    server::X,\n    model, // c\n};\nfn f() {}");
    assert_eq!(joined.len(), 2);
    assert_eq!(crate_paths(&joined[0].1), ["server", "model"]);
    assert_eq!(joined[1].0, 5);
}
