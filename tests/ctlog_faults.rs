//! Fault injection into the embedded log's storage: a failed write, a failed commit (the
//! fsync of the WAL), or a commit that lands on disk but reports failure, at every step of
//! a batch. No SCT may be issued for an entry that is not stored, the tree must stay
//! consistent, and the log must recover by itself.

mod common;

use brevis::ca::{LocalSigner, SigningAlgorithm};
use brevis::ct::log::store::faulty::{FaultSwitch, FaultyWriter, Step};
use brevis::ct::log::store::sqlite;
use brevis::ct::log::{BatchConfig, Kind, Log, LogError, LogOptions, db_path};
use brevis::ct::merkle;
use brevis::model::sct::{self, Sct};
use common::testca::{Leaf, TestCa};
use std::sync::Arc;
use std::time::Duration;

fn leaf_hash(ca: &TestCa, precert: &[u8], s: &Sct) -> [u8; 32] {
    let (_, root) = x509_parser::parse_x509_certificate(&ca.root_der).unwrap();
    let ikh = brevis::ct::sha256(root.public_key().raw);
    let tbs = brevis::model::x509::precert_tbs(precert).unwrap();
    let entry = sct::Entry::Precert {
        issuer_key_hash: &ikh,
        tbs: &tbs,
    };
    merkle::leaf_hash(&sct::merkle_tree_leaf(&sct::timestamped_entry(
        s.timestamp,
        &entry,
        &s.extensions,
    )))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_any_commit_step_issues_no_sct_and_the_log_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("fault root");
    let (writer, reader) = sqlite::open(&db_path(dir.path()), 4096).unwrap();
    let (store, switch) = FaultyWriter::new(writer);
    let signer = Arc::new(LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap());
    let options = LogOptions {
        roots: vec![ca.root_der.clone()],
        batch: BatchConfig {
            max_size: 64,
            max_wait: Duration::ZERO,
            // No write probe between a failure and the assertions about it: the next
            // submission is what writes again.
            recovery_backoff: Duration::from_secs(3600),
        },
        ..LogOptions::default()
    };
    let log =
        Arc::new(Log::with_store(Box::new(store), Arc::new(reader), signer, options).unwrap());
    let key = log.public_key().clone();
    let mut serial = 1000;
    let mut next = || {
        serial += 1;
        ca.issue(Leaf::precert(serial))
    };
    let mut promised: Vec<(Vec<u8>, Sct)> = Vec::new();
    let mut heads = vec![(*log.sth()).clone()];

    // A healthy start.
    let p = next();
    promised.push((p.clone(), log.submit(&[p], Kind::Precert).await.unwrap()));

    for step in Step::ALL {
        let size_before = log.sth().tree_size;
        switch.arm(step, 1);
        let failed = next();
        let r = log
            .submit(std::slice::from_ref(&failed), Kind::Precert)
            .await;
        assert!(
            matches!(r, Err(LogError::Storage(_) | LogError::Recovering)),
            "{step:?}: {r:?}"
        );
        assert!(!switch.armed(), "{step:?} was reached");
        assert!(
            log.health().is_err(),
            "{step:?}: not ready until a write succeeds again"
        );
        let size_after_failure = log.sth().tree_size;
        if step == Step::CommitAmbiguous {
            // The batch did reach the disk; the log reloaded and now includes it, without
            // having promised it. A resubmission gets the stored SCT.
            assert_eq!(size_after_failure, size_before + 1, "{step:?}");
            let s = log
                .submit(std::slice::from_ref(&failed), Kind::Precert)
                .await
                .unwrap();
            assert_eq!(sct::parse_leaf_index(&s.extensions), Some(size_before));
            promised.push((failed, s));
        } else {
            assert_eq!(
                size_after_failure, size_before,
                "{step:?}: nothing was stored"
            );
        }
        // The next submission goes through.
        let ok = next();
        let s = log
            .submit(std::slice::from_ref(&ok), Kind::Precert)
            .await
            .unwrap();
        assert!(log.health().is_ok(), "{step:?}: ready after a good write");
        promised.push((ok, s));
        heads.push((*log.sth()).clone());
    }

    // Every promise is in the final tree, and every head is consistent with it.
    let last = log.sth();
    for (pre, s) in &promised {
        assert!(
            key.verify_sct(
                s,
                &sct::Entry::Precert {
                    issuer_key_hash: &brevis::ct::sha256(
                        x509_parser::parse_x509_certificate(&ca.root_der)
                            .unwrap()
                            .1
                            .public_key()
                            .raw
                    ),
                    tbs: &brevis::model::x509::precert_tbs(pre).unwrap(),
                }
            )
        );
        let (index, proof) = log
            .proof_by_hash(&leaf_hash(&ca, pre, s), last.tree_size)
            .await
            .unwrap();
        assert_eq!(Some(index), sct::parse_leaf_index(&s.extensions));
        let proof: Vec<Vec<u8>> = proof.iter().map(|h| h.to_vec()).collect();
        merkle::verify_inclusion(
            index,
            last.tree_size,
            &leaf_hash(&ca, pre, s),
            &proof,
            &last.root,
        )
        .unwrap();
    }
    for h in &heads {
        assert!(h.verify(&key));
        if h.tree_size > 0 {
            let proof: Vec<Vec<u8>> = log
                .consistency(h.tree_size, last.tree_size)
                .await
                .unwrap()
                .iter()
                .map(|x| x.to_vec())
                .collect();
            merkle::verify_consistency(h.tree_size, last.tree_size, &proof, &h.root, &last.root)
                .unwrap();
        }
    }

    // A batch that fails takes every entry of it down, and none of them get SCTs.
    switch.arm(Step::PutTiles, 1);
    let size_before = log.sth().tree_size;
    let batch: Vec<Vec<u8>> = (0..40).map(|_| next()).collect();
    let results = concurrently(&log, &batch).await;
    let successes = results.iter().filter(|r| r.is_ok()).count() as u64;
    assert!(
        successes < batch.len() as u64,
        "the armed fault failed a batch"
    );
    let stored_after = log.sth().tree_size;
    assert_eq!(
        stored_after,
        size_before + successes,
        "failed entries are not in the tree"
    );
    for (p, r) in batch.iter().zip(&results) {
        if let Ok(s) = r {
            let (index, _) = log
                .proof_by_hash(&leaf_hash(&ca, p, s), stored_after)
                .await
                .expect("every SCT handed out is stored");
            assert_eq!(Some(index), sct::parse_leaf_index(&s.extensions));
        }
    }
}

