//! Many replicas on one real PostgreSQL (a cluster this test starts in a temporary
//! directory): any replica can die, the database can restart, and every certificate a
//! client received is in one dense, consistent tree; two writers racing for the write lock
//! leave one lineage; a large SQLite log migrates with the same root.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use brevis::ct::checkpoint::{GetSth, SignedTreeHead};
use brevis::ct::log::Storage;
use brevis::ct::{LogPublicKey, embedded_scts, merkle};
use brevis::model::pem;
use brevis::model::sct;
use common::keys::{ClientKey, Kind};
use common::pg::PgCluster;
use common::{Brevis, Op, email_config, run_python};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.com";

fn der(p: &str) -> Vec<u8> {
    pem::parse_first(p).unwrap().der
}

async fn get_json(url: &str) -> Value {
    let r = reqwest::get(url).await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

async fn sth(base: &str, key: &LogPublicKey) -> Option<SignedTreeHead> {
    let r = reqwest::get(format!("{base}/ct/v1/get-sth")).await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    let j: GetSth = r.json().await.ok()?;
    let sth = SignedTreeHead::from_json(&j)?;
    assert!(sth.verify(key), "an STH that does not verify");
    Some(sth)
}

fn decode_path(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| STANDARD.decode(h.as_str().unwrap()).unwrap())
        .collect()
}

/// Polls until `check` holds (bounded; never a fixed sleep as the success condition).
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A replica: its state directory and, while it runs, the process.
struct Replica {
    dir: PathBuf,
    running: Option<Brevis>,
}

/// The data directory of the first replica (CA and log key) copied for another one, as a
/// Kubernetes Secret would hand the same files to every pod.
fn copy_identity(from: &Path, to: &Path) {
    let copy_dir = |a: &Path, b: &Path| {
        std::fs::create_dir_all(b).unwrap();
        for e in std::fs::read_dir(a).unwrap() {
            let e = e.unwrap();
            if e.path().is_file() {
                std::fs::copy(e.path(), b.join(e.file_name())).unwrap();
            }
        }
    };
    copy_dir(&from.join("data/ca"), &to.join("data/ca"));
    let (fc, tc) = (from.join("data/ctlog"), to.join("data/ctlog"));
    std::fs::create_dir_all(&tc).unwrap();
    for f in ["log-key.pem", "log-public-key.pem"] {
        std::fs::copy(fc.join(f), tc.join(f)).unwrap();
    }
}

/// What the load generator saw.
#[derive(Default)]
struct Outcomes {
    /// (chain PEM, the replica's API URL) of every 200.
    issued: Vec<(Vec<String>, String)>,
    /// Non-200 answers and transport errors.
    failed: usize,
}

