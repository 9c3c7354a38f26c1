//! The cryptographic operations of one issuance, counted (feature `test-support`): one
//! token signature verified, one proof of possession or CSR self-signature verified,
//! one client public key parsed, three signatures (precertificate, SCT, final
//! certificate; two with a remote log, which signs its SCT itself) plus the embedded
//! log's tree head for the batch, one SCT verified, and nothing else: no certificate
//! chain verified, no other key parsed. For every client key
//! type and both key paths, with the embedded log and with a remote one. Caches warm up
//! on a first certificate; the counts are of the next one.

mod common;

use brevis::model::count::{CryptoOp, snapshot};
use common::keys::{ClientKey, Kind};
use common::{CtLog, InProcess, Op, brevis_bin, email_config, succeed};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

const ALICE: &str = "alice@example.com";

fn delta(before: [u64; 7], after: [u64; 7]) -> BTreeMap<String, u64> {
    CryptoOp::ALL
        .iter()
        .enumerate()
        .map(|(i, op)| (format!("{op:?}"), after[i] - before[i]))
        .collect()
}

/// The floor: `signatures` certificate and SCT signatures, plus the tree head of the
/// batch the entry was committed in (`tree_heads`: 1 with the embedded log, where each
/// of these sequential requests is a batch of its own; under load a batch of many
/// entries shares one), and the verifications.
fn floor(signatures: u64, tree_heads: u64) -> BTreeMap<String, u64> {
    [
        ("Sign", signatures + tree_heads),
        ("SignTreeHead", tree_heads),
        ("VerifyToken", 1),
        ("VerifyProof", 1),
        ("VerifyLogSignature", 1),
        ("VerifyCertificate", 0),
        ("ParsePublicKey", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Issues one certificate per key path and key type (after a warm-up), checking each
/// against the floor with `signatures` signatures.
async fn check(b: &InProcess, op: &Op, signatures: u64, tree_heads: u64) {
    let token = op
        .mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await;
    let warm = ClientKey::generate(Kind::P256);
    let (s, r) = b
        .post_json("/api/v2/signingCert", &warm.v2_key_body(&token, ALICE))
        .await;
    assert_eq!(s, 200, "{r}");
    for kind in [
        Kind::P256,
        Kind::P384,
        Kind::P521,
        Kind::Rsa2048,
        Kind::Ed25519,
    ] {
        for csr in [false, true] {
            let key = ClientKey::generate(kind);
            let body = if csr {
                key.v2_csr_body(&token)
            } else {
                key.v2_key_body(&token, ALICE)
            };
            let before = snapshot();
            let (s, r) = b.post_json("/api/v2/signingCert", &body).await;
            let after = snapshot();
            assert_eq!(s, 200, "{kind:?} csr={csr}: {r}");
            assert_eq!(
                delta(before, after),
                floor(signatures, tree_heads),
                "{kind:?}, {}",
                if csr { "CSR" } else { "public key" }
            );
        }
    }
}

// One test, so no other issuance in this process moves the counters meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_issuance_costs_the_crypto_floor_and_nothing_else() {
    let op = Op::start();
    let clock: Arc<dyn brevis::model::Clock> = Arc::new(brevis::model::SystemClock);

    // The embedded log: precertificate, SCT and final certificate signed here.
    let dir = tempfile::tempdir().unwrap();
    let b = InProcess::start(
        InProcess::options(dir.path(), &email_config(&op)),
        clock.clone(),
    );
    check(&b, &op, 3, 1).await;
    drop(b);

    // A remote log (another process) signs the SCT; brevis verifies it.
    let work = tempfile::tempdir().unwrap();
    succeed(
        Command::new(brevis_bin())
            .args(["ca", "create", "--out"])
            .arg(work.path().join("ca")),
    );
    let log_dir = work.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = CtLog::start(&log_dir, &work.path().join("ca/root.pem"), &[]);
    let mut opts = InProcess::options(work.path(), &email_config(&op));
    opts.http.shutdown_timeout = std::time::Duration::from_secs(1);
    opts.ca = brevis::ca::provision::CaChoice::File {
        cert: Some(work.path().join("ca/chain.pem")),
        key: Some(work.path().join("ca/intermediate-key.pem")),
        password: None,
    };
    opts.ct = brevis::server::CtChoice::Remote {
        url: log.url.clone(),
        public_key: Some(log_dir.join("log/log-public-key.pem")),
        options: brevis::ct::client::ClientOptions::default(),
    };
    let b = InProcess::start(opts, clock);
    check(&b, &op, 2, 0).await;
}
