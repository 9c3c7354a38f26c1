//! Keys where operators keep them: the CA's issuing key and the CT log's key in a PKCS#11
//! token (SoftHSM2) and in AWS KMS (moto's server), created with brevis's own commands,
//! served by `brevis serve`, and checked by real clients (sigstore-python, sigstore-js).
//! A KMS that stops answering fails requests closed with 503, drops readiness, and is
//! used again by itself when it comes back. No private key or PIN reaches the data
//! directory or the logs.

mod common;

use common::clients::{clients_work, trust_config};
use common::custody::{Moto, PIN, SoftHsm, StallProxy, files_containing};
use common::{Brevis, Op, brevis_bin, email_config, succeed};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.com";

fn brevis(args: &[&str], env: &[(&'static str, String)]) -> Command {
    let mut cmd = Command::new(brevis_bin());
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd
}

/// Runs brevis expecting failure; its stderr.
fn fails(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn start(dir: &Path, op: &Op, args: &[String], env: &[(&'static str, String)]) -> Brevis {
    let config = dir.join("identity.yaml");
    std::fs::write(&config, email_config(op)).unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Brevis::start_in_env(dir, Some(&config), &args, &env)
}

/// Both real clients get a certificate from `b` and verify it (chain, SCT, identity)
/// against trust material made from `chain`.
async fn real_clients_verify(b: &Brevis, op: &Op, chain: &Path, work: &Path) {
    let trust = work.join("trust");
    trust_config(b, &trust, Some(chain), &[]);
    clients_work(b, op, &trust, work).await;
}

/// The value of one sample of `name` whose labels contain every one of `labels`.
fn sample(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `brevis ca create` with the issuing and root keys generated in `hsm`'s token (and the
/// chain stored there under `caroot_id`, when given); its stdout.
fn create_in_token(hsm: &SoftHsm, out: &Path, caroot_id: Option<&str>) -> String {
    let mut create = vec![
        "ca",
        "create",
        "--hsm-key-label",
        "brevis-ca",
        "--hsm-root-key-label",
        "brevis-root",
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(id) = caroot_id {
        create.extend(["--hsm-caroot-id", id]);
    }
    let flags = hsm.flags();
    create.extend(flags.iter().map(String::as_str));
    String::from_utf8(succeed(&mut brevis(&create, &hsm.env()))).unwrap()
}

#[tokio::test]
async fn pkcs11_keys_are_made_in_the_token_and_real_clients_verify_what_they_sign() {
    let hsm = SoftHsm::new("brevis-test");
    let env = hsm.env();
    let work = tempfile::tempdir().unwrap();
    let ca_dir = work.path().join("ca");
    let out = create_in_token(&hsm, &ca_dir, Some("brevis-chain"));
    assert!(out.contains("--ca pkcs11ca"), "{out}");
    let flags = hsm.flags();
    // Only certificates were written: both private keys stay in the token.
    let mut written: Vec<String> = std::fs::read_dir(&ca_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    assert_eq!(written, ["chain.pem", "root.pem"]);
    // The label is taken now: a second create refuses rather than replacing the key.
    let again = work.path().join("again");
    let mut second = vec!["ca", "create", "--hsm-key-label", "brevis-ca", "--out"];
    second.push(again.to_str().unwrap());
    second.extend(flags.iter().map(String::as_str));
    second.extend(["--hsm-root-key-label", "brevis-root-2"]);
    let err = fails(brevis(&second, &env));
    assert!(err.contains("already holds a key labelled"), "{err}");

    let mut logkey = vec![
        "ctlog",
        "key",
        "--hsm-key-label",
        "brevis-log",
        "--out",
        work.path()
            .join("logkey")
            .to_str()
            .unwrap()
            .to_string()
            .leak(),
    ];
    logkey.extend(flags.iter().map(String::as_str));
    succeed(&mut brevis(&logkey, &env));

    // OpenSC's pkcs11-tool, not brevis, says what the token holds.
    let keys = hsm.private_keys();
    for label in ["brevis-ca", "brevis-root", "brevis-log"] {
        let (_, block) = keys
            .iter()
            .find(|(l, _)| l == label)
            .unwrap_or_else(|| panic!("no private key {label} in {keys:?}"));
        assert!(
            block.contains("sensitive, always sensitive, never extractable, local"),
            "{label}: {block}"
        );
    }

    let op = Op::start();
    let dir = work.path().join("serve");
    std::fs::create_dir_all(&dir).unwrap();
    let mut args: Vec<String> = [
        "--ca",
        "pkcs11ca",
        "--hsm-key-label",
        "brevis-ca",
        "--hsm-caroot-id",
        "brevis-chain",
        "--ctlog-key",
        "pkcs11:brevis-log",
    ]
    .map(String::from)
    .to_vec();
    args.extend(flags.iter().cloned());
    let b = start(&dir, &op, &args, &env);
    real_clients_verify(&b, &op, &ca_dir.join("chain.pem"), work.path()).await;

    // The log's public key was written for trust material; it is the token's key.
    let served = b.ctlog_key();
    let exported = std::fs::read_to_string(work.path().join("logkey/log-public-key.pem")).unwrap();
    assert_eq!(
        served.log_id_base64(),
        brevis::ct::LogPublicKey::from_pem(&exported)
            .unwrap()
            .log_id_base64()
    );
    let m = b.metrics().await;
    for key in ["key=\"ca\"", "key=\"ctlog\""] {
        assert!(
            sample(
                &m,
                "brevis_signer_operations_total",
                &[key, "backend=\"pkcs11\"", "outcome=\"ok\""]
            ) >= 2.0,
            "{key}: {m}"
        );
    }
    assert!(m.contains("brevis_signer_latency_seconds_bucket"), "{m}");
    // No private key and no PIN anywhere brevis writes.
    let stderr = b.log();
    drop(b);
    assert!(!stderr.contains(PIN), "the PIN leaked into the log");
    assert_eq!(
        files_containing(&dir, b"PRIVATE KEY"),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(
        files_containing(&dir, PIN.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
}

#[test]
fn pkcs11_mistakes_are_refused_with_errors_that_say_what_to_fix() {
    let hsm = SoftHsm::new("brevis-errors");
    let env = hsm.env();
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let data = data.to_str().unwrap();
    let flags = hsm.flags();
    let serve = |extra: &[&str]| {
        let mut args = vec![
            "serve",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--data-dir",
            data,
        ];
        args.extend(extra);
        args.extend(flags.iter().map(String::as_str));
        fails(brevis(&args, &env))
    };
    // No such key in the token.
    let e = serve(&[
        "--ca",
        "pkcs11ca",
        "--hsm-key-label",
        "nope",
        "--hsm-caroot-id",
        "x",
    ]);
    assert!(e.contains("no private key labelled \"nope\""), "{e}");
    // No chain named.
    let e = serve(&["--ca", "pkcs11ca", "--hsm-key-label", "nope"]);
    assert!(e.contains("--hsm-caroot-id"), "{e}");
    // A wrong PIN: refused by the token, and never echoed.
    let bad_pin = work.path().join("bad-pin");
    std::fs::write(&bad_pin, "wrong-pin-4242").unwrap();
    let mut args = vec!["serve", "--ca", "pkcs11ca", "--hsm-caroot-id", "x"];
    args.extend(["--pkcs11-config-path", hsm.config.to_str().unwrap()]);
    args.extend([
        "--pkcs11-pin-file",
        bad_pin.to_str().unwrap(),
        "--data-dir",
        data,
    ]);
    let e = fails(brevis(&args, &env));
    assert!(e.contains("PinIncorrect") || e.contains("PIN"), "{e}");
    assert!(!e.contains("wrong-pin-4242"), "{e}");
    // A token that does not exist.
    let other = work.path().join("other.json");
    std::fs::write(
        &other,
        json!({"Path": common::custody::module(), "TokenLabel": "absent"}).to_string(),
    )
    .unwrap();
    let mut args = vec![
        "serve",
        "--ca",
        "pkcs11ca",
        "--hsm-caroot-id",
        "x",
        "--data-dir",
        data,
    ];
    args.extend(["--pkcs11-config-path", other.to_str().unwrap()]);
    args.extend(["--pkcs11-pin-file", hsm.pin_file.to_str().unwrap()]);
    let e = fails(brevis(&args, &env));
    assert!(e.contains("no PKCS#11 token labelled \"absent\""), "{e}");
    // A config that is not Fulcio's shape.
    std::fs::write(&other, "{\"Path\": \"/x.so\"}").unwrap();
    let e = fails(brevis(&args, &env));
    assert!(e.contains("exactly one of TokenLabel"), "{e}");
    // KMS schemes brevis does not build in, by name.
    let e = fails(brevis(
        &[
            "serve",
            "--ca",
            "kmsca",
            "--kms-resource",
            "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k",
            "--kms-cert-chain-path",
            "/dev/null",
            "--data-dir",
            data,
        ],
        &[],
    ));
    assert!(
        e.contains("not built into brevis") && e.contains("awskms://"),
        "{e}"
    );
    // A pkcs11: key for the log without a token configured.
    let e = fails(brevis(
        &[
            "serve",
            "--ctlog-key",
            "pkcs11:log",
            "--data-dir",
            data,
            "--port",
            "0",
        ],
        &[],
    ));
    assert!(e.contains("--pkcs11-config-path"), "{e}");
}

/// Polls `/readyz` until it answers `want` (bounded: a wrong state fails the test).
async fn wait_ready(b: &Brevis, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = b.get("/readyz").await.status().as_u16();
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {status}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_keys_sign_fail_closed_when_kms_stalls_and_recover() {
    let moto = Moto::start();
    moto.create_key("brevis-ca", "ECC_NIST_P256");
    moto.create_key("brevis-log", "ECC_NIST_P256");
    let proxy = StallProxy::start(&moto.url);
    let env = Moto::env(&proxy.url);
    let work = tempfile::tempdir().unwrap();

    // An offline root as files; the intermediate's key is the KMS key.
    let root = work.path().join("root");
    succeed(&mut brevis(
        &["ca", "create", "--out", root.to_str().unwrap()],
        &[],
    ));
    let kms_dir = work.path().join("kms");
    let out = succeed(&mut brevis(
        &[
            "ca",
            "create",
            "--kms-resource",
            "awskms:///alias/brevis-ca",
            "--root-cert",
            root.join("root.pem").to_str().unwrap(),
            "--root-key",
            root.join("root-key.pem").to_str().unwrap(),
            "--out",
            kms_dir.to_str().unwrap(),
        ],
        &env,
    ));
    assert!(String::from_utf8_lossy(&out).contains("--ca kmsca"));
    assert!(!kms_dir.join("intermediate-key.pem").exists());

    let op = Op::start();
    let dir = work.path().join("serve");
    std::fs::create_dir_all(&dir).unwrap();
    let chain = kms_dir.join("chain.pem");
    let args: Vec<String> = [
        "--ca",
        "kmsca",
        "--kms-resource",
        "awskms:///alias/brevis-ca",
        "--kms-cert-chain-path",
        chain.to_str().unwrap(),
        "--ctlog-key",
        "awskms:///alias/brevis-log",
        "--signer-timeout",
        "2s",
    ]
    .map(String::from)
    .to_vec();
    let b = start(&dir, &op, &args, &env);
    real_clients_verify(&b, &op, &chain, work.path()).await;
    wait_ready(&b, 200).await;

    // KMS stops answering: the request fails closed with 503 (no certificate), readiness
    // drops, and the metrics say which key and backend.
    proxy.stall();
    let key = common::keys::ClientKey::generate(common::keys::Kind::P256);
    let request = || async {
        let token = op
            .mint("alice", json!({"email": ALICE, "email_verified": true}))
            .await;
        b.post_json("/api/v2/signingCert", &key.v2_key_body(&token, ALICE))
            .await
    };
    let (status, body) = request().await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("error communicating with CA backend"),
        "{body}"
    );
    wait_ready(&b, 503).await;
    let m = b.metrics().await;
    assert!(
        sample(
            &m,
            "brevis_signer_operations_total",
            &["key=\"ca\"", "backend=\"awskms\"", "outcome=\"timeout\""]
        ) + sample(
            &m,
            "brevis_signer_operations_total",
            &["key=\"ca\"", "backend=\"awskms\"", "outcome=\"error\""]
        ) >= 1.0,
        "{m}"
    );
    assert!(sample(&m, "fulcio_new_certs", &[]) >= 2.0, "{m}");

    // KMS is back: readiness returns and certificates are issued again, no restart.
    proxy.resume();
    wait_ready(&b, 200).await;
    let (status, body) = request().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        files_containing(&dir, b"PRIVATE KEY"),
        Vec::<std::path::PathBuf>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_goes_away_fails_closed_and_is_used_again_when_it_returns() {
    let hsm = SoftHsm::new("brevis-flaky");
    let env = hsm.env();
    let work = tempfile::tempdir().unwrap();
    let ca_dir = work.path().join("ca");
    create_in_token(&hsm, &ca_dir, None);
    let flags = hsm.flags();
    let op = Op::start();
    let dir = work.path().join("serve");
    std::fs::create_dir_all(&dir).unwrap();
    let chain = ca_dir.join("chain.pem");
    let mut args: Vec<String> = [
        "--ca",
        "pkcs11ca",
        "--hsm-key-label",
        "brevis-ca",
        "--aws-hsm-root-ca-path",
        chain.to_str().unwrap(),
        "--signer-timeout",
        "2s",
    ]
    .map(String::from)
    .to_vec();
    args.extend(flags.iter().cloned());
    let b = start(&dir, &op, &args, &env);
    let key = common::keys::ClientKey::generate(common::keys::Kind::P256);
    let request = || async {
        let token = op
            .mint("alice", json!({"email": ALICE, "email_verified": true}))
            .await;
        b.post_json("/api/v2/signingCert", &key.v2_key_body(&token, ALICE))
            .await
    };
    assert_eq!(request().await.0, 200);

    // The token disappears (its files are moved away, as a token pulled out of its
    // slot): signing fails closed and readiness drops.
    let tokens = hsm.dir.path().join("tokens");
    let away = hsm.dir.path().join("tokens-away");
    std::fs::rename(&tokens, &away).unwrap();
    std::fs::create_dir_all(&tokens).unwrap();
    let (status, body) = request().await;
    assert_eq!(status, 503, "{body}");
    wait_ready(&b, 503).await;
    // It comes back: brevis opens a new session by itself.
    std::fs::remove_dir_all(&tokens).unwrap();
    std::fs::rename(&away, &tokens).unwrap();
    wait_ready(&b, 200).await;
    let (status, body) = request().await;
    assert_eq!(status, 200, "{body}");
    assert!(!b.log().contains(PIN));
}
