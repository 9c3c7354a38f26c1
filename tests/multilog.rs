//! Several CT logs per certificate: two standalone logs (`brevis ctlog serve`) and the
//! embedded one. `--ct-log-embed one`: exactly one SCT, the entry in every log, and
//! sigstore-python, sigstore-js and the sigstore crate accept the certificate. `all`:
//! every SCT present and verified (pyca/cryptography), sigstore-js accepts it, and the
//! clients that refuse several SCTs are shown refusing. A log that is down, or answers
//! with a bad signature, with K = all (503, no certificate) and with K below that.

mod common;

use common::clients::{clients_work, js_client, python_client, sigstore_rs_client, trust_config};
use common::keys::{ClientKey, Kind};
use common::{Brevis, CtLog, Op, brevis_bin, email_config, run_python, succeed};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

const ALICE: &str = "alice@example.com";

async fn tree_size(url: &str) -> u64 {
    let v: Value = reqwest::get(format!("{url}/ct/v1/get-sth"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["tree_size"].as_u64().unwrap()
}

fn chain_of(v: &Value) -> Vec<String> {
    v["signedCertificateEmbeddedSct"]["chain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// For each log key: how many embedded SCTs carry its log ID and verify with it
/// (pyca/cryptography rebuilding the precertificate entry).
fn verified_per_log(chain: &[String], keys: &[PathBuf]) -> Vec<(usize, usize)> {
    keys.iter()
        .map(|k| {
            let py = run_python("verify_sct.py", &[k.to_str().unwrap()], &chain.concat());
            let scts = py["scts"].as_array().unwrap();
            let mine = scts.iter().filter(|s| s["log_id_matches"] == true);
            let total = scts.len();
            let ok = mine.filter(|s| s["verified"] == true).count();
            (ok, total)
        })
        .collect()
}

struct Setup {
    work: tempfile::TempDir,
    op: Op,
    logs: Vec<CtLog>,
    config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let work = tempfile::tempdir().unwrap();
        succeed(
            Command::new(brevis_bin())
                .args(["ca", "create", "--out"])
                .arg(work.path().join("ca")),
        );
        let roots = work.path().join("ca/root.pem");
        let logs = ["l1", "l2"]
            .iter()
            .map(|n| {
                let d = work.path().join(n);
                std::fs::create_dir_all(&d).unwrap();
                CtLog::start(&d, &roots, &[])
            })
            .collect();
        let op = Op::start();
        let config = work.path().join("identity.yaml");
        std::fs::write(&config, email_config(&op)).unwrap();
        Setup {
            work,
            op,
            logs,
            config,
        }
    }

    fn key(&self, i: usize) -> PathBuf {
        self.logs[i].dir.join("log/log-public-key.pem")
    }

    fn chain(&self) -> PathBuf {
        self.work.path().join("ca/chain.pem")
    }

    /// brevis with the embedded log first, then the two remote logs (keys given in
    /// `keys` order), plus `extra` flags.
    fn brevis(&self, keys: [&Path; 2], extra: &[&str]) -> Brevis {
        let dir = self.work.path().join("serve");
        std::fs::create_dir_all(&dir).unwrap();
        let ca = self.work.path().join("ca");
        let mut args: Vec<String> = vec![
            "--fileca-cert".into(),
            ca.join("chain.pem").display().to_string(),
            "--fileca-key".into(),
            ca.join("intermediate-key.pem").display().to_string(),
            "--ct-log-embedded".into(),
        ];
        for (log, key) in self.logs.iter().zip(keys) {
            args.extend([
                "--ct-log-url".into(),
                log.url.clone(),
                "--ct-log-public-key-path".into(),
                key.display().to_string(),
            ]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Brevis::start_in(&dir, Some(&self.config), &args)
    }

    async fn request(&self, b: &Brevis) -> (u16, Value) {
        let key = ClientKey::generate(Kind::P256);
        let token = self
            .op
            .mint("alice", json!({"email": ALICE, "email_verified": true}))
            .await;
        b.post_json("/api/v2/signingCert", &key.v2_key_body(&token, ALICE))
            .await
    }

    fn trust(&self, b: &Brevis, name: &str) -> PathBuf {
        let out = self.work.path().join(name);
        let extra: Vec<String> = (0..2)
            .map(|i| format!("{}={}", self.logs[i].url, self.key(i).display()))
            .collect();
        trust_config(
            b,
            &out,
            Some(&self.chain()),
            &["--extra-ct-log", &extra[0], "--extra-ct-log", &extra[1]],
        );
        out
    }

    async fn sizes(&self, b: &Brevis) -> Vec<u64> {
        let mut out = vec![tree_size(b.ctlog_url.as_ref().unwrap()).await];
        for l in &self.logs {
            out.push(tree_size(&l.url).await);
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sct_by_default_every_client_accepts_and_every_log_has_the_entry() {
    let s = Setup::new();
    let b = s.brevis([&s.key(0), &s.key(1)], &[]);
    let trust = s.trust(&b, "trust");
    let root: Value =
        serde_json::from_str(&std::fs::read_to_string(trust.join("trusted_root.json")).unwrap())
            .unwrap();
    assert_eq!(root["ctlogs"].as_array().unwrap().len(), 3, "{root}");

    let before = s.sizes(&b).await;
    let (status, v) = s.request(&b).await;
    assert_eq!(status, 200, "{v}");
    let after = s.sizes(&b).await;
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(b - a, 1, "every log has the entry: {before:?} -> {after:?}");
    }
    // Exactly one SCT: the first log's (the embedded one).
    let chain = chain_of(&v);
    let keys = [
        s.work.path().join("serve/data/ctlog/log-public-key.pem"),
        s.key(0),
        s.key(1),
    ];
    assert_eq!(
        verified_per_log(&chain, &keys),
        [(1, 1), (0, 1), (0, 1)],
        "one SCT, from the embedded log"
    );

    // Every client accepts it.
    clients_work(&b, &s.op, &trust, s.work.path()).await;
    let token = s.work.path().join("rs-token");
    let t =
        s.op.mint("alice", json!({"email": ALICE, "email_verified": true}))
            .await;
    std::fs::write(&token, t).unwrap();
    let r = sigstore_rs_client(
        &b.url,
        &trust.join("trusted_root.json"),
        &token,
        ALICE,
        &s.op.issuer,
    );
    assert_eq!(
        (&r["v1"]["ok"], &r["v2"]["ok"]),
        (&json!(true), &json!(true)),
        "sigstore crate: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_scts_on_request_and_a_quorum_when_logs_fail() {
    let mut s = Setup::new();
    let b = s.brevis([&s.key(0), &s.key(1)], &["--ct-log-embed", "all"]);
    let trust = s.trust(&b, "trust");
    let (status, v) = s.request(&b).await;
    assert_eq!(status, 200, "{v}");
    let keys = [
        s.work.path().join("serve/data/ctlog/log-public-key.pem"),
        s.key(0),
        s.key(1),
    ];
    // Every SCT present, in the configured order, each verified with its own log's key.
    assert_eq!(
        verified_per_log(&chain_of(&v), &keys),
        [(1, 3), (1, 3), (1, 3)]
    );
    // sigstore-js accepts several SCTs; sigstore-python and the sigstore crate refuse
    // them (docs/compatibility.md).
    let token = s.work.path().join("token");
    let claims = json!({"email": ALICE, "email_verified": true});
    std::fs::write(&token, s.op.mint("alice", claims.clone()).await).unwrap();
    let js = js_client(
        &b.url,
        &trust.join("trusted_root.json"),
        &token,
        ALICE,
        &s.op.issuer,
    );
    assert_eq!(js["ok"], true, "sigstore-js: {js}");
    std::fs::write(&token, s.op.mint("alice", claims.clone()).await).unwrap();
    let py = python_client(
        &trust.join("client_trust_config.json"),
        &token,
        ALICE,
        &s.op.issuer,
    );
    assert_eq!(py["ok"], false, "{py}");
    assert!(
        py["message"].as_str().unwrap().contains("timestamp"),
        "sigstore-python: {py}"
    );
    std::fs::write(&token, s.op.mint("alice", claims).await).unwrap();
    let rs = sigstore_rs_client(
        &b.url,
        &trust.join("trusted_root.json"),
        &token,
        ALICE,
        &s.op.issuer,
    );
    for api in ["v1", "v2"] {
        assert_eq!(rs[api]["ok"], false, "sigstore crate: {rs}");
        assert_eq!(
            rs[api]["error"], "certificate SCT verification failed",
            "{rs}"
        );
    }
    drop(b);

    // A log answering with a signature that does not verify is a log that is down.
    let wrong = s.brevis([&s.key(0), &s.key(0)], &[]);
    let (status, v) = s.request(&wrong).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["message"], "Error entering certificate in CTL", "{v}");
    let m = wrong.metrics().await;
    assert!(
        m.lines()
            .any(|l| l.starts_with("brevis_ct_submissions_total")
                && l.contains(&s.logs[1].url)
                && l.contains("error")),
        "{m}"
    );
    drop(wrong);

    // The second log goes down: with K = all, 503 and no certificate; with K below that,
    // certificate comes from the logs that answered (K = 2 and K = 1).
    s.logs[1].kill();
    let all = s.brevis([&s.key(0), &s.key(1)], &[]);
    let (status, v) = s.request(&all).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(all.get("/readyz").await.status().as_u16(), 503);
    drop(all);
    for k in ["2", "1"] {
        let some = s.brevis([&s.key(0), &s.key(1)], &["--ct-log-min-scts", k]);
        let before = s.sizes_up(&some).await;
        let (status, v) = s.request(&some).await;
        assert_eq!(status, 200, "K={k}: {v}");
        // Ready once enough logs answered their probes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while some.get("/readyz").await.status().as_u16() != 200 {
            assert!(std::time::Instant::now() < deadline, "K={k}: never ready");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let after = s.sizes_up(&some).await;
        if k == "2" {
            // Both logs that are up were needed: both have the entry.
            assert!(
                after.iter().zip(&before).all(|(a, b)| a > b),
                "{before:?} {after:?}"
            );
        } else {
            assert!(
                after.iter().zip(&before).any(|(a, b)| a > b),
                "{before:?} {after:?}"
            );
        }
        // The embedded SCT verifies with the embedded log's key (first in the order).
        assert_eq!(verified_per_log(&chain_of(&v), &keys[..1]), [(1, 1)]);
        drop(some);
    }
    // A quorum larger than the logs is refused at start.
    let out = Command::new(brevis_bin())
        .args([
            "serve",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--ctlog-port",
            "0",
        ])
        .arg("--data-dir")
        .arg(s.work.path().join("never"))
        .args(["--ct-log-url", &s.logs[0].url, "--ct-log-embedded"])
        .args(["--ct-log-min-scts", "3"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--ct-log-min-scts 3: there are 2 CT logs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Setup {
    /// Tree sizes of the embedded log and the first remote log (the second is down).
    async fn sizes_up(&self, b: &Brevis) -> Vec<u64> {
        vec![
            tree_size(b.ctlog_url.as_ref().unwrap()).await,
            tree_size(&self.logs[0].url).await,
        ]
    }
}
