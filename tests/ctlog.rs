//! The Certificate Transparency log, embedded and standalone, over HTTP: every issued
//! certificate carries an SCT that independent code verifies; monitors read the same tree
//! through RFC 6962 and static-ct-api; bad submissions leave the tree unchanged; a SIGKILL
//! loses no promised entry; the remote-log path and its failure.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use brevis::ct::checkpoint::{GetSth, SignedTreeHead};
use brevis::ct::entry::{SignedEntry, parse_data_tile, parse_extra_data, parse_leaf_input};
use brevis::ct::{LogPublicKey, embedded_scts, merkle};
use brevis::model::pem;
use brevis::model::sct::{self, Sct};
use common::keys::{ClientKey, Kind};
use common::profile::{self, Expect, San};
use common::testca::{Leaf, TestCa};
use common::{Brevis, CtLog, Op, email_config, now_secs, run_python};
use serde_json::{Value, json};
use std::time::Duration;

const ALICE: &str = "alice@example.com";

fn chain_of(resp: &Value) -> Vec<String> {
    resp["signedCertificateEmbeddedSct"]["chain"]["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("no embedded-SCT chain in {resp}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

fn der(p: &str) -> Vec<u8> {
    pem::parse_first(p).unwrap().der
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

async fn sth(base: &str, key: &LogPublicKey) -> SignedTreeHead {
    let j: GetSth =
        serde_json::from_value(get_json(&format!("{base}/ct/v1/get-sth")).await).unwrap();
    let sth = SignedTreeHead::from_json(&j).unwrap();
    assert!(sth.verify(key), "STH signature");
    sth
}

async fn assert_included(base: &str, leaf_hash: &[u8; 32], index: u64, sth: &SignedTreeHead) {
    let url = format!(
        "{base}/ct/v1/get-proof-by-hash?hash={}&tree_size={}",
        url::form_urlencoded::byte_serialize(STANDARD.encode(leaf_hash).as_bytes())
            .collect::<String>(),
        sth.tree_size
    );
    let p = get_json(&url).await;
    assert_eq!(p["leaf_index"].as_u64(), Some(index));
    let path: Vec<Vec<u8>> = p["audit_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap())
        .collect();
    merkle::verify_inclusion(index, sth.tree_size, leaf_hash, &path, &sth.root)
        .expect("inclusion proof");
}

async fn assert_consistent(base: &str, old: &SignedTreeHead, new: &SignedTreeHead) {
    if old.tree_size == 0 {
        return;
    }
    let p = get_json(&format!(
        "{base}/ct/v1/get-sth-consistency?first={}&second={}",
        old.tree_size, new.tree_size
    ))
    .await;
    let path: Vec<Vec<u8>> = p["consistency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap())
        .collect();
    merkle::verify_consistency(old.tree_size, new.tree_size, &path, &old.root, &new.root)
        .expect("consistency proof");
}

#[tokio::test]
async fn every_certificate_is_logged_with_a_verifiable_embedded_sct_and_monitors_can_read_it() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &[]);
    let base = brevis.ctlog_url.clone().expect("embedded log URL printed");
    let key = brevis.ctlog_key();
    let key_path = brevis.dir.join("data/ctlog/log-public-key.pem");
    let first = sth(&base, &key).await;
    assert_eq!(first.tree_size, 0);

    let mut issued: Vec<(Vec<String>, u64)> = Vec::new();
    for (i, kind) in [
        Kind::P256,
        Kind::Ed25519,
        Kind::Rsa2048,
        Kind::P384,
        Kind::P521,
    ]
    .into_iter()
    .enumerate()
    {
        let k = ClientKey::generate(kind);
        let t = op
            .mint("alice", json!({"email": ALICE, "email_verified": true}))
            .await;
        let body = if i % 2 == 0 {
            k.v2_key_body(&t, ALICE)
        } else {
            k.v2_csr_body(&t)
        };
        let (s, r) = brevis.post_json("/api/v2/signingCert", &body).await;
        assert_eq!(s, 200, "{r}");
        let chain = chain_of(&r);
        assert_eq!(chain.len(), 3);
        profile::check_chain(
            &chain,
            &Expect {
                san: San::Email(ALICE),
                issuer: &op.issuer,
                subject: "alice",
                spki_der: k.spki_der(),
            },
            now_secs(),
        );
        // Independent verification: pyca/cryptography rebuilds the precert entry itself.
        let py = run_python(
            "verify_sct.py",
            &[key_path.to_str().unwrap()],
            &chain.concat(),
        );
        let scts = py["scts"].as_array().unwrap();
        assert_eq!(scts.len(), 1, "exactly one embedded SCT");
        assert_eq!(scts[0]["verified"], true, "{py}");
        assert_eq!(scts[0]["log_id_matches"], true);
        assert_eq!(scts[0]["entry_type"], "PRE_CERTIFICATE");
        // static-ct leaf_index extension.
        let ext = hex::decode(scts[0]["extensions_hex"].as_str().unwrap()).unwrap();
        let index = sct::parse_leaf_index(&ext).expect("leaf_index extension");
        assert_eq!(index, i as u64);
        issued.push((chain, index));
    }

    // Monitors: the STH covers everything, with an inclusion proof for each SCT.
    let now = sth(&base, &key).await;
    assert_eq!(now.tree_size, 5);
    let mut leaf_hashes = Vec::new();
    for (chain, index) in &issued {
        let e = &embedded_scts(&der(&chain[0]), &der(&chain[1])).unwrap()[0];
        assert!(key.verify_sct(&e.sct, &e.entry()));
        assert!(
            e.sct.timestamp <= now.timestamp,
            "STH timestamp >= SCT timestamps"
        );
        assert_included(&base, &e.leaf_hash(), *index, &now).await;
        leaf_hashes.push(e.leaf_hash());
    }
    assert_consistent(&base, &local_head(2, &leaf_hashes), &now).await;

    // get-entries: the stored precert, its TBS, and the chain up to the root.
    let entries = get_json(&format!("{base}/ct/v1/get-entries?start=0&end=99")).await;
    let list = entries["entries"].as_array().unwrap();
    assert_eq!(list.len(), 5, "truncated to the tree");
    for (i, e) in list.iter().enumerate() {
        let leaf =
            parse_leaf_input(&STANDARD.decode(e["leaf_input"].as_str().unwrap()).unwrap()).unwrap();
        assert_eq!(leaf.leaf_hash(), leaf_hashes[i]);
        let extra = parse_extra_data(
            &leaf.entry,
            &STANDARD.decode(e["extra_data"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        assert!(matches!(leaf.entry, SignedEntry::Precert { .. }));
        assert_eq!(
            extra.chain,
            vec![der(&issued[i].0[1]), der(&issued[i].0[2])]
        );
        let (_, pre) =
            x509_parser::parse_x509_certificate(extra.precertificate.as_ref().unwrap()).unwrap();
        assert!(
            pre.extensions()
                .iter()
                .any(|x| x.oid.to_id_string() == "1.3.6.1.4.1.11129.2.4.3" && x.critical)
        );
    }
    let one = get_json(&format!(
        "{base}/ct/v1/get-entry-and-proof?leaf_index=3&tree_size=5"
    ))
    .await;
    let path: Vec<Vec<u8>> = one["audit_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap())
        .collect();
    merkle::verify_inclusion(3, 5, &leaf_hashes[3], &path, &now.root).unwrap();

    // static-ct-api: checkpoint, tiles and issuers describe the same tree.
    let cp = reqwest::get(format!("{base}/checkpoint"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed =
        SignedTreeHead::from_checkpoint(&cp, "localhost:6962", &key).expect("checkpoint verifies");
    assert_eq!((parsed.tree_size, parsed.root), (5, now.root));
    let tile = reqwest::get(format!("{base}/tile/0/000.p/5"))
        .await
        .unwrap();
    assert_eq!(tile.status(), 200);
    assert_eq!(tile.bytes().await.unwrap().to_vec(), leaf_hashes.concat());
    let prefix = reqwest::get(format!("{base}/tile/0/000.p/2"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        prefix.to_vec(),
        leaf_hashes[..2].concat(),
        "smaller widths are prefixes"
    );
    assert_eq!(
        reqwest::get(format!("{base}/tile/0/000.p/6"))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reqwest::get(format!("{base}/tile/0/000"))
            .await
            .unwrap()
            .status(),
        404
    );
    let data = reqwest::get(format!("{base}/tile/data/000.p/5"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let leaves = parse_data_tile(&data).unwrap();
    assert_eq!(leaves.len(), 5);
    for (l, h) in leaves.iter().zip(&leaf_hashes) {
        assert_eq!(&l.entry.leaf_hash(), h);
        for fp in &l.chain_fingerprints {
            let r = reqwest::get(format!("{base}/issuer/{}", hex::encode(fp)))
                .await
                .unwrap();
            assert_eq!(r.headers()["content-type"], "application/pkix-cert");
            assert_eq!(&brevis::ct::sha256(&r.bytes().await.unwrap()), fp);
        }
    }
    let roots = get_json(&format!("{base}/ct/v1/get-roots")).await;
    assert_eq!(
        roots["certificates"][0].as_str().unwrap(),
        STANDARD.encode(der(&issued[0].0[2]))
    );

    // Metrics see the log.
    let m = brevis.metrics().await;
    assert!(m.contains("brevis_ctlog_tree_size 5"), "{m}");
    assert!(
        m.contains("brevis_ct_submissions_total{log=\"embedded\",outcome=\"ok\"} 5"),
        "{m}"
    );

    // A restart keeps the tree and extends it consistently.
    let (dir, _keep) = brevis.stop();
    let config = dir.join("identity.yaml");
    let again = Brevis::start_in(&dir, Some(&config), &[]);
    let base2 = again.ctlog_url.clone().unwrap();
    assert_eq!(sth(&base2, &key).await.tree_size, 5);
    let k = ClientKey::generate(Kind::P256);
    let t = op
        .mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await;
    let (s, r) = again
        .post_json("/api/v2/signingCert", &k.v2_key_body(&t, ALICE))
        .await;
    assert_eq!(s, 200, "{r}");
    let later = sth(&base2, &key).await;
    assert_eq!(later.tree_size, 6);
    assert_consistent(&base2, &now, &later).await;
}

/// An unsigned tree head over the first `size` leaves, computed locally from known hashes.
fn local_head(size: usize, leaves: &[[u8; 32]]) -> SignedTreeHead {
    SignedTreeHead {
        tree_size: size as u64,
        timestamp: 0,
        root: merkle::root_of(&leaves[..size]),
        signature: sct::DigitallySigned {
            hash_algorithm: 4,
            signature_algorithm: 3,
            signature: vec![],
        },
    }
}

async fn submit(base: &str, endpoint: &str, chain: &[Vec<u8>]) -> (u16, String) {
    let body = json!({"chain": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>()});
    let r = reqwest::Client::new()
        .post(format!("{base}/ct/v1/{endpoint}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_standalone_log_refuses_bad_submissions_and_dedups_resubmissions() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test root");
    let other = TestCa::new("unknown root");
    let log = CtLog::start(dir.path(), &ca.write_root(dir.path()), &[]);
    let base = log.url.clone();
    let key = log.key();

    let pre = ca.issue(Leaf::precert(1));
    let (s, body) = submit(&base, "add-pre-chain", &[pre.clone(), ca.root_der.clone()]).await;
    assert_eq!(s, 200, "{body}");
    let first: Sct = Sct::from_json(&serde_json::from_str(&body).unwrap()).unwrap();
    // The root may be left out: the log completes the chain.
    let cert = ca.issue(Leaf::certificate(2));
    let (s, body) = submit(&base, "add-chain", std::slice::from_ref(&cert)).await;
    assert_eq!(s, 200, "{body}");
    let x509: Sct = Sct::from_json(&serde_json::from_str(&body).unwrap()).unwrap();
    assert!(key.verify_sct(&x509, &sct::Entry::X509 { certificate: &cert }));
    let before = sth(&base, &key).await;
    assert_eq!(before.tree_size, 2);

    // Resubmitting the same precertificate returns the original SCT, byte for byte.
    let (s, body) = submit(&base, "add-pre-chain", &[pre.clone(), ca.root_der.clone()]).await;
    assert_eq!(s, 200);
    let again: Sct = Sct::from_json(&serde_json::from_str(&body).unwrap()).unwrap();
    assert_eq!(again, first);

    let now = time::OffsetDateTime::now_utc();
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("malformed JSON", "add-pre-chain", "{\"chain\": [".into(), "invalid JSON"),
        ("not base64", "add-pre-chain", r#"{"chain": ["!!!"]}"#.into(), "not valid base64"),
        ("empty chain", "add-chain", r#"{"chain": []}"#.into(), "chain is empty"),
        ("not a certificate", "add-chain", json!({"chain": [STANDARD.encode(b"hello")]}).to_string(), "does not parse"),
        ("unknown root", "add-pre-chain", json!({"chain": [STANDARD.encode(other.issue(Leaf::precert(3))), STANDARD.encode(&other.root_der)]}).to_string(), "does not lead to a root"),
        ("expired", "add-pre-chain", json!({"chain": [STANDARD.encode(ca.issue(Leaf { not_before: now - time::Duration::hours(2), not_after: now - time::Duration::hours(1), ..Leaf::precert(4) }))]}).to_string(), "expired"),
        ("not yet valid", "add-pre-chain", json!({"chain": [STANDARD.encode(ca.issue(Leaf { not_before: now + time::Duration::hours(1), not_after: now + time::Duration::hours(2), ..Leaf::precert(5) }))]}).to_string(), "not yet valid"),
        ("certificate to add-pre-chain", "add-pre-chain", json!({"chain": [STANDARD.encode(ca.issue(Leaf::certificate(6)))]}).to_string(), "needs a precertificate"),
        ("precertificate to add-chain", "add-chain", json!({"chain": [STANDARD.encode(ca.issue(Leaf::precert(7)))]}).to_string(), "submit it with add-pre-chain"),
        ("no codeSigning EKU", "add-pre-chain", json!({"chain": [STANDARD.encode(ca.issue(Leaf { code_signing: false, ..Leaf::precert(8) }))]}).to_string(), "codeSigning"),
        ("oversized", "add-chain", format!("{{\"chain\": [\"{}\"]}}", "A".repeat(600 * 1024)), "exceeds"),
    ];
    let http = reqwest::Client::new();
    for (name, endpoint, body, want) in cases {
        let r = http
            .post(format!("{base}/ct/v1/{endpoint}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "{name}: {text}");
        assert!(text.contains(want), "{name}: {text}");
    }
    // A tampered signature on the leaf is caught.
    let mut bad = ca.issue(Leaf::precert(9));
    let n = bad.len();
    bad[n - 3] ^= 1;
    let (s, text) = submit(&base, "add-pre-chain", &[bad]).await;
    assert_eq!(s, 400, "{text}");
    let after = sth(&base, &key).await;
    assert_eq!(
        after.tree_size, before.tree_size,
        "refused submissions leave the tree unchanged"
    );

    // Read-side errors.
    assert_eq!(
        reqwest::get(format!("{base}/ct/v1/get-entries?start=5&end=6"))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        reqwest::get(format!("{base}/ct/v1/get-entries?start=x&end=6"))
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        reqwest::get(format!("{base}/ct/v1/get-sth-consistency?first=1&second=9"))
            .await
            .unwrap()
            .status(),
        400
    );
    let unknown = STANDARD.encode([7u8; 32]);
    let r = reqwest::get(format!(
        "{base}/ct/v1/get-proof-by-hash?tree_size=2&hash={}",
        url::form_urlencoded::byte_serialize(unknown.as_bytes()).collect::<String>()
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        reqwest::get(format!("{base}/issuer/{}", "ab".repeat(32)))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reqwest::get(format!("{base}/tile/0/x000/000"))
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn sigkill_during_a_burst_loses_no_entry_that_got_an_sct() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("crash root");
    let roots = ca.write_root(dir.path());
    let mut log = CtLog::start(dir.path(), &roots, &[]);
    let base = log.url.clone();
    let key = log.key();
    let precerts: Vec<Vec<u8>> = (0..3000u64)
        .map(|i| ca.issue(Leaf::precert(100 + i)))
        .collect();

    // Submitters and an STH watcher run until the process dies under them.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Sct)>();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let precerts = std::sync::Arc::new(precerts);
    let mut tasks = Vec::new();
    for _ in 0..48 {
        let (tx, next, precerts, base) = (tx.clone(), next.clone(), precerts.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= precerts.len() {
                    return;
                }
                let body = json!({"chain": [STANDARD.encode(&precerts[i])]});
                let Ok(r) = http
                    .post(format!("{base}/ct/v1/add-pre-chain"))
                    .json(&body)
                    .send()
                    .await
                else {
                    return;
                };
                if r.status() != 200 {
                    return;
                }
                let Ok(j) = r.json::<Value>().await else {
                    return;
                };
                let sct = Sct::from_json(&serde_json::from_value(j).unwrap()).unwrap();
                let _ = tx.send((i, sct));
            }
        }));
    }
    drop(tx);
    let watcher = {
        let base = base.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                match reqwest::get(format!("{base}/ct/v1/get-sth")).await {
                    Ok(r) if r.status() == 200 => match r.json::<GetSth>().await {
                        Ok(j) => seen.push(j),
                        Err(_) => return seen,
                    },
                    _ => return seen,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // Wait until a good part of the burst has been answered, then SIGKILL mid-flight.
    let mut received = Vec::new();
    while received.len() < 600 {
        match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
            Ok(Some(x)) => received.push(x),
            _ => break,
        }
    }
    log.kill();
    for t in tasks {
        let _ = t.await;
    }
    while let Ok(x) = rx.try_recv() {
        received.push(x);
    }
    let seen = watcher.await.unwrap();
    assert!(
        received.len() >= 600,
        "only {} SCTs before the kill",
        received.len()
    );
    assert!(
        next.load(std::sync::atomic::Ordering::SeqCst) < precerts.len(),
        "the kill must land mid-burst"
    );

    // Restart on the same data and check every promise.
    let log = CtLog::start(dir.path(), &roots, &[]);
    let base = log.url.clone();
    let after = sth(&base, &key).await;
    let root_key_hash = {
        let (_, root) = x509_parser::parse_x509_certificate(&ca.root_der).unwrap();
        brevis::ct::sha256(root.public_key().raw)
    };
    for (i, sct_) in &received {
        let tbs = brevis::model::x509::precert_tbs(&precerts[*i]).unwrap();
        let entry = sct::Entry::Precert {
            issuer_key_hash: &root_key_hash,
            tbs: &tbs,
        };
        assert!(key.verify_sct(sct_, &entry));
        let te = sct::timestamped_entry(sct_.timestamp, &entry, &sct_.extensions);
        let leaf_hash = merkle::leaf_hash(&sct::merkle_tree_leaf(&te));
        let index = sct::parse_leaf_index(&sct_.extensions).unwrap();
        assert!(
            index < after.tree_size,
            "SCT index {index} beyond the recovered tree {}",
            after.tree_size
        );
        assert_included(&base, &leaf_hash, index, &after).await;
    }
    assert!(!seen.is_empty());
    for j in &seen {
        let old = SignedTreeHead::from_json(j).unwrap();
        assert!(old.verify(&key));
        assert!(old.tree_size <= after.tree_size);
        assert_consistent(&base, &old, &after).await;
    }
}

#[tokio::test]
async fn brevis_logs_to_a_remote_log_and_fails_closed_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let cadir = dir.path().join("ca");
    common::succeed(
        std::process::Command::new(common::brevis_bin())
            .args(["ca", "create", "--out"])
            .arg(&cadir),
    );
    let log = CtLog::start(dir.path(), &cadir.join("root.pem"), &[]);
    let log_key_path = dir.path().join("log/log-public-key.pem");
    let op = Op::start();
    let fileca = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--ca".into(),
            "fileca".into(),
            "--fileca-cert".into(),
            cadir.join("chain.pem").display().to_string(),
            "--fileca-key".into(),
            cadir.join("intermediate-key.pem").display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let args = fileca(&[
        "--ct-log-url",
        &log.url,
        "--ct-log-public-key-path",
        log_key_path.to_str().unwrap(),
    ]);
    let brevis = Brevis::start(
        &email_config(&op),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(
        brevis.ctlog_url.is_none(),
        "no embedded log when a remote one is configured"
    );
    let k = ClientKey::generate(Kind::P256);
    let t = op
        .mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await;
    let (s, r) = brevis
        .post_json("/api/v2/signingCert", &k.v2_key_body(&t, ALICE))
        .await;
    assert_eq!(s, 200, "{r}");
    let chain = chain_of(&r);
    let py = run_python(
        "verify_sct.py",
        &[log_key_path.to_str().unwrap()],
        &chain.concat(),
    );
    assert_eq!(py["scts"][0]["verified"], true, "{py}");
    let remote = sth(&log.url, &log.key()).await;
    assert_eq!(remote.tree_size, 1);

    // The log is down: a 5xx, and no certificate.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let args = fileca(&["--ct-log-url", &dead]);
    let down = Brevis::start(
        &email_config(&op),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let t = op
        .mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await;
    let (s, r) = down
        .post_json("/api/v2/signingCert", &k.v2_key_body(&t, ALICE))
        .await;
    assert_eq!(s, 500, "{r}");
    assert_eq!(
        r,
        json!({"code": 13, "message": "Error entering certificate in CTL", "details": []})
    );
    assert!(down.metrics().await.contains(&format!(
        "brevis_ct_submissions_total{{log=\"{dead}\",outcome=\"error\"}} 1"
    )));

    // SCTs that do not verify with the configured key are refused the same way.
    let other_key = dir.path().join("other.pem");
    let kp =
        brevis::ca::LocalSigner::generate(brevis::ca::SigningAlgorithm::EcdsaP256Sha256).unwrap();
    std::fs::write(
        &other_key,
        pem::encode("PUBLIC KEY", brevis::ca::Signer::public_key_spki(&kp)),
    )
    .unwrap();
    let args = fileca(&[
        "--ct-log-url",
        &log.url,
        "--ct-log-public-key-path",
        other_key.to_str().unwrap(),
    ]);
    let wrong = Brevis::start(
        &email_config(&op),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let t = op
        .mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await;
    let (s, r) = wrong
        .post_json("/api/v2/signingCert", &k.v2_key_body(&t, ALICE))
        .await;
    assert_eq!(
        (s, r["message"].as_str()),
        (500, Some("Error entering certificate in CTL")),
        "{r}"
    );
}

#[tokio::test]
async fn trust_root_describes_the_ca_and_the_log() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &[]);
    let out = common::succeed(
        std::process::Command::new(common::brevis_bin())
            .args(["trust-root", "--data-dir"])
            .arg(brevis.dir.join("data"))
            .args([
                "--ca-url",
                &brevis.url,
                "--ctlog-url",
                brevis.ctlog_url.as_ref().unwrap(),
            ]),
    );
    let root: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        root["mediaType"],
        "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
    );
    let key = brevis.ctlog_key();
    let log = &root["ctlogs"][0];
    assert_eq!(log["logId"]["keyId"], STANDARD.encode(key.log_id()));
    assert_eq!(
        log["logId"]["keyId"],
        STANDARD.encode(brevis::ct::sha256(
            &STANDARD
                .decode(log["publicKey"]["rawBytes"].as_str().unwrap())
                .unwrap()
        ))
    );
    assert_eq!(log["publicKey"]["keyDetails"], "PKIX_ECDSA_P256_SHA_256");
    assert!(
        log["publicKey"]["validFor"]["start"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let bundle: Value = brevis
        .get("/api/v2/trustBundle")
        .await
        .json()
        .await
        .unwrap();
    let from_root: Vec<String> = root["certificateAuthorities"][0]["certChain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| pem::certificate(&STANDARD.decode(c["rawBytes"].as_str().unwrap()).unwrap()))
        .collect();
    let from_api: Vec<String> = bundle["chains"][0]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(from_root, from_api);
    assert_eq!(root["certificateAuthorities"][0]["uri"], brevis.url);
}
