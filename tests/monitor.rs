//! `brevis monitor` against real logs: brevis's embedded log fed by real issuance (a real
//! OpenID Provider, every issuer type), standalone `brevis ctlog serve` logs fed through
//! `add-chain`, both read paths (RFC 6962 and static-ct-api). It must report exactly the
//! watched certificates, resume without a gap or a repeat after SIGKILL, and report a
//! forked log, a shrunk tree and a bad signature as `inconsistent` (exit 2 with `--once`).

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::keys::{ClientKey, Kind};
use common::testca::{Leaf, TestCa};
use common::{Brevis, CtLog, Op, brevis_bin, eventually, github_claims};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

struct Run {
    code: i32,
    events: Vec<Value>,
    stderr: String,
}

fn monitor_once(log: &str, key: &[&str], watch: &Path, state: &Path, extra: &[&str]) -> Run {
    let out = Command::new(brevis_bin())
        .args(["monitor", "--once", "--log", log])
        .args(key)
        .arg("--watch")
        .arg(watch)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let events = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        events,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn key_arg(p: &Path) -> Vec<String> {
    vec!["--log-public-key".into(), p.display().to_string()]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// (watch, serial) of every match event; panics on any other event.
fn matches(run: &Run) -> BTreeSet<(String, String)> {
    assert_eq!(run.code, 0, "monitor failed: {}", run.stderr);
    run.events
        .iter()
        .map(|e| {
            assert_eq!(e["event"], "match", "{e}");
            (
                e["watch"].as_str().unwrap().to_string(),
                e["serial"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn serial_of(chain_pem: &str) -> String {
    let der = brevis::model::pem::parse_first(chain_pem).unwrap().der;
    let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
    hex::encode(c.raw_serial())
}

async fn add_chain(base: &str, chain: &[Vec<u8>]) {
    let body = json!({"chain": chain.iter().map(|c| STANDARD.encode(c)).collect::<Vec<_>>()});
    let r = reqwest::Client::new()
        .post(format!("{base}/ct/v1/add-chain"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}

/// Submits certificates for serials `range` (identity `user<serial>@example.com`).
async fn fill(log: &CtLog, ca: &TestCa, range: std::ops::Range<u64>) {
    let certs: Vec<Vec<u8>> = range.map(|s| ca.issue(Leaf::certificate(s))).collect();
    for chunk in certs.chunks(16) {
        let futs = chunk
            .iter()
            .map(|c| add_chain(&log.url, std::slice::from_ref(c)));
        futures_join(futs).await;
    }
}

async fn futures_join<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let handles: Vec<_> = futs.collect();
    for f in handles {
        f.await;
    }
}

const EXAMPLE_WATCH: &str =
    "watches:\n  - name: example\n    identity-pattern: \"*@example.com\"\n";

struct Issuer<'a> {
    op: &'a Op,
    b: &'a Brevis,
    key: ClientKey,
}

impl Issuer<'_> {
    /// Issues a certificate for `tenant` ("" = the root issuer, email type) and returns its
    /// serial.
    async fn issue(&self, tenant: &str, sub: &str, claims: Value, challenge: &str) -> String {
        let issuer = if tenant.is_empty() {
            self.op.issuer.clone()
        } else {
            self.op.tenant(tenant)
        };
        let token = self.op.mint_at(&issuer, "sigstore", sub, claims).await;
        let (s, v) = self
            .b
            .post_json(
                "/api/v2/signingCert",
                &self.key.v2_key_body(&token, challenge),
            )
            .await;
        assert_eq!(s, 200, "{tenant} {sub}: {v}");
        serial_of(
            v["signedCertificateEmbeddedSct"]["chain"]["certificates"][0]
                .as_str()
                .unwrap(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_reports_exactly_the_watched_certificates_of_every_issuer_type() {
    let op = Op::start_with(&[("TENANTS", "github,k8s,uri,user,spiffe")]);
    let t = |n: &str| op.tenant(n);
    let config = format!(
        "oidc-issuers:
  {root}:
    issuer-url: {root}
    client-id: sigstore
    type: email
  {gh}:
    issuer-url: {gh}
    client-id: sigstore
    type: github-workflow
  {k8s}:
    issuer-url: {k8s}
    client-id: sigstore
    type: kubernetes
  {uri}:
    issuer-url: {uri}
    client-id: sigstore
    type: uri
    subject-domain: http://127.0.0.1
  {user}:
    issuer-url: {user}
    client-id: sigstore
    type: username
    subject-domain: 127.0.0.1
  {spiffe}:
    issuer-url: {spiffe}
    client-id: sigstore
    type: spiffe
    spiffe-trust-domain: example.org
",
        root = op.issuer,
        gh = t("github"),
        k8s = t("k8s"),
        uri = t("uri"),
        user = t("user"),
        spiffe = t("spiffe"),
    );
    let b = Brevis::start(&config, &[]);
    let work = tempfile::tempdir().unwrap();
    let (gh_sub, gh_claims) = github_claims();
    let owner_uri = format!(
        "{}/{}",
        gh_claims["server_url"]
            .as_str()
            .unwrap_or("https://github.com"),
        gh_claims["repository_owner"].as_str().unwrap()
    );
    let watch = work.path().join("watch.yaml");
    std::fs::write(
        &watch,
        format!(
            "watches:
  - name: staff
    identity-pattern: \"*@example.com\"
    issuer: \"{root}\"
  - name: acme-repos
    extensions:
      source-repository-owner-uri: \"{owner_uri}\"
  - name: k8s-baz
    identity: \"https://kubernetes.io/namespaces/foo/serviceaccounts/baz\"
  - name: uri-a
    identity-pattern: \"http://127.0.0.1/users/a*\"
  - name: robot
    identity: \"robot!127.0.0.1\"
  - name: prod-workloads
    identity-pattern: \"spiffe://example.org/ns/prod/*\"
    issuer: \"{spiffe}\"
",
            root = op.issuer,
            spiffe = t("spiffe"),
        ),
    )
    .unwrap();
    let issuer = Issuer {
        op: &op,
        b: &b,
        key: ClientKey::generate(Kind::P256),
    };
    let email = |e: &str| json!({"email": e, "email_verified": true});
    let mut other_owner = gh_claims.clone();
    other_owner["repository_owner"] = json!("other-org");
    // (watch it must match, tenant, sub, claims, challenge)
    let cases: Vec<(Option<&str>, &str, String, Value, String)> = vec![
        (
            Some("staff"),
            "",
            "a".into(),
            email("alice@example.com"),
            "alice@example.com".into(),
        ),
        (
            None,
            "",
            "b".into(),
            email("bob@example.org"),
            "bob@example.org".into(),
        ),
        (
            Some("acme-repos"),
            "github",
            gh_sub.clone(),
            gh_claims.clone(),
            gh_sub.clone(),
        ),
        (None, "github", gh_sub.clone(), other_owner, gh_sub.clone()),
        (
            Some("k8s-baz"),
            "k8s",
            "system:serviceaccount:foo:baz".into(),
            json!({"kubernetes.io": {"namespace": "foo", "serviceaccount": {"name": "baz", "uid": "u"}}}),
            "system:serviceaccount:foo:baz".into(),
        ),
        (
            None,
            "k8s",
            "system:serviceaccount:bar:baz".into(),
            json!({"kubernetes.io": {"namespace": "bar", "serviceaccount": {"name": "baz", "uid": "u"}}}),
            "system:serviceaccount:bar:baz".into(),
        ),
        (
            Some("uri-a"),
            "uri",
            "http://127.0.0.1/users/alice".into(),
            json!({}),
            "http://127.0.0.1/users/alice".into(),
        ),
        (
            None,
            "uri",
            "http://127.0.0.1/users/zed".into(),
            json!({}),
            "http://127.0.0.1/users/zed".into(),
        ),
        (
            Some("robot"),
            "user",
            "robot".into(),
            json!({}),
            "robot".into(),
        ),
        (None, "user", "human".into(), json!({}), "human".into()),
        (
            Some("prod-workloads"),
            "spiffe",
            "spiffe://example.org/ns/prod/sa/api".into(),
            json!({}),
            "spiffe://example.org/ns/prod/sa/api".into(),
        ),
        (
            None,
            "spiffe",
            "spiffe://example.org/ns/dev/sa/api".into(),
            json!({}),
            "spiffe://example.org/ns/dev/sa/api".into(),
        ),
    ];
    let mut want = BTreeSet::new();
    for (w, tenant, sub, claims, challenge) in &cases {
        let serial = issuer.issue(tenant, sub, claims.clone(), challenge).await;
        if let Some(w) = w {
            want.insert((w.to_string(), serial));
        }
    }
    let log = b.ctlog_url.clone().unwrap();
    let trust = work.path().join("trust");
    common::clients::trust_config(&b, &trust, None, &[]);
    let trust_arg = vec![
        "--trust-root".to_string(),
        trust.join("trusted_root.json").display().to_string(),
    ];

    // RFC 6962 from the start of the log: exactly the watched ones.
    let state = work.path().join("state");
    let run = monitor_once(
        &log,
        &strs(&trust_arg),
        &watch,
        &state,
        &["--from-index", "0"],
    );
    assert_eq!(matches(&run), want, "{:#?}", run.events);
    let identities: BTreeSet<String> = run
        .events
        .iter()
        .map(|e| e["identity"].as_str().unwrap().to_string())
        .collect();
    for id in [
        "alice@example.com",
        "https://kubernetes.io/namespaces/foo/serviceaccounts/baz",
        "http://127.0.0.1/users/alice",
        "robot!127.0.0.1",
        "spiffe://example.org/ns/prod/sa/api",
    ] {
        assert!(identities.contains(id), "{id} not in {identities:?}");
    }
    let staff = run.events.iter().find(|e| e["watch"] == "staff").unwrap();
    assert_eq!(staff["issuer"], op.issuer.as_str());
    assert_eq!(staff["log"], log.as_str());
    assert_eq!(staff["precertificate"], true);

    // The static-ct-api read path sees the same.
    let state_static = work.path().join("state-static");
    let run = monitor_once(
        &log,
        &strs(&trust_arg),
        &watch,
        &state_static,
        &["--from-index", "0", "--static-ct"],
    );
    assert_eq!(matches(&run), want);

    // A new state without --from-index starts at the current tree: nothing old.
    let state_new = work.path().join("state-new");
    let run = monitor_once(&log, &strs(&trust_arg), &watch, &state_new, &[]);
    assert!(matches(&run).is_empty());

    // Nothing new: nothing reported, on either path.
    assert!(matches(&monitor_once(&log, &strs(&trust_arg), &watch, &state, &[])).is_empty());
    assert!(
        matches(&monitor_once(
            &log,
            &strs(&trust_arg),
            &watch,
            &state_static,
            &["--static-ct"]
        ))
        .is_empty()
    );

    // Two more, one watched: each state reports only the new watched one, once.
    let watched = issuer
        .issue("", "c", email("carol@example.com"), "carol@example.com")
        .await;
    issuer
        .issue("", "d", email("dave@example.net"), "dave@example.net")
        .await;
    let new = BTreeSet::from([("staff".to_string(), watched)]);
    assert_eq!(
        matches(&monitor_once(&log, &strs(&trust_arg), &watch, &state, &[])),
        new
    );
    assert_eq!(
        matches(&monitor_once(
            &log,
            &strs(&trust_arg),
            &watch,
            &state_static,
            &["--static-ct"]
        )),
        new
    );
    assert_eq!(
        matches(&monitor_once(
            &log,
            &strs(&trust_arg),
            &watch,
            &state_new,
            &[]
        )),
        new
    );
    assert!(matches(&monitor_once(&log, &strs(&trust_arg), &watch, &state, &[])).is_empty());
}

/// Reads a child's stdout lines into a shared list from a thread.
fn collect_lines(
    out: impl Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    let h = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            match line {
                Ok(line) => l.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    });
    (lines, h)
}

fn monitor_child(
    log: &str,
    key: &Path,
    watch: &Path,
    state: &Path,
    extra: &[&str],
) -> std::process::Child {
    Command::new(brevis_bin())
        .args(["monitor", "--log", log])
        .args(key_arg(key))
        .arg("--watch")
        .arg(watch)
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Whether a thread of `pid` sleeps in the kernel's pipe write.
fn blocked_on_pipe(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_scan_it_neither_skips_nor_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("monitor kill");
    let log = CtLog::start(dir.path(), &ca.write_root(dir.path()), &[]);
    // More events than a pipe holds: the monitor blocks writing them until the test reads.
    // The kill waits for that block (a thread asleep in the kernel's pipe write), so it
    // lands mid-scan and between batches whatever the machine's speed: a kill right
    // after a write, before the state's rename, would repeat that one batch (see
    // docs/monitor.md), and is not what this test is about.
    const N: u64 = 800;
    fill(&log, &ca, 0..N).await;
    let key = dir.path().join("log/log-public-key.pem");
    let watch = dir.path().join("watch.yaml");
    std::fs::write(&watch, EXAMPLE_WATCH).unwrap();
    let state = dir.path().join("state");
    let mut seen: Vec<u64> = Vec::new();
    for _ in 0..2 {
        let mut child = monitor_child(
            &log.url,
            &key,
            &watch,
            &state,
            &["--from-index", "0", "--batch", "3", "--interval", "1h"],
        );
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut read = |out: &mut BufReader<std::process::ChildStdout>| {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                return false;
            }
            let e: Value = serde_json::from_str(&line).unwrap();
            seen.push(e["index"].as_u64().unwrap());
            true
        };
        for _ in 0..40 {
            assert!(read(&mut out), "the monitor stopped early");
        }
        let pid = child.id();
        eventually("the monitor to block on a full pipe", || async move {
            blocked_on_pipe(pid)
        })
        .await;
        child.kill().unwrap();
        child.wait().unwrap();
        // What it wrote before the kill is still in the pipe.
        while read(&mut out) {}
        assert!(seen.len() < N as usize, "the scan finished before the kill");
    }
    let run = monitor_once(&log.url, &strs(&key_arg(&key)), &watch, &state, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    seen.extend(run.events.iter().map(|e| e["index"].as_u64().unwrap()));
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "an event was reported twice");
    assert_eq!(sorted, (0..N).collect::<Vec<_>>(), "an event was skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_shrinking_trees_and_bad_signatures_are_inconsistent() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("monitor fork");
    let roots = ca.write_root(dir.path());
    let start = |name: &str, key: Option<&Path>| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        match key {
            Some(k) => CtLog::start(&d, &roots, &["--key", k.to_str().unwrap()]),
            None => CtLog::start(&d, &roots, &[]),
        }
    };
    let a = start("a", None);
    let a_key = dir.path().join("a/log/log-key.pem");
    let pub_key = dir.path().join("a/log/log-public-key.pem");
    // b: the same key over a different, longer tree; c: a shorter one; d: same size,
    // different entries; e: another key.
    let b = start("b", Some(&a_key));
    let c = start("c", Some(&a_key));
    let d = start("d", Some(&a_key));
    let e = start("e", None);
    fill(&a, &ca, 0..5).await;
    fill(&b, &ca, 100..107).await;
    fill(&c, &ca, 200..203).await;
    fill(&d, &ca, 300..305).await;
    fill(&e, &ca, 400..405).await;
    let watch = dir.path().join("watch.yaml");
    std::fs::write(&watch, EXAMPLE_WATCH).unwrap();
    let key = key_arg(&pub_key);
    for path in [&[][..], &["--static-ct"][..]] {
        let tag = if path.is_empty() { "rfc6962" } else { "static" };
        let base = dir.path().join(format!("state-{tag}"));
        let mut args = vec!["--from-index", "0"];
        args.extend_from_slice(path);
        let run = monitor_once(&a.url, &strs(&key), &watch, &base, &args);
        assert_eq!(matches(&run).len(), 5);
        for (log, reason) in [
            (&b, "consistency_proof_failed"),
            (&c, "tree_shrank"),
            (&d, "fork"),
            (&e, "bad_signature"),
        ] {
            let state = dir.path().join(format!("state-{tag}-{reason}"));
            copy_dir(&base, &state);
            let run = monitor_once(&log.url, &strs(&key), &watch, &state, path);
            assert_eq!(run.code, 2, "{tag} {reason}: {}", run.stderr);
            assert_eq!(run.events.len(), 1, "{tag} {reason}: {:?}", run.events);
            assert_eq!(run.events[0]["event"], "inconsistent");
            assert_eq!(run.events[0]["reason"], reason, "{tag}: {}", run.events[0]);
            // Kept in the state: reported once, and every later run still exits 2 even
            // against the honest log.
            let again = monitor_once(&log.url, &strs(&key), &watch, &state, path);
            assert_eq!((again.code, again.events.len()), (2, 0), "{tag} {reason}");
            let honest = monitor_once(&a.url, &strs(&key), &watch, &state, path);
            assert_eq!(honest.code, 2, "{tag} {reason}");
            let text = std::fs::read_to_string(state.join("state.json")).unwrap();
            assert!(text.contains(reason), "{text}");
        }
        // The honest log alone stays clean.
        let run = monitor_once(&a.url, &strs(&key), &watch, &base, path);
        assert_eq!((run.code, run.events.len()), (0, 0), "{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_that_do_not_parse_are_reported_not_skipped() {
    // 300 entries of random bytes (bulk loading, as the benchmarks do), then real
    // certificates after them, sharing a data tile with the broken ones.
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let storage = brevis::ct::log::Storage::Sqlite(Some(log_dir.join("log.sqlite")));
    let d = log_dir.clone();
    tokio::task::spawn_blocking(move || {
        brevis::ct::log::bulk::fill(&d, &storage, "localhost:6962", 300, 100, true, |_| {})
    })
    .await
    .unwrap()
    .unwrap();
    let ca = TestCa::new("monitor unparsed");
    let log = CtLog::start(dir.path(), &ca.write_root(dir.path()), &[]);
    fill(&log, &ca, 0..3).await;
    let key = dir.path().join("log/log-public-key.pem");
    let watch = dir.path().join("watch.yaml");
    std::fs::write(&watch, EXAMPLE_WATCH).unwrap();
    for path in [&[][..], &["--static-ct"][..]] {
        let state = dir.path().join(format!("state{}", path.len()));
        let mut args = vec!["--from-index", "0"];
        args.extend_from_slice(path);
        let run = monitor_once(&log.url, &strs(&key_arg(&key)), &watch, &state, &args);
        assert_eq!(run.code, 0, "{path:?}: {}", run.stderr);
        let unparsed: Vec<u64> = run
            .events
            .iter()
            .filter(|e| e["event"] == "unparsed")
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        assert_eq!(unparsed, (0..300).collect::<Vec<_>>(), "{path:?}");
        let first = run
            .events
            .iter()
            .find(|e| e["event"] == "unparsed")
            .unwrap();
        assert!(
            first["reason"].as_str().unwrap().contains("certificate"),
            "{first}"
        );
        let matched: Vec<u64> = run
            .events
            .iter()
            .filter(|e| e["event"] == "match")
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        assert_eq!(matched, [300, 301, 302], "{path:?}");
    }
}

/// A one-route test server: answers every request with `body` (JSON).
fn serve_json(body: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_head_older_than_the_stored_one_is_inconsistent() {
    // The log's own key signs a tree head of the same tree with an earlier timestamp,
    // served by a test server standing in for the log.
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("monitor time");
    let log = CtLog::start(dir.path(), &ca.write_root(dir.path()), &[]);
    fill(&log, &ca, 0..3).await;
    let key = dir.path().join("log/log-public-key.pem");
    let watch = dir.path().join("watch.yaml");
    std::fs::write(&watch, EXAMPLE_WATCH).unwrap();
    let state = dir.path().join("state");
    let run = monitor_once(
        &log.url,
        &strs(&key_arg(&key)),
        &watch,
        &state,
        &["--from-index", "0"],
    );
    assert_eq!(matches(&run).len(), 3);
    let sth: Value = reqwest::get(format!("{}/ct/v1/get-sth", log.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let signer = brevis::ct::log::load_or_create_key(&dir.path().join("log")).unwrap();
    let old = sth["timestamp"].as_u64().unwrap() - 60_000;
    let root: [u8; 32] = STANDARD
        .decode(sth["sha256_root_hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let input = brevis::model::sct::tree_head_signature_input(old, 3, &root);
    let signature = brevis::ca::Signer::sign(&signer, &input).unwrap();
    // TLS DigitallySigned: SHA-256 (4), ECDSA (3), a 16-bit length, the signature.
    let mut ds = vec![4u8, 3];
    ds.extend_from_slice(&(signature.len() as u16).to_be_bytes());
    ds.extend_from_slice(&signature);
    let forged = json!({
        "tree_size": 3,
        "timestamp": old,
        "sha256_root_hash": sth["sha256_root_hash"],
        "tree_head_signature": STANDARD.encode(&ds),
    });
    let url = serve_json(forged.to_string());
    let run = monitor_once(&url, &strs(&key_arg(&key)), &watch, &state, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.events.len(), 1, "{:?}", run.events);
    assert_eq!(run.events[0]["reason"], "timestamp_went_backwards");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A webhook receiver: refuses the first `refuse` requests with 500, records the JSON
/// bodies it accepts.
fn webhook(refuse: usize) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        let mut n = 0usize;
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            // One request per connection is enough for the monitor's client; keep-alive
            // requests on the same connection are read in a loop.
            loop {
                let mut len = 0usize;
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                n += 1;
                let status = if n <= refuse {
                    "500 Internal Server Error"
                } else {
                    g.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    "200 OK"
                };
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes(),
                );
            }
        }
    });
    (url, got)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_long_lived_monitor_follows_the_log_with_webhook_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("monitor service");
    let log = CtLog::start(dir.path(), &ca.write_root(dir.path()), &[]);
    fill(&log, &ca, 0..3).await;
    let key = dir.path().join("log/log-public-key.pem");
    let watch = dir.path().join("watch.yaml");
    std::fs::write(&watch, EXAMPLE_WATCH).unwrap();
    let (hook, got) = webhook(2);
    let port = free_port();
    let mut child = monitor_child(
        &log.url,
        &key,
        &watch,
        &dir.path().join("state"),
        &[
            "--from-index",
            "0",
            "--interval",
            "200ms",
            "--webhook",
            &hook,
            "--metrics-port",
            &port.to_string(),
            "--metrics-host",
            "127.0.0.1",
        ],
    );
    let (lines, reader) = collect_lines(child.stdout.take().unwrap());
    eventually("the first three events", || {
        let n = lines.lock().unwrap().len();
        async move { n == 3 }
    })
    .await;
    // New entries while it runs are picked up by the next cycle.
    fill(&log, &ca, 3..5).await;
    eventually("the new events", || {
        let n = lines.lock().unwrap().len();
        async move { n == 5 }
    })
    .await;
    let indexes: Vec<u64> = lines
        .lock()
        .unwrap()
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    // The webhook refused twice and still got every event, each once.
    let hooked: Vec<u64> = got
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(hooked, [0, 1, 2, 3, 4]);
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let text = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert_eq!(value("brevis_monitor_entries_scanned_total"), 5.0);
    assert_eq!(
        value("brevis_monitor_matches_total{watch=\"example\"}"),
        5.0
    );
    assert_eq!(value("brevis_monitor_tree_size"), 5.0);
    assert_eq!(value("brevis_monitor_lag_entries"), 0.0);
    assert_eq!(value("brevis_monitor_inconsistencies"), 0.0);
    assert_eq!(value("brevis_monitor_unparsed_total"), 0.0);
    assert_eq!(
        value("brevis_monitor_webhook_deliveries_total{outcome=\"failed_attempt\"}"),
        2.0
    );
    assert!(value("brevis_monitor_consistency_checks_total{outcome=\"consistent\"}") >= 1.0);
    // SIGTERM: a clean exit.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn watch_files_that_cannot_work_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let signer =
        brevis::ca::LocalSigner::generate(brevis::ca::SigningAlgorithm::EcdsaP256Sha256).unwrap();
    std::fs::write(
        &key,
        brevis::model::pem::encode("PUBLIC KEY", brevis::ca::Signer::public_key_spki(&signer)),
    )
    .unwrap();
    let cases = HashMap::from([
        (
            "watches:\n  - name: a\n    extensions:\n      no-such-extension: x\n",
            "watches[0].extensions.no-such-extension",
        ),
        ("watches:\n  - name: a\n", "watches[0]: has no condition"),
        ("watches: []\n", "watches: no watches"),
    ]);
    for (text, want) in cases {
        let watch = dir.path().join("watch.yaml");
        std::fs::write(&watch, text).unwrap();
        let run = monitor_once(
            "http://127.0.0.1:1",
            &strs(&key_arg(&key)),
            &watch,
            &dir.path().join("state"),
            &[],
        );
        assert_eq!(run.code, 1, "{text}");
        assert!(run.stderr.contains(want), "{text}: {}", run.stderr);
    }
    // A log that cannot be reached is an error (exit 1), not a clean run.
    let watch = dir.path().join("watch.yaml");
    std::fs::write(&watch, EXAMPLE_WATCH).unwrap();
    let run = monitor_once(
        "http://127.0.0.1:1",
        &strs(&key_arg(&key)),
        &watch,
        &dir.path().join("state"),
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Neither key nor trust root.
    let out = Command::new(brevis_bin())
        .args([
            "monitor",
            "--once",
            "--log",
            "http://127.0.0.1:1",
            "--watch",
        ])
        .arg(&watch)
        .arg("--state-dir")
        .arg(dir.path().join("s"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-public-key or --trust-root"));
}
