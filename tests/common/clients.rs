//! Real Sigstore clients as child processes (sigstore-python, sigstore-js) and the trust
//! material they read, for any brevis deployment.

use super::{Brevis, python, repo_root};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs a client script with a hard timeout: a client that hangs fails the test.
pub fn run_client(mut cmd: Command, what: &str) -> Value {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|_| {
        panic!(
            "{what} printed no result: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn python_client(trust: &Path, token: &Path, identity: &str, issuer: &str) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("tests/interop/python_sign.py"))
        .arg(trust)
        .arg(token)
        .arg(identity)
        .arg(issuer);
    run_client(cmd, "sigstore-python")
}

pub fn js_client(url: &str, root: &Path, token: &Path, san: &str, issuer: &str) -> Value {
    let dir = repo_root().join("tests/interop");
    assert!(
        dir.join("node_modules/@sigstore/sign").exists(),
        "run scripts/test.sh (npm ci in tests/interop)"
    );
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .arg("js_sign.mjs")
        .arg(url)
        .arg(root)
        .arg(token)
        .arg(san)
        .arg(issuer);
    run_client(cmd, "sigstore-js")
}

/// The sigstore crate's client and verifier (tests/sigstore-rs) against `url`.
pub fn sigstore_rs_client(url: &str, root: &Path, token: &Path, san: &str, issuer: &str) -> Value {
    let bin = Path::new(super::brevis_bin()).with_file_name("sigstore-rs-interop");
    assert!(
        bin.exists(),
        "{} missing: run scripts/test.sh (builds tests/sigstore-rs)",
        bin.display()
    );
    let mut cmd = Command::new(bin);
    cmd.arg(url).arg(root).arg(token).arg(san).arg(issuer);
    run_client(cmd, "sigstore crate")
}

/// Writes `brevis trust-config` output for `brevis` into `out` (trusted_root.json,
/// signing_config.json, client_trust_config.json): its CA chain (`chain`, or the data
/// directory's), its embedded CT log, `extra` flags (rotation windows), and a Rekor key only because sigstore-python insists
/// on one.
pub fn trust_config(brevis: &Brevis, out: &Path, chain: Option<&Path>, extra: &[&str]) {
    std::fs::create_dir_all(out).unwrap();
    let rekor =
        brevis::ca::LocalSigner::generate(brevis::ca::SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let rekor_pem = out.join("rekor.pem");
    std::fs::write(
        &rekor_pem,
        brevis::model::pem::encode("PUBLIC KEY", brevis::ca::Signer::public_key_spki(&rekor)),
    )
    .unwrap();
    let mut cmd = Command::new(super::brevis_bin());
    cmd.args(["trust-config", "--out-dir"])
        .arg(out)
        .arg("--data-dir")
        .arg(brevis.dir.join("data"))
        .args([
            "--ca-url",
            &brevis.url,
            "--ctlog-url",
            brevis.ctlog_url.as_ref().unwrap(),
        ])
        .args(["--rekor-url", "http://127.0.0.1:1"])
        .arg("--rekor-public-key-path")
        .arg(&rekor_pem);
    if let Some(c) = chain {
        cmd.arg("--fileca-cert").arg(c);
    }
    cmd.args(extra);
    super::succeed(&mut cmd);
}

/// sigstore-python's own chain and SCT verification of each certificate (PEM leaves)
/// against `trust` (a ClientTrustConfig); one result per certificate.
pub fn python_verify(trust: &Path, leaves: &[String]) -> Vec<Value> {
    python_verify_identity(trust, leaves, None)
}

/// [`python_verify`] with sigstore-python's Identity policy too: (identity, issuer).
pub fn python_verify_identity(
    trust: &Path,
    leaves: &[String],
    identity: Option<(&str, &str)>,
) -> Vec<Value> {
    let mut args = vec![trust.to_str().unwrap()];
    if let Some((id, iss)) = identity {
        args.extend([id, iss]);
    }
    let v = super::run_python("python_verify.py", &args, &leaves.concat());
    v.as_array().expect("a list of results").clone()
}

/// Both real clients get a certificate from `b` and verify it against the trust
/// material in `trust` (from [`trust_config`]); returns sigstore-python's certificate.
pub async fn clients_work(b: &Brevis, op: &super::Op, trust: &Path, work: &Path) -> String {
    const ALICE: &str = "alice@example.com";
    let token = work.join("token");
    let claims = serde_json::json!({"email": ALICE, "email_verified": true});
    std::fs::write(&token, op.mint("alice", claims.clone()).await).unwrap();
    let r = python_client(
        &trust.join("client_trust_config.json"),
        &token,
        ALICE,
        &op.issuer,
    );
    assert_eq!(r["ok"], true, "sigstore-python: {r}");
    std::fs::write(&token, op.mint("alice", claims).await).unwrap();
    let js = js_client(
        &b.url,
        &trust.join("trusted_root.json"),
        &token,
        ALICE,
        &op.issuer,
    );
    assert_eq!(js["ok"], true, "sigstore-js: {js}");
    r["certificate"].as_str().unwrap().to_string()
}

/// sigstore-js's Verifier on a certificate issued earlier (chain, SCT, identity) against
/// `trusted_root`.
pub fn js_verify(trusted_root: &Path, cert_pem: &str, san: &str, issuer: &str) -> Value {
    let dir = repo_root().join("tests/interop");
    let cert = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cert.path(), cert_pem).unwrap();
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .arg("js_verify.mjs")
        .arg(trusted_root)
        .arg(cert.path())
        .arg(san)
        .arg(issuer);
    run_client(cmd, "sigstore-js verifier")
}