/// Clients spread over the replicas' URLs (round robin) until `stop`.
fn load(
    workers: usize,
    urls: Arc<Mutex<Vec<String>>>,
    token: String,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Outcomes>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|w| {
            let (urls, token, stop, out) = (urls.clone(), token.clone(), stop.clone(), out.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(90))
                    .build()
                    .unwrap();
                let mut n = w;
                while !stop.load(Ordering::Relaxed) {
                    let url = {
                        let u = urls.lock().unwrap();
                        if u.is_empty() {
                            None
                        } else {
                            Some(u[n % u.len()].clone())
                        }
                    };
                    n += 1;
                    let Some(url) = url else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let body = ClientKey::generate(Kind::P256).v2_key_body(&token, ALICE);
                    let r = http
                        .post(format!("{url}/api/v2/signingCert"))
                        .json(&body)
                        .send()
                        .await;
                    let ok = match r {
                        Ok(r) if r.status() == 200 => r.json::<Value>().await.ok(),
                        _ => None,
                    };
                    let failed = {
                        let mut o = out.lock().unwrap();
                        match ok {
                            Some(v) => {
                                let chain =
                                    v["signedCertificateEmbeddedSct"]["chain"]["certificates"]
                                        .as_array()
                                        .unwrap()
                                        .iter()
                                        .map(|c| c.as_str().unwrap().to_string())
                                        .collect();
                                o.issued.push((chain, url));
                                false
                            }
                            None => {
                                o.failed += 1;
                                true
                            }
                        }
                    };
                    if failed {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect()
}

/// Records every tree head any replica serves, until `stop`.
fn watch_heads(
    ctlogs: Arc<Mutex<Vec<String>>>,
    key: LogPublicKey,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<SignedTreeHead>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let bases = ctlogs.lock().unwrap().clone();
            for b in bases {
                if let Some(h) = sth(&b, &key).await {
                    seen.lock().unwrap().push(h);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// Every tree head ever served belongs to one lineage: equal sizes have equal roots, and
/// each is consistent with the next larger one (proofs from `base`, checked here).
async fn assert_one_lineage(base: &str, heads: &[SignedTreeHead]) {
    let mut by_size: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
    for h in heads {
        if let Some(r) = by_size.insert(h.tree_size, h.root) {
            assert_eq!(r, h.root, "two roots for tree size {}", h.tree_size);
        }
    }
    let sizes: Vec<(u64, [u8; 32])> = by_size.into_iter().collect();
    for w in sizes.windows(2) {
        let ((a, ra), (b, rb)) = (w[0], w[1]);
        if a == 0 {
            continue;
        }
        let p = get_json(&format!(
            "{base}/ct/v1/get-sth-consistency?first={a}&second={b}"
        ))
        .await;
        merkle::verify_consistency(a, b, &decode_path(&p["consistency"]), &ra, &rb)
            .unwrap_or_else(|e| panic!("{a} -> {b} not consistent: {e:?}"));
    }
}

/// Every issued certificate: its SCT verifies (brevis's verifier), its leaf_index entry
/// is in the tree of `head` (inclusion proof checked here); a sample is also checked by
/// pyca/cryptography. The tree is dense: `get-entries` returns every index below its size.
async fn assert_all_logged(
    base: &str,
    key: &LogPublicKey,
    key_path: &Path,
    head: &SignedTreeHead,
    issued: &[(Vec<String>, String)],
) {
    let mut indexes = std::collections::HashSet::new();
    for (i, (chain, _)) in issued.iter().enumerate() {
        let e = &embedded_scts(&der(&chain[0]), &der(&chain[1])).unwrap()[0];
        assert!(key.verify_sct(&e.sct, &e.entry()), "SCT {i}");
        let index = sct::parse_leaf_index(&e.sct.extensions).expect("leaf_index");
        assert!(indexes.insert(index), "leaf index {index} given twice");
        let url = format!(
            "{base}/ct/v1/get-proof-by-hash?hash={}&tree_size={}",
            url::form_urlencoded::byte_serialize(STANDARD.encode(e.leaf_hash()).as_bytes())
                .collect::<String>(),
            head.tree_size
        );
        let p = get_json(&url).await;
        assert_eq!(p["leaf_index"].as_u64(), Some(index));
        merkle::verify_inclusion(
            index,
            head.tree_size,
            &e.leaf_hash(),
            &decode_path(&p["audit_path"]),
            &head.root,
        )
        .unwrap_or_else(|e| panic!("certificate {i} (index {index}) not in the tree: {e:?}"));
        if i % (issued.len() / 4).max(1) == 0 {
            let py = run_python(
                "verify_sct.py",
                &[key_path.to_str().unwrap()],
                &chain.concat(),
            );
            assert_eq!(py["scts"][0]["verified"], true, "{py}");
        }
    }
    let mut start = 0;
    while start < head.tree_size {
        let e = get_json(&format!(
            "{base}/ct/v1/get-entries?start={start}&end={}",
            head.tree_size - 1
        ))
        .await;
        let n = e["entries"].as_array().unwrap().len() as u64;
        assert!(n > 0, "no entry at {start}");
        start += n;
    }
    assert_eq!(start, head.tree_size);
}

struct Cluster {
    op: Op,
    config: PathBuf,
    replicas: Vec<Replica>,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    fn start(n: usize, pg: &PgCluster, extra: &[&str]) -> Cluster {
        let op = Op::start();
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("identity.yaml");
        std::fs::write(&config, email_config(&op)).unwrap();
        let mut replicas: Vec<Replica> = (0..n)
            .map(|i| Replica {
                dir: tmp.path().join(format!("r{i}")),
                running: None,
            })
            .collect();
        let mut c = Cluster {
            op,
            config,
            replicas: Vec::new(),
            _tmp: tmp,
        };
        let url = pg.url("brevis");
        for i in 0..n {
            if i > 0 {
                copy_identity(&replicas[0].dir, &replicas[i].dir);
            }
            std::fs::create_dir_all(&replicas[i].dir).unwrap();
            replicas[i].running = Some(c.launch(&replicas[i].dir, &url, extra, &[]));
        }
        c.replicas = replicas;
        c
    }

    fn launch(&self, dir: &Path, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Brevis {
        let mut args = vec!["--ct-log-storage", url, "--ct-log-checkpoint-poll", "100ms"];
        args.extend_from_slice(extra);
        Brevis::start_in_env(dir, Some(&self.config), &args, env)
    }

    fn urls(&self) -> Vec<String> {
        self.replicas
            .iter()
            .filter_map(|r| r.running.as_ref().map(|b| b.url.clone()))
            .collect()
    }

    fn ctlogs(&self) -> Vec<String> {
        self.replicas
            .iter()
            .filter_map(|r| r.running.as_ref().and_then(|b| b.ctlog_url.clone()))
            .collect()
    }
}

fn count(out: &Arc<Mutex<Outcomes>>) -> usize {
    out.lock().unwrap().issued.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_survive_killed_replicas_and_a_database_restart() {
    let mut pg = PgCluster::start();
    let mut cluster = Cluster::start(3, &pg, &[]);
    let first = cluster.replicas[0].running.as_ref().unwrap();
    let key = first.ctlog_key();
    let key_path = cluster.replicas[0]
        .dir
        .join("data/ctlog/log-public-key.pem");
    let token = cluster
        .op
        .mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await;

    let urls = Arc::new(Mutex::new(cluster.urls()));
    let ctlogs = Arc::new(Mutex::new(cluster.ctlogs()));
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let watcher = watch_heads(ctlogs.clone(), key.clone(), stop.clone(), heads.clone());
    let workers = load(6, urls.clone(), token.clone(), stop.clone(), out.clone());
    let long = Duration::from_secs(120);

    // 1. Load spread over three replicas.
    eventually("certificates from all three", long, || async {
        count(&out) >= 30
    })
    .await;
    // 2. SIGKILL one replica mid-load (each replica takes the log's write lock in turn).
    let killed = cluster.replicas[0].running.take().unwrap();
    let (dir0, _) = killed.stop();
    let killed_at = Instant::now();
    let n = count(&out);
    eventually("a certificate after the kill", long, || async {
        count(&out) > n
    })
    .await;
    eprintln!(
        "timing: next certificate {:?} after SIGKILL of a replica",
        killed_at.elapsed()
    );
    eventually("issuance goes on without replica 0", long, || async {
        count(&out) >= n + 30
    })
    .await;
    *urls.lock().unwrap() = cluster.urls();
    *ctlogs.lock().unwrap() = cluster.ctlogs();
    // 3. SIGKILL another replica while its requests are in flight.
    let killed = cluster.replicas[1].running.take().unwrap();
    let _ = killed.stop();
    let n = count(&out);
    eventually("issuance goes on with one replica", long, || async {
        count(&out) >= n + 20
    })
    .await;
    *urls.lock().unwrap() = cluster.urls();
    *ctlogs.lock().unwrap() = cluster.ctlogs();
    // The first one comes back with its old state directory.
    let url = pg.url("brevis");
    cluster.replicas[0].running = Some(cluster.launch(&dir0, &url, &[], &[]));
    *urls.lock().unwrap() = cluster.urls();
    *ctlogs.lock().unwrap() = cluster.ctlogs();
    let n = count(&out);
    eventually("the restarted replica issues", long, || async {
        count(&out) >= n + 20
    })
    .await;
    // 4. PostgreSQL goes down mid-load (as a crash or a failover would take it): requests
    //    fail closed with 503 and readiness drops; when it is back the replicas reconnect
    //    by themselves, no restart.
    pg.stop("immediate");
    let down = Instant::now();
    let probe = cluster.urls()[0].clone();
    eventually("readiness drops while the database is down", long, || {
        let probe = probe.clone();
        async move {
            reqwest::get(format!("{probe}/readyz"))
                .await
                .is_ok_and(|r| r.status() == 503)
        }
    })
    .await;
    eprintln!(
        "timing: readiness dropped {:?} after the database stopped",
        down.elapsed()
    );
    let body = ClientKey::generate(Kind::P256).v2_key_body(&token, ALICE);
    let asked = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{probe}/api/v2/signingCert"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let took = asked.elapsed();
    assert_eq!(r.status(), 503, "no database: fail closed, retryable");
    assert!(r.headers().contains_key("retry-after"));
    eprintln!("timing: a signing request without the database failed in {took:?}");
    pg.start_again();
    let up = Instant::now();
    eventually("readiness returns with the database", long, || {
        let probe = probe.clone();
        async move {
            reqwest::get(format!("{probe}/readyz"))
                .await
                .is_ok_and(|r| r.status() == 200)
        }
    })
    .await;
    eprintln!(
        "timing: ready again {:?} after the database started",
        up.elapsed()
    );
    let n = count(&out);
    eventually("issuance after the database restart", long, || async {
        count(&out) > n
    })
    .await;
    eprintln!(
        "timing: first certificate {:?} after the database started",
        up.elapsed()
    );
    eventually("issuance after the database restart", long, || async {
        count(&out) >= n + 20
    })
    .await;

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let _ = watcher.await;

    // Every replica converges on the database's checkpoint.
    let db_size: u64 = pg
        .psql("brevis", "SELECT tree_size FROM checkpoint")
        .parse()
        .unwrap();
    for base in cluster.ctlogs() {
        eventually("replicas serve the latest checkpoint", long, || {
            let (base, key) = (base.clone(), key.clone());
            async move {
                sth(&base, &key)
                    .await
                    .is_some_and(|h| h.tree_size == db_size)
            }
        })
        .await;
    }
    let base = cluster.ctlogs()[0].clone();
    let head = sth(&base, &key).await.unwrap();
    let (issued, failed) = {
        let o = out.lock().unwrap();
        (o.issued.clone(), o.failed)
    };
    eprintln!(
        "issued {}, refused or cut off {failed}, tree size {}",
        issued.len(),
        head.tree_size
    );
    assert!(issued.len() as u64 <= head.tree_size);
    let dense = pg.psql(
        "brevis",
        "SELECT count(*) = max(idx) + 1 AND min(idx) = 0 FROM entries",
    );
    assert_eq!(dense, "t", "indices are dense");
    assert_all_logged(&base, &key, &key_path, &head, &issued).await;
    let mut all = heads.lock().unwrap().clone();
    all.push(head);
    assert_one_lineage(&base, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_racing_for_the_lock_leave_one_lineage() {
    let pg = PgCluster::start();
    let lease = ["--ct-log-storage-lease-timeout", "1s"];
    let mut cluster = Cluster::start(1, &pg, &lease);
    let key = cluster.replicas[0].running.as_ref().unwrap().ctlog_key();
    // Replica 1 stalls inside its first batch, past its lease, as a paused process would.
    let dir1 = cluster._tmp.path().join("r1");
    copy_identity(&cluster.replicas[0].dir, &dir1);
    let url = pg.url("brevis");
    let stalled = cluster.launch(
        &dir1,
        &url,
        &lease,
        &[("BREVIS_FAULT_PG_STALL_BEFORE_COMMIT_MS", "4000")],
    );
    let token = cluster
        .op
        .mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await;
    let body = || ClientKey::generate(Kind::P256).v2_key_body(&token, ALICE);

    let heads = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let ctlogs = Arc::new(Mutex::new(vec![
        cluster.ctlogs()[0].clone(),
        stalled.ctlog_url.clone().unwrap(),
    ]));
    let watcher = watch_heads(ctlogs, key.clone(), stop.clone(), heads.clone());

    let stalled_request = {
        let (url, body) = (stalled.url.clone(), body());
        tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("{url}/api/v2/signingCert"))
                .json(&body)
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        })
    };
    eventually(
        "the stalled writer holds the lock",
        Duration::from_secs(30),
        || async { stalled.log().contains("stalling before COMMIT") },
    )
    .await;
    // The other writer waits for the lock, gets it once the database ends the stalled
    // session, and commits its own batch.
    let healthy = cluster.replicas[0].running.as_ref().unwrap();
    let asked = Instant::now();
    let (s, r) = healthy.post_json("/api/v2/signingCert", &body()).await;
    assert_eq!(s, 200, "{r}");
    eprintln!(
        "timing: the other writer committed {:?} after asking (lease timeout 1 s)",
        asked.elapsed()
    );
    let chain: Vec<String> = r["signedCertificateEmbeddedSct"]["chain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let status = stalled_request.await.unwrap();
    assert_ne!(status, 200, "the stalled writer's batch must not commit");
    assert_eq!(pg.psql("brevis", "SELECT tree_size FROM checkpoint"), "1");
    let e = &embedded_scts(&der(&chain[0]), &der(&chain[1])).unwrap()[0];
    assert_eq!(sct::parse_leaf_index(&e.sct.extensions), Some(0));

    // The stalled writer recovers and continues the same tree.
    let mut ok = false;
    for _ in 0..50 {
        let (s, _) = stalled.post_json("/api/v2/signingCert", &body()).await;
        if s == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the stalled replica issues again");
    assert_eq!(pg.psql("brevis", "SELECT tree_size FROM checkpoint"), "2");
    let base = cluster.ctlogs()[0].clone();
    eventually("both heads seen", Duration::from_secs(30), || async {
        heads.lock().unwrap().iter().any(|h| h.tree_size == 2)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.await;
    let all = heads.lock().unwrap().clone();
    assert_one_lineage(&base, &all).await;
    let _ = &mut cluster;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_log_of_100k_entries_migrates_with_the_same_root_and_proofs() {
    let pg = PgCluster::start();
    let tmp = tempfile::tempdir().unwrap();
    // `brevis ctlog serve --data-dir <x>/log` (tests/common's CtLog) reads these.
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let dir = a.join("log");
    let sqlite = Storage::Sqlite(Some(dir.join("log.sqlite")));
    let size = tokio::task::spawn_blocking({
        let (dir, sqlite) = (dir.clone(), sqlite.clone());
        move || {
            brevis::ct::log::bulk::fill(
                &dir,
                &sqlite,
                "localhost:6962",
                100_003,
                4096,
                true,
                |_| {},
            )
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(size, 100_003);

    // An empty target gets the log; a non-empty one is refused.
    let migrate = |to: &str| {
        std::process::Command::new(common::brevis_bin())
            .args(["ctlog", "migrate", "--from"])
            .arg(format!("sqlite:{}", dir.join("log.sqlite").display()))
            .args(["--to", to])
            .output()
            .unwrap()
    };
    let out = migrate(&pg.url("brevis"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("copied 100003 entries"));
    let again = migrate(&pg.url("brevis"));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a log"));

    // Both logs served side by side: the same checkpoint, proofs from PostgreSQL that
    // verify against SQLite's root, and the same proofs and tiles from both.
    let roots = tmp.path().join("roots.pem");
    std::fs::write(&roots, common::testca::TestCa::new("migration").root_pem()).unwrap();
    let from_sqlite = common::CtLog::start(&a, &roots, &[]);
    std::fs::create_dir_all(b.join("log")).unwrap();
    for f in ["log-key.pem", "log-public-key.pem"] {
        std::fs::copy(dir.join(f), b.join("log").join(f)).unwrap();
    }
    let from_pg = common::CtLog::start(&b, &roots, &["--ct-log-storage", &pg.url("brevis")]);
    let key = from_sqlite.key();
    let x = sth(&from_sqlite.url, &key).await.unwrap();
    let y = sth(&from_pg.url, &key).await.unwrap();
    assert_eq!(
        (x.tree_size, x.root, x.timestamp),
        (y.tree_size, y.root, y.timestamp)
    );
    for index in [0u64, 1, 255, 256, 65_535, 65_536, 99_999, 100_002] {
        let e = get_json(&format!(
            "{}/ct/v1/get-entry-and-proof?leaf_index={index}&tree_size={}",
            from_pg.url, y.tree_size
        ))
        .await;
        // The synthetic entries hold random bytes, not certificates: hash the
        // MerkleTreeLeaf as it comes (RFC 6962: leaf hash = SHA-256(0x00 || leaf_input)).
        let leaf_input = STANDARD.decode(e["leaf_input"].as_str().unwrap()).unwrap();
        merkle::verify_inclusion(
            index,
            x.tree_size,
            &merkle::leaf_hash(&leaf_input),
            &decode_path(&e["audit_path"]),
            &x.root,
        )
        .unwrap_or_else(|e| panic!("entry {index}: {e:?}"));
    }
    for first in [1u64, 4096, 50_000, 100_002] {
        let path = |base: String| async move {
            get_json(&format!(
                "{base}/ct/v1/get-sth-consistency?first={first}&second={}",
                y.tree_size
            ))
            .await["consistency"]
                .clone()
        };
        let (p, q) = (
            path(from_pg.url.clone()).await,
            path(from_sqlite.url.clone()).await,
        );
        assert!(!decode_path(&p).is_empty());
        assert_eq!(p, q, "consistency {first} -> {}", y.tree_size);
    }
    for t in [
        "tile/0/000",
        "tile/0/390.p/163",
        "tile/1/000",
        "tile/1/001.p/134",
        "tile/2/000.p/1",
    ] {
        let get = |base: String| async move {
            let r = reqwest::get(format!("{base}/{t}")).await.unwrap();
            assert_eq!(r.status(), 200, "{base}/{t}");
            r.bytes().await.unwrap()
        };
        assert_eq!(
            get(from_sqlite.url.clone()).await,
            get(from_pg.url.clone()).await,
            "{t}"
        );
    }
}

/// A database restored from an older backup: a running replica stops being ready and
/// writes nothing; a replica started with the last published checkpoint refuses to start,
/// naming the cause; with a checkpoint the database does hold, it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_from_an_older_backup_is_refused() {
    let pg = PgCluster::start();
    let mut cluster = Cluster::start(1, &pg, &[]);
    let token = cluster
        .op
        .mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await;
    let body = || ClientKey::generate(Kind::P256).v2_key_body(&token, ALICE);
    let b = cluster.replicas[0].running.as_ref().unwrap();
    let base = b.ctlog_url.clone().unwrap();
    assert_eq!(b.post_json("/api/v2/signingCert", &body()).await.0, 200);
    let backup = pg.dump("brevis", "after-one");
    let early = reqwest::get(format!("{base}/ct/v1/get-sth"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(b.post_json("/api/v2/signingCert", &body()).await.0, 200);
    }
    let published = reqwest::get(format!("{base}/ct/v1/get-sth"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(published.contains("\"tree_size\":3"), "{published}");

    pg.restore("brevis", &backup);
    eventually(
        "the running replica notices",
        Duration::from_secs(30),
        || async { b.get("/readyz").await.status() == 503 },
    )
    .await;
    let (s, _) = b.post_json("/api/v2/signingCert", &body()).await;
    assert_ne!(s, 200, "nothing is written on a rolled-back tree");
    assert!(b.log().contains("went back to an older tree"));
    assert_eq!(pg.psql("brevis", "SELECT tree_size FROM checkpoint"), "1");

    let dir = cluster.replicas[0].dir.clone();
    drop(cluster.replicas[0].running.take());
    let file = dir.join("published-sth.json");
    std::fs::write(&file, &published).unwrap();
    let out = std::process::Command::new(common::brevis_bin())
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-port",
            "0",
        ])
        .args(["--ctlog-port", "0", "--insecure-http-issuers"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--config-path")
        .arg(&cluster.config)
        .args([
            "--ct-log-storage",
            &pg.url("brevis"),
            "--ct-log-last-checkpoint",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds tree size 1, but the log already published tree size 3"),
        "{err}"
    );
    assert!(err.contains("start a new log"), "{err}");

    // The checkpoint the backup does hold is fine.
    std::fs::write(&file, &early).unwrap();
    let url = pg.url("brevis");
    let file_arg = file.to_str().unwrap().to_string();
    let again = cluster.launch(&dir, &url, &["--ct-log-last-checkpoint", &file_arg], &[]);
    assert_eq!(again.get("/readyz").await.status(), 200);
}
