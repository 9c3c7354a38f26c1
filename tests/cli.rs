//! The command line: startup refusals with precise messages, `ca create`, `config check`,
//! the data directory's CA surviving restarts, and Fulcio command lines moving over.

mod common;

use common::keys::{ClientKey, Kind};
use common::{Brevis, Op, brevis_bin, email_config, vectors};
use serde_json::{Value, json};
use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(brevis_bin()).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_identity_config_stops_startup_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let serve = |cfg: &std::path::Path| {
        run(&[
            "serve",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--host",
            "127.0.0.1",
            "--data-dir",
            data,
            "--ct-log-url",
            "",
            "--config-path",
            cfg.to_str().unwrap(),
        ])
    };
    std::fs::write(
        &cfg,
        "oidc-issuers:\n  https://a.example:\n    client-id: sigstore\n",
    )
    .unwrap();
    let (ok, _, err) = serve(&cfg);
    assert!(!ok);
    assert!(
        err.contains("oidc-issuers.\"https://a.example\".type: is required"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "oidc-issuers:\n  https://a.example:\n    client-id: sigstore\n    type: spiffe\n",
    )
    .unwrap();
    let (ok, _, err) = serve(&cfg);
    assert!(!ok);
    assert!(
        err.contains("spiffe-trust-domain: is required for spiffe issuers"),
        "{err}"
    );

    std::fs::write(
        &cfg,
        "oidc-issuers:\n  http://a.example:\n    client-id: sigstore\n    type: email\n",
    )
    .unwrap();
    let (ok, _, err) = serve(&cfg);
    assert!(!ok);
    assert!(err.contains("--insecure-http-issuers"), "{err}");

    let (ok, _, err) = serve(&dir.path().join("missing.yaml"));
    assert!(!ok);
    assert!(err.contains("cannot read identity config"), "{err}");

    let (ok, _, err) = run(&[
        "serve",
        "--data-dir",
        data,
        "--client-signing-algorithms",
        "ecdsa-sha2-256-nistp256,rsa-1024",
    ]);
    assert!(!ok);
    assert!(
        err.contains("unknown signing algorithm \"rsa-1024\""),
        "{err}"
    );
}

