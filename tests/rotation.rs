//! Rotation without downtime. The CA: a staged CA (here under a new root) is published
//! before it signs, takes over at its switch time while certificates are requested
//! continuously, and the previous chain stays published; every certificate verifies with
//! sigstore-python against the TrustedRoot published before the switch, and both real
//! clients work on both sides. The CT log: the old log is frozen (reads only), a successor
//! takes over, and clients verify SCTs from either with one TrustedRoot.

mod common;

use common::clients::{clients_work, python_verify, trust_config};
use common::{Brevis, CtLog, Op, brevis_bin, email_config, now_secs, succeed};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ALICE: &str = "alice@example.com";

fn ca_create(out: &Path, name: &str) {
    succeed(
        Command::new(brevis_bin())
            .args(["ca", "create", "--common-name", name, "--out"])
            .arg(out),
    );
}

/// The issuing certificate's PEM of a chain file.
fn issuing_pem(chain_file: &Path) -> String {
    let text = std::fs::read_to_string(chain_file).unwrap();
    let end = "-----END CERTIFICATE-----";
    let i = text.find(end).unwrap() + end.len();
    text[..i].trim().to_string()
}

async fn bundle(b: &Brevis) -> Vec<Vec<String>> {
    let v: Value = b.get("/api/v2/trustBundle").await.json().await.unwrap();
    v["chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["certificates"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().trim().to_string())
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_rotation_to_a_new_root_keeps_issuing_and_every_certificate_verifies() {
    let work = tempfile::tempdir().unwrap();
    let (a, b_dir) = (work.path().join("a"), work.path().join("b"));
    ca_create(&a, "brevis-a");
    ca_create(&b_dir, "brevis-b");
    let switch_at = now_secs() + 15;
    let at = brevis::trust::rfc3339_millis(switch_at * 1000);
    let op = Op::start();
    let dir = work.path().join("serve");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("identity.yaml");
    std::fs::write(&config, email_config(&op)).unwrap();
    let path = |p: &Path, f: &str| p.join(f).display().to_string();
    let b = Brevis::start_in(
        &dir,
        Some(&config),
        &[
            "--fileca-cert",
            &path(&a, "chain.pem"),
            "--fileca-key",
            &path(&a, "intermediate-key.pem"),
            "--next-ca-chain",
            &path(&b_dir, "chain.pem"),
            "--next-ca-key",
            &path(&b_dir, "intermediate-key.pem"),
            "--ca-switch-at",
            &at,
        ],
    );
    let (a_pem, b_pem) = (
        issuing_pem(&a.join("chain.pem")),
        issuing_pem(&b_dir.join("chain.pem")),
    );
    // Published before it signs anything: the issuing chain first, the staged one next.
    let before = bundle(&b).await;
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!((&before[0][0], &before[1][0]), (&a_pem, &b_pem));

    // The trust material clients hold from before the switch lists both, with windows.
    let trust = work.path().join("trust");
    trust_config(
        &b,
        &trust,
        Some(&a.join("chain.pem")),
        &[
            "--next-ca-chain",
            &path(&b_dir, "chain.pem"),
            "--ca-switch-at",
            &at,
        ],
    );
    let root: Value =
        serde_json::from_str(&std::fs::read_to_string(trust.join("trusted_root.json")).unwrap())
            .unwrap();
    let cas = root["certificateAuthorities"].as_array().unwrap();
    assert_eq!(cas.len(), 2);
    assert_eq!(cas[0]["validFor"]["end"], at.as_str());
    assert_eq!(cas[1]["validFor"]["start"], at.as_str());
    clients_work(&b, &op, &trust, work.path()).await;

    // Certificates requested back to back across the switch: none fails.
    let key = common::keys::ClientKey::generate(common::keys::Kind::P256);
    let token = op
        .mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await;
    let body = key.v2_key_body(&token, ALICE);
    let mut leaves = Vec::new();
    let (mut by_a, mut by_b) = (0, 0);
    while now_secs() < switch_at + 3 {
        let (status, v) = b.post_json("/api/v2/signingCert", &body).await;
        assert_eq!(status, 200, "{v}");
        let chain = v["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .unwrap();
        let issuer = chain[1].as_str().unwrap().trim();
        if issuer == a_pem {
            by_a += 1;
            assert!(by_b == 0, "back to the old CA after the switch");
        } else {
            assert_eq!(issuer, b_pem);
            by_b += 1;
        }
        leaves.push(chain[0].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        by_a > 0 && by_b > 0,
        "{by_a} before, {by_b} after the switch"
    );
    // Every one verifies with sigstore-python against the TrustedRoot from before.
    let results = python_verify(&trust.join("client_trust_config.json"), &leaves);
    assert_eq!(results.len(), leaves.len());
    for r in &results {
        assert_eq!(r["ok"], true, "{r}");
    }
    // After the switch: the new chain first, the old one still published.
    let after = bundle(&b).await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!((&after[0][0], &after[1][0]), (&b_pem, &a_pem));
    clients_work(&b, &op, &trust, work.path()).await;
    // Trust material made after the switch says the same.
    let later = work.path().join("trust-later");
    trust_config(
        &b,
        &later,
        Some(&b_dir.join("chain.pem")),
        &[
            "--previous-ca-chain",
            &path(&a, "chain.pem"),
            "--ca-switch-at",
            &at,
        ],
    );
    let results = python_verify(&later.join("client_trust_config.json"), &leaves);
    assert!(results.iter().all(|r| r["ok"] == true), "{results:?}");
    let m = b.metrics().await;
    assert!(m.contains("brevis_ca_switches_total 1"), "{m}");

    // Without the new CA in the trust material, its certificates do not verify: the
    // check above is real.
    let old_only = work.path().join("trust-old");
    trust_config(&b, &old_only, Some(&a.join("chain.pem")), &[]);
    let results = python_verify(
        &old_only.join("client_trust_config.json"),
        &leaves[leaves.len() - 1..],
    );
    assert_eq!(results[0]["ok"], false, "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_log_and_its_successor_are_both_trusted() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("serve");
    std::fs::create_dir_all(&dir).unwrap();
    let op = Op::start();
    let config = dir.join("identity.yaml");
    std::fs::write(&config, email_config(&op)).unwrap();
    let b = Brevis::start_in(&dir, Some(&config), &[]);
    let trust1 = work.path().join("trust1");
    trust_config(&b, &trust1, None, &[]);
    let old_cert = clients_work(&b, &op, &trust1, work.path()).await;
    drop(b);

    // Freeze the embedded log and keep serving it read-only as its own log.
    let out = succeed(
        Command::new(brevis_bin())
            .args(["ctlog", "freeze", "--data-dir"])
            .arg(dir.join("data/ctlog")),
    );
    let out = String::from_utf8(out).unwrap();
    let flag = |name: &str| {
        out.split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .unwrap_or_else(|| panic!("{name} missing in {out}"))
            .to_string()
    };
    let (start, end) = (
        flag("--previous-ct-log-start"),
        flag("--previous-ct-log-end"),
    );
    let again = succeed(
        Command::new(brevis_bin())
            .args(["ctlog", "freeze", "--data-dir"])
            .arg(dir.join("data/ctlog")),
    );
    assert!(String::from_utf8_lossy(&again).contains("already frozen"));
    let old_dir = work.path().join("old");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::rename(dir.join("data/ctlog"), old_dir.join("log")).unwrap();
    let old = CtLog::start(&old_dir, &dir.join("data/ca/root.pem"), &[]);
    let sth: Value = reqwest::get(format!("{}/ct/v1/get-sth", old.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sth["tree_size"].as_u64().unwrap() >= 2, "{sth}");
    // Nothing new goes into a frozen log.
    let chain: Vec<String> = {
        use base64::Engine;
        let leaf = brevis::model::pem::parse_first(&old_cert).unwrap().der;
        let root = std::fs::read_to_string(dir.join("data/ca/chain.pem")).unwrap();
        let mut c = vec![base64::engine::general_purpose::STANDARD.encode(leaf)];
        for block in root.split_inclusive("-----END CERTIFICATE-----") {
            if let Ok(b) = brevis::model::pem::parse_first(block) {
                c.push(base64::engine::general_purpose::STANDARD.encode(b.der));
            }
        }
        c
    };
    let r = reqwest::Client::new()
        .post(format!("{}/ct/v1/add-chain", old.url))
        .json(&json!({"chain": chain}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("frozen"));

    // The CA starts again with a new log (new key); the trust material lists both.
    let b = Brevis::start_in(&dir, Some(&config), &[]);
    assert_ne!(b.ctlog_key().log_id_base64(), old.key().log_id_base64());
    let trust2 = work.path().join("trust2");
    let old_key = old_dir.join("log/log-public-key.pem");
    trust_config(
        &b,
        &trust2,
        None,
        &[
            "--previous-ct-log-public-key-path",
            old_key.to_str().unwrap(),
            "--previous-ct-log-url",
            &old.url,
            "--previous-ct-log-start",
            &start,
            "--previous-ct-log-end",
            &end,
        ],
    );
    let new_cert = clients_work(&b, &op, &trust2, work.path()).await;
    // sigstore-python verifies the SCTs of both logs with one TrustedRoot.
    let results = python_verify(
        &trust2.join("client_trust_config.json"),
        &[old_cert.clone(), new_cert.clone()],
    );
    assert!(results.iter().all(|r| r["ok"] == true), "{results:?}");
    // Trust material without the frozen log cannot verify the old SCT.
    let trust3 = work.path().join("trust3");
    trust_config(&b, &trust3, None, &[]);
    let results = python_verify(&trust3.join("client_trust_config.json"), &[old_cert]);
    assert_eq!(results[0]["ok"], false, "{results:?}");
    assert_eq!(results[0]["stage"], "verify SCT", "{results:?}");
}