async fn concurrently(log: &Arc<Log>, batch: &[Vec<u8>]) -> Vec<Result<Sct, LogError>> {
    let handles: Vec<_> = batch
        .iter()
        .map(|p| {
            let (log, p) = (log.clone(), p.clone());
            tokio::spawn(async move { log.submit(&[p], Kind::Precert).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn open_log(dir: &std::path::Path, ca: &TestCa, index_every: u64) -> (Arc<Log>, FaultSwitch) {
    let (writer, reader) = sqlite::open(&db_path(dir), index_every).unwrap();
    let (store, switch) = FaultyWriter::new(writer);
    let key = brevis::ct::log::load_or_create_key(dir).unwrap();
    let options = LogOptions {
        roots: vec![ca.root_der.clone()],
        index_every,
        ..LogOptions::default()
    };
    let log = Log::with_store(Box::new(store), Arc::new(reader), Arc::new(key), options).unwrap();
    (Arc::new(log), switch)
}

/// Lookups by hash (resubmissions, `get-proof-by-hash`) find every entry whether its
/// lookup rows were written yet or not, across a failed lookup write and a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_by_hash_find_every_entry_across_flushes_faults_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("lookup root");
    let (log, switch) = open_log(dir.path(), &ca, 4);
    let mut logged = submit_new(&log, &ca, 5000..5010).await;
    // The next lookup write fails: submissions go on, nothing is lost from view.
    let failures_before = brevis::metrics::CTLOG_LOOKUP_WRITE_FAILURES.get();
    switch.arm(Step::AfterCommit, 1);
    logged.extend(submit_new(&log, &ca, 5010..5016).await);
    assert!(!switch.armed(), "a lookup write was attempted and failed");
    // The failure is counted for operators (other tests may add their own failures).
    let mut waited = 0;
    while brevis::metrics::CTLOG_LOOKUP_WRITE_FAILURES.get() == failures_before && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(brevis::metrics::CTLOG_LOOKUP_WRITE_FAILURES.get() > failures_before);

    check_lookups(&log, &ca, &logged).await;
    log.shutdown();
    drop(log);

    // After a restart: rows written before, and entries only the entries table holds.
    let (log, _switch) = open_log(dir.path(), &ca, 4);
    check_lookups(&log, &ca, &logged).await;
    log.shutdown();
    drop(log);

    // A log that held everything in memory (a large index_every) catches up at start-up.
    let (log, _switch) = open_log(dir.path(), &ca, 1_000_000);
    check_lookups(&log, &ca, &logged).await;
    log.shutdown();
    drop(log);
    let (log, _switch) = open_log(dir.path(), &ca, 2);
    check_lookups(&log, &ca, &logged).await;
}

/// Logs one new precertificate per serial, one at a time; returns each with its SCT.
async fn submit_new(log: &Log, ca: &TestCa, serials: std::ops::Range<u64>) -> Vec<(Vec<u8>, Sct)> {
    let mut logged = Vec::new();
    for serial in serials {
        let p = ca.issue(Leaf::precert(serial));
        let s = log
            .submit(std::slice::from_ref(&p), Kind::Precert)
            .await
            .unwrap();
        logged.push((p, s));
    }
    logged
}

/// Every entry in `logged` is found by hash: resubmitted, it gets its original SCT back;
/// `get-proof-by-hash` finds its index.
async fn check_lookups(log: &Log, ca: &TestCa, logged: &[(Vec<u8>, Sct)]) {
    let size = log.sth().tree_size;
    assert_eq!(size, logged.len() as u64);
    for (p, s) in logged {
        let again = log
            .submit(std::slice::from_ref(p), Kind::Precert)
            .await
            .unwrap();
        assert_eq!(
            again.timestamp, s.timestamp,
            "a resubmission gets the original SCT"
        );
        assert_eq!(again.extensions, s.extensions);
        let (index, _) = log.proof_by_hash(&leaf_hash(ca, p, s), size).await.unwrap();
        assert_eq!(Some(index), sct::parse_leaf_index(&s.extensions));
    }
    assert_eq!(log.sth().tree_size, size, "resubmissions add nothing");
    assert!(matches!(
        log.proof_by_hash(&[7u8; 32], size).await,
        Err(LogError::NotFound(_))
    ));
}

/// A log directory from before the lookup table (entries with a UNIQUE dedup column and
/// a leaf-hash index) is migrated at start-up and keeps every entry findable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_with_the_old_schema_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("migration root");
    let (log, _) = open_log(dir.path(), &ca, 1_000_000);
    let logged = submit_new(&log, &ca, 7000..7005).await;
    log.shutdown();
    drop(log);
    // Rewrite the database into the old shape.
    let conn = rusqlite::Connection::open(db_path(dir.path())).unwrap();
    conn.execute_batch(
        "BEGIN;
         ALTER TABLE entries RENAME TO e;
         CREATE TABLE entries (idx INTEGER PRIMARY KEY, dedup BLOB NOT NULL UNIQUE,
           leaf_hash BLOB NOT NULL, timestamp INTEGER NOT NULL, signature BLOB NOT NULL,
           timestamped_entry BLOB NOT NULL, precert BLOB, chain BLOB NOT NULL);
         CREATE INDEX entries_by_leaf_hash ON entries(leaf_hash);
         INSERT INTO entries SELECT * FROM e;
         DROP TABLE e;
         DROP TABLE lookup;
         DELETE FROM meta WHERE key = 'indexed_upto';
         COMMIT;",
    )
    .unwrap();
    drop(conn);

    let (log, _) = open_log(dir.path(), &ca, 2);
    let conn = rusqlite::Connection::open(db_path(dir.path())).unwrap();
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'entries'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("UNIQUE"), "{sql}");
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 0);
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM lookup", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        rows,
        2 * 5,
        "the backlog was written at start-up: 2 rows per entry"
    );
    check_lookups(&log, &ca, &logged).await;
}