#[test]
fn config_check_prints_the_issuer_table() {
    let shipped = vectors().join("fulcio/identity-config.yaml");
    let (ok, out, err) = run(&["config", "check", shipped.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("https://accounts.google.com  type=email client-id=sigstore challenge=email"),
        "{out}"
    );
    assert!(
        out.contains("https://oidc.eks.*.amazonaws.com/id/* (pattern)  type=kubernetes"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "meta-issuers:\n  https://*.example.com:\n    client-id: x\n    type: spiffe\n    spiffe-trust-domain: example.com\n").unwrap();
    let (ok, _, err) = run(&["config", "check", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("spiffe issuers cannot be meta-issuers"),
        "{err}"
    );
}

#[tokio::test]
async fn ca_create_makes_an_encrypted_pair_that_fileca_serves() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ca");
    let (ok, stdout, err) = run(&[
        "ca",
        "create",
        "--out",
        out.to_str().unwrap(),
        "--password",
        "s3cret",
        "--organization",
        "Example",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("--fileca-key-passwd"), "{stdout}");
    let key = std::fs::read_to_string(out.join("intermediate-key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("intermediate-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // OpenSSL reads the encrypted key with the same password: the format is standard.
    common::succeed(
        Command::new("openssl")
            .args(["pkey", "-noout", "-passin", "pass:s3cret", "-in"])
            .arg(out.join("intermediate-key.pem")),
    );
    // A second run never overwrites.
    let (ok, _, err) = run(&["ca", "create", "--out", out.to_str().unwrap()]);
    assert!(!ok && err.contains("refusing to overwrite"), "{err}");

    let op = Op::start();
    let brevis = Brevis::start(
        &email_config(&op),
        &[
            "--ct-log-url",
            "",
            "--ca",
            "fileca",
            "--fileca-cert",
            out.join("chain.pem").to_str().unwrap(),
            "--fileca-key",
            out.join("intermediate-key.pem").to_str().unwrap(),
            "--fileca-key-passwd",
            "s3cret",
        ],
    );
    let key = ClientKey::generate(Kind::P256);
    let t = op
        .mint(
            "alice",
            json!({"email": "alice@example.com", "email_verified": true}),
        )
        .await;
    let (s, r) = brevis
        .post_json(
            "/api/v2/signingCert",
            &key.v2_key_body(&t, "alice@example.com"),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let chain = r["signedCertificateDetachedSct"]["chain"]["certificates"]
        .as_array()
        .unwrap();
    let root = std::fs::read_to_string(out.join("root.pem")).unwrap();
    assert_eq!(chain[2], root);
    let inter = common::run_python("inspect_cert.py", &[], chain[1].as_str().unwrap());
    assert_eq!(
        inter["basic_constraints"],
        json!({"ca": true, "critical": true})
    );
    assert_eq!(inter["eku"], json!(["1.3.6.1.5.5.7.3.3"]));
    assert!(
        inter["subject_der_hex"]
            .as_str()
            .unwrap()
            .contains(&hex::encode("Example"))
    );

    // Wrong password: startup refuses with a clear message.
    let (ok, _, err) = run(&[
        "serve",
        "--ct-log-url",
        "",
        "--data-dir",
        dir.path().join("d").to_str().unwrap(),
        "--fileca-cert",
        out.join("chain.pem").to_str().unwrap(),
        "--fileca-key",
        out.join("intermediate-key.pem").to_str().unwrap(),
        "--fileca-key-passwd",
        "nope",
    ]);
    assert!(!ok && err.contains("could not decrypt"), "{err}");
}

#[tokio::test]
async fn the_data_directory_ca_is_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = |b: &Brevis| {
        let url = format!("{}/api/v2/trustBundle", b.url);
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let first = {
        let b = Brevis::start_in(dir.path(), None, &["--ct-log-url", ""]);
        bundle(&b).await
    };
    assert!(dir.path().join("data/ca/chain.pem").exists());
    // The root's key is never in the serving directory: beside it, to be taken offline.
    assert!(!dir.path().join("data/ca/root-key.pem").exists());
    assert!(dir.path().join("data-offline/root-key.pem").exists());
    let second = {
        let b = Brevis::start_in(dir.path(), None, &["--ct-log-url", ""]);
        let log = b.log();
        assert_eq!(
            log.matches("created a new root and intermediate CA")
                .count(),
            1,
            "{log}"
        );
        bundle(&b).await
    };
    assert_eq!(first, second);
}

#[tokio::test]
async fn a_fulcio_command_line_moves_over() {
    let op = Op::start();
    let brevis = Brevis::start(
        &email_config(&op),
        &[
            "--ct-log-url=",
            "--grpc-port",
            "0",
            "--log_type",
            "prod",
            "--fileca-watch=false",
            "--client-signing-algorithms=ecdsa-sha2-256-nistp256,ed25519",
            "--idle-connection-timeout",
            "30s",
        ],
    );
    let key = ClientKey::generate(Kind::P384);
    let t = op
        .mint(
            "alice",
            json!({"email": "alice@example.com", "email_verified": true}),
        )
        .await;
    let (s, r) = brevis
        .post_json(
            "/api/v2/signingCert",
            &key.v2_key_body(&t, "alice@example.com"),
        )
        .await;
    assert_eq!(
        (s, r["message"].as_str()),
        (
            400,
            Some("signing algorithm not permitted: *ecdsa.PublicKey, SHA-384")
        )
    );
    // --log_type prod writes JSON lines.
    let log = brevis.log();
    let line = log.lines().find(|l| l.contains("brevis started")).unwrap();
    assert!(serde_json::from_str::<Value>(line).is_ok(), "{line}");
}

#[test]
fn ca_intermediate_rotates_under_the_same_root_and_refuses_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).to_str().unwrap().to_string();
    assert!(run(&["ca", "create", "--out", &p("a")]).0);
    assert!(run(&["ca", "create", "--out", &p("b")]).0);
    let intermediate = |cert: &str, key: &str, out: &str, extra: &[&str]| {
        let (cert, key, out) = (p(cert), p(key), p(out));
        let mut args = vec![
            "ca",
            "intermediate",
            "--root-cert",
            &cert,
            "--root-key",
            &key,
            "--out",
            &out,
        ];
        args.extend(extra);
        run(&args)
    };
    let (ok, out, err) = intermediate(
        "a/root.pem",
        "a/root-key.pem",
        "new",
        &["--key-type", "ecdsa-p384", "--password", "pw"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("chain.pem") && out.contains("intermediate-key.pem"));
    // The new chain ends in the same root, and its key is encrypted.
    let chain = std::fs::read_to_string(p("new/chain.pem")).unwrap();
    let root = std::fs::read_to_string(p("a/root.pem")).unwrap();
    assert!(chain.ends_with(&root));
    let key = std::fs::read_to_string(p("new/intermediate-key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let inter = common::run_python("inspect_cert.py", &[], &chain);
    assert_eq!(
        inter["basic_constraints"],
        json!({"ca": true, "critical": true})
    );
    assert_eq!(inter["eku"], json!(["1.3.6.1.5.5.7.3.3"]));
    assert_eq!(
        inter["signed_by_issuer"], true,
        "signed by the original root: {inter}"
    );
    assert_eq!(inter["aki_hex"], inter["issuer_ski_hex"]);

    // Mistakes: another root's key, a chain given as the root, an existing output.
    for (cert, key, out, message) in [
        (
            "a/root.pem",
            "b/root-key.pem",
            "x",
            "the root key does not belong to the root certificate",
        ),
        (
            "a/chain.pem",
            "a/root-key.pem",
            "y",
            "expected exactly one certificate",
        ),
        (
            "a/root.pem",
            "a/root-key.pem",
            "new",
            "refusing to overwrite",
        ),
    ] {
        let (ok, _, err) = intermediate(cert, key, out, &[]);
        assert!(!ok && err.contains(message), "{message}: {err}");
    }
}

#[test]
fn ctlog_key_is_created_once_and_ctlog_serve_checks_a_given_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).to_str().unwrap().to_string();
    let (ok, first, err) = run(&["ctlog", "key", "--out", &p("k")]);
    assert!(ok, "{err}");
    let (ok, again, _) = run(&["ctlog", "key", "--out", &p("k")]);
    assert!(ok);
    assert_eq!(first, again, "the existing key is kept");
    assert!(first.contains("log ID "));
    // A key that is not ECDSA P-256, or no key at all, stops `ctlog serve` naming the file.
    assert!(run(&["ca", "create", "--out", &p("ca")]).0);
    for (key, message) in [
        ("ca/root-key.pem", "the CT log key must be ECDSA P-256"),
        ("missing.pem", "missing.pem"),
    ] {
        let (roots, key, data) = (p("ca/root.pem"), p(key), p("log"));
        let (ok, _, err) = run(&[
            "ctlog",
            "serve",
            "--port",
            "0",
            "--data-dir",
            &data,
            "--roots",
            &roots,
            "--key",
            &key,
        ]);
        assert!(!ok && err.contains(&key) && err.contains(message), "{err}");
    }
}