/// A failed commit whose recovery also fails leaves the log broken: it refuses every
/// submission (storing nothing), keeps retrying the reload on its own, and becomes ready
/// again once a reload succeeds; later commits keep it ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_log_refuses_submissions_retries_recovery_and_becomes_ready_again() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("broken root");
    let (log, switch) = open_log(dir.path(), &ca, 4096);
    let ok = submit_new(&log, &ca, 7000..7001).await;
    assert_eq!(ok.len(), 1);

    // The commit fails, then the reload fails too: broken.
    switch.arm(Step::Commit, 1);
    switch.arm(Step::Begin, u32::MAX);
    let r = log
        .submit(&[ca.issue(Leaf::precert(7001))], Kind::Precert)
        .await;
    assert!(
        matches!(r, Err(LogError::Storage(_) | LogError::Recovering)),
        "{r:?}"
    );
    assert!(
        log.health().is_err(),
        "a log that cannot reload is not ready"
    );
    let size = log.sth().tree_size;
    for serial in 7010..7015 {
        let r = log
            .submit(&[ca.issue(Leaf::precert(serial))], Kind::Precert)
            .await;
        assert!(
            matches!(r, Err(LogError::Storage(_) | LogError::Recovering)),
            "a broken log refuses submissions: {r:?}"
        );
    }
    assert_eq!(log.sth().tree_size, size, "a broken log stores nothing");
    assert!(log.health().is_err());

    // Storage heals: the log reloads on its own (no submission needed) and is ready.
    switch.disarm();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while log.health().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the log never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let more = submit_new(&log, &ca, 7020..7030).await;
    assert_eq!(more.len(), 10);
    assert!(log.health().is_ok(), "later commits keep the log ready");
}
