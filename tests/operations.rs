//! What operators and monitors rely on: metrics after real requests, structured logs with
//! request ids and audit records, readiness, reload (file change and SIGHUP), graceful
//! shutdown, rate limits, slow-client timeouts, connection limits and TLS.

mod common;

use common::keys::{ClientKey, Kind};
use common::prom;
use common::{Brevis, CtLog, Op, email_config, eventually, now_secs};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.com";

fn email(who: &str) -> Value {
    json!({"email": who, "email_verified": true})
}

async fn scrape(b: &Brevis) -> prom::Metrics {
    prom::parse(&b.metrics().await)
}

/// `brevis_config_reloads_total{component, outcome}`.
async fn reloads(b: &Brevis, component: &str, outcome: &str) -> f64 {
    scrape(b).await.value(
        "brevis_config_reloads_total",
        &[("component", component), ("outcome", outcome)],
    )
}

fn signal(b: &Brevis, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(b.pid().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

async fn issue(b: &Brevis, op: &Op, who: &str) -> (u16, Value) {
    let t = op.mint(who.split('@').next().unwrap(), email(who)).await;
    let k = ClientKey::generate(Kind::P256);
    b.post_json("/api/v2/signingCert", &k.v2_key_body(&t, who))
        .await
}

#[tokio::test]
async fn metrics_after_real_requests() {
    let op = Op::start();
    let started = now_secs() as f64;
    let brevis = Brevis::start(&email_config(&op), &[]);

    // Two certificates (both key paths), a refused token, a refused proof, a GET.
    let (s, r) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 200, "{r}");
    let t = op.mint("alice", email(ALICE)).await;
    let k = ClientKey::generate(Kind::P384);
    let (s, r) = brevis
        .post_json("/api/v2/signingCert", &k.v2_csr_body(&t))
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, _) = brevis
        .post_json(
            "/api/v2/signingCert",
            &k.v2_key_body(&format!("{t}x"), ALICE),
        )
        .await;
    assert_eq!(s, 400);
    let mut body = k.v2_key_body(&t, ALICE);
    body["publicKeyRequest"]["proofOfPossession"] = json!(common::keys::b64(k.prove("mallory")));
    let (s, _) = brevis.post_json("/api/v2/signingCert", &body).await;
    assert_eq!(s, 400);
    assert_eq!(brevis.get("/api/v2/trustBundle").await.status(), 200);
    assert_eq!(brevis.get("/readyz").await.status(), 200);

    let text = brevis.metrics().await;
    let m = prom::parse(&text);
    let iss = op.issuer.as_str();
    // Fulcio's names.
    assert_eq!(m.value("fulcio_new_certs", &[]), 2.0);
    assert_eq!(m.types["fulcio_new_certs"], "counter");
    assert_eq!(
        m.value(
            "http_requests_total",
            &[("code", "200"), ("method", "post")]
        ),
        2.0
    );
    assert_eq!(
        m.value(
            "http_requests_total",
            &[("code", "400"), ("method", "post")]
        ),
        2.0
    );
    assert!(m.value("http_requests_total", &[("code", "200"), ("method", "get")]) >= 2.0);
    assert_eq!(m.types["fulcio_api_latency"], "histogram");
    assert_eq!(
        m.value(
            "fulcio_api_latency_count",
            &[("code", "200"), ("method", "post")]
        ),
        2.0
    );
    assert_eq!(
        m.value(
            "fulcio_api_latency_bucket",
            &[("code", "200"), ("method", "post"), ("le", "+Inf")]
        ),
        2.0
    );
    let build = m.label_sets("brevis_build_info");
    assert_eq!(build.len(), 1);
    assert_eq!(build[0]["version"], env!("CARGO_PKG_VERSION"));

    // Issuance and rejections, by closed label sets.
    assert_eq!(
        m.value(
            "brevis_certificates_issued_total",
            &[("issuer", iss), ("type", "email")]
        ),
        2.0
    );
    assert_eq!(
        m.value("brevis_rejections_total", &[("reason", "token_signature")]),
        1.0
    );
    assert_eq!(
        m.value("brevis_rejections_total", &[("reason", "bad_proof")]),
        1.0
    );
    for phase in [
        "authenticate",
        "identify",
        "prove",
        "prepare",
        "log",
        "issue",
    ] {
        assert!(
            m.value(
                "brevis_issuance_phase_duration_seconds_count",
                &[("phase", phase)]
            ) >= 2.0,
            "{phase}"
        );
    }
    for op_name in ["precertificate", "certificate"] {
        assert_eq!(
            m.value(
                "brevis_signer_duration_seconds_count",
                &[("operation", op_name)]
            ),
            2.0
        );
    }

    // OIDC fetches per issuer.
    for doc in ["discovery", "jwks"] {
        assert!(
            m.value(
                "brevis_oidc_fetches_total",
                &[("issuer", iss), ("document", doc), ("outcome", "ok")]
            ) >= 1.0,
            "{doc}"
        );
        assert!(
            m.value(
                "brevis_oidc_fetch_duration_seconds_count",
                &[("issuer", iss), ("document", doc)]
            ) >= 1.0
        );
    }

    // CT submission and the embedded log.
    assert_eq!(
        m.value(
            "brevis_ct_submissions_total",
            &[("log", "embedded"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(
        m.value(
            "brevis_ct_submission_duration_seconds_count",
            &[("log", "embedded")]
        ),
        2.0
    );
    assert_eq!(m.value("brevis_ctlog_tree_size", &[]), 2.0);
    assert_eq!(m.value("brevis_ctlog_batch_size_sum", &[]), 2.0);
    assert!(m.value("brevis_ctlog_commit_duration_seconds_count", &[]) >= 1.0);
    let checkpoint = m.value("brevis_ctlog_checkpoint_timestamp_seconds", &[]);
    assert!(
        checkpoint >= started - 1.0 && checkpoint <= now_secs() as f64 + 1.0,
        "{checkpoint}"
    );
    assert_eq!(m.value("brevis_ctlog_pending_submissions", &[]), 0.0);
    assert_eq!(m.value("brevis_ctlog_commit_failures_total", &[]), 0.0);
    // Both entries are found by hash from memory until 4096 have gathered.
    assert_eq!(m.value("brevis_ctlog_unindexed_entries", &[]), 2.0);
    assert_eq!(
        m.value("brevis_ctlog_lookup_write_failures_total", &[]),
        0.0
    );
    assert_eq!(
        m.value(
            "brevis_ctlog_submissions_total",
            &[("entry_type", "precert"), ("outcome", "ok")]
        ),
        2.0
    );

    // Health, reloads (none yet), process.
    assert_eq!(m.value("brevis_ready", &[]), 1.0);
    assert_eq!(
        m.value(
            "brevis_config_reloads_total",
            &[("component", "ca"), ("outcome", "success")]
        ),
        0.0
    );
    // Whole seconds in this collector: present, maybe still 0 in a short test.
    assert!(m.value("process_cpu_seconds_total", &[]) >= 0.0);
    assert_eq!(m.types["process_cpu_seconds_total"], "counter");
    assert!(m.value("process_resident_memory_bytes", &[]) > 1e6);
    assert!(m.value("process_open_fds", &[]) > 3.0);

    // Labels come from closed sets: no identity, token or key material ever shows up.
    assert!(!text.contains(ALICE) && !text.contains(&t[..20]));
}

#[tokio::test]
async fn json_logs_request_ids_and_the_audit_record() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &["--log-format", "json"]);
    let t = op.mint("alice", email(ALICE)).await;
    let k = ClientKey::generate(Kind::Ed25519);
    let r = brevis
        .http
        .post(format!("{}/api/v2/signingCert", brevis.url))
        .header("X-Request-Id", "ops-test-1")
        .json(&k.v2_key_body(&t, ALICE))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "ops-test-1");
    // Without one (or with an unusable one) brevis makes one up.
    for sent in [None, Some("bad id with spaces")] {
        let mut req = brevis.http.get(format!("{}/healthz", brevis.url));
        if let Some(v) = sent {
            req = req.header("X-Request-Id", v);
        }
        let r = req.send().await.unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 24, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    let log = brevis.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let audit: Vec<&Value> = lines.iter().filter(|l| l["target"] == "audit").collect();
    assert_eq!(audit.len(), 1, "one audit record per certificate: {log}");
    let a = audit[0];
    let f = &a["fields"];
    assert_eq!(f["message"], "certificate issued");
    assert_eq!(f["identity"], ALICE);
    assert_eq!(f["issuer"], op.issuer);
    assert_eq!(f["issuer_type"], "email");
    assert_eq!(f["key_type"], "ed25519");
    assert_eq!(f["ct_log_index"], 0);
    assert!(f["sct_timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(f["client"], "127.0.0.1");
    assert_eq!(f["serial"].as_str().unwrap().len(), 40);
    assert_eq!(
        a["span"]["id"], "ops-test-1",
        "the record carries the request id: {a}"
    );
    // The token never reaches the log.
    let signature = t.rsplit('.').next().unwrap();
    assert!(!log.contains(signature));

    // Fulcio's --log_type prod means JSON too.
    let fulcio_style = Brevis::start(&email_config(&op), &["--log_type", "prod"]);
    let first = fulcio_style.log();
    let first = first.lines().next().expect("a log line");
    assert!(serde_json::from_str::<Value>(first).is_ok(), "{first}");
}

#[tokio::test]
async fn readiness_follows_the_ct_log() {
    let op = Op::start();
    // Embedded log: ready.
    let brevis = Brevis::start(&email_config(&op), &[]);
    let r = brevis.get("/readyz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "SERVING");

    // A remote log nobody answers at: alive, not ready. The body is fixed text (the
    // cause is internal: it names hosts and errors); the reason goes to the log.
    let down = Brevis::start(&email_config(&op), &["--ct-log-url", "http://127.0.0.1:9"]);
    assert_eq!(down.get("/healthz").await.status(), 200);
    let r = down.get("/readyz").await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 14);
    assert_eq!(body["message"], "not ready to issue certificates", "{body}");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    let log = down.log();
    assert!(
        log.lines()
            .any(|l| l.contains("not ready") && l.contains("CT log") && l.contains("127.0.0.1:9")),
        "the cause is logged: {log}"
    );
    assert_eq!(scrape(&down).await.value("brevis_ready", &[]), 0.0);

    // A remote log that answers: ready once probed.
    let dir = tempfile::tempdir().unwrap();
    let roots = common::testca::TestCa::new("ops").write_root(dir.path());
    let log = CtLog::start(dir.path(), &roots, &[]);
    let up = Brevis::start(&email_config(&op), &["--ct-log-url", &log.url]);
    eventually("readiness with a live remote log", || async {
        up.get("/readyz").await.status() == 200
    })
    .await;
}

#[tokio::test]
async fn identity_config_reloads_on_change_and_sighup_and_survives_a_broken_file() {
    let op = Op::start();
    // Trust the issuer under another client id first: alice's token is refused.
    let wrong = email_config(&op).replace("client-id: sigstore", "client-id: other");
    let brevis = Brevis::start(&wrong, &["--watch-interval", "100ms"]);
    let config = brevis.dir.join("identity.yaml");
    let (s, _) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 400);

    // The file changes: the new config is picked up.
    std::fs::write(&config, email_config(&op)).unwrap();
    eventually("identity config reload", || async {
        reloads(&brevis, "identity_config", "success").await == 1.0
    })
    .await;
    let (s, r) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 200, "{r}");
    let conf: Value = brevis
        .get("/api/v2/configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(conf["issuers"][0]["audience"], "sigstore");

    // A broken file is refused and counted; the running config stays.
    std::fs::write(&config, "oidc-issuers: [this is not a map").unwrap();
    eventually("failed reload", || async {
        reloads(&brevis, "identity_config", "failure").await == 1.0
    })
    .await;
    let (s, r) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 200, "{r}");
    assert!(
        brevis
            .log()
            .contains("reload failed; the running configuration stays in effect")
    );
    // An invalid but parseable one too (unknown issuer type).
    std::fs::write(
        &config,
        email_config(&op).replace("type: email", "type: nonsense"),
    )
    .unwrap();
    eventually("second failed reload", || async {
        reloads(&brevis, "identity_config", "failure").await == 2.0
    })
    .await;
    let (s, _) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 200);

    // SIGHUP reloads everything, also when no file changed.
    signal(&brevis, "HUP");
    eventually("SIGHUP reload", || async {
        reloads(&brevis, "identity_config", "failure").await == 3.0
    })
    .await;
    std::fs::write(&config, wrong.clone()).unwrap();
    eventually("reload after the fix", || async {
        reloads(&brevis, "identity_config", "success").await == 2.0
    })
    .await;
    let (s, _) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 400, "the new (restrictive) config is in effect");
    let last = scrape(&brevis).await.value(
        "brevis_config_last_reload_success_timestamp_seconds",
        &[("component", "identity_config")],
    );
    assert!(last >= now_secs() as f64 - 60.0);
}

fn brevis_cmd(args: &[&str]) -> String {
    String::from_utf8(common::succeed(
        Command::new(common::brevis_bin()).args(args),
    ))
    .unwrap()
}

#[tokio::test]
async fn fileca_rotation_under_the_same_root_reloads_and_a_foreign_root_is_refused() {
    let op = Op::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = |p: &str| tmp.path().join(p).to_str().unwrap().to_string();
    brevis_cmd(&["ca", "create", "--out", &d("ca1")]);
    std::fs::create_dir_all(tmp.path().join("live")).unwrap();
    std::fs::copy(d("ca1/chain.pem"), d("live/chain.pem")).unwrap();
    std::fs::copy(d("ca1/intermediate-key.pem"), d("live/key.pem")).unwrap();
    let live_chain = d("live/chain.pem");
    let live_key = d("live/key.pem");
    let brevis = Brevis::start(
        &email_config(&op),
        &[
            "--fileca-cert",
            &live_chain,
            "--fileca-key",
            &live_key,
            "--watch-interval",
            "100ms",
        ],
    );
    let bundle = |b: &Brevis| {
        let url = format!("{}/api/v2/trustBundle", b.url);
        let http = b.http.clone();
        async move {
            let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            v["chains"][0]["certificates"].clone()
        }
    };
    let before = bundle(&brevis).await;

    // A new intermediate under the same root, written over the live files.
    brevis_cmd(&[
        "ca",
        "intermediate",
        "--root-cert",
        &d("ca1/root.pem"),
        "--root-key",
        &d("ca1/root-key.pem"),
        "--out",
        &d("ca2"),
        "--common-name",
        "rotated",
    ]);
    // Key first, then chain: in between, the pair does not match and the reload fails;
    // the watcher tries again when the second file lands.
    std::fs::copy(d("ca2/intermediate-key.pem"), &live_key).unwrap();
    std::fs::copy(d("ca2/chain.pem"), &live_chain).unwrap();
    eventually("CA reload", || async {
        reloads(&brevis, "ca", "success").await >= 1.0
    })
    .await;
    let after = bundle(&brevis).await;
    assert_ne!(after[0], before[0], "new intermediate served");
    assert_eq!(after[1], before[1], "same root");
    let (s, r) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 200, "{r}");
    let chain = r["signedCertificateEmbeddedSct"]["chain"]["certificates"].clone();
    assert_eq!(chain[1], after[0], "issued by the new intermediate");
    assert!(common::openssl_text(chain[1].as_str().unwrap()).contains("rotated intermediate"));

    // A chain under another root: the embedded log would refuse it, so the reload is refused.
    let failures = reloads(&brevis, "ca", "failure").await;
    brevis_cmd(&["ca", "create", "--out", &d("other")]);
    std::fs::copy(d("other/intermediate-key.pem"), &live_key).unwrap();
    std::fs::copy(d("other/chain.pem"), &live_chain).unwrap();
    eventually("refused CA reload", || async {
        brevis
            .log()
            .contains("the new chain's root is not one the embedded CT log accepts")
    })
    .await;
    assert!(reloads(&brevis, "ca", "failure").await > failures);
    assert_eq!(bundle(&brevis).await, after, "the running CA stays");
    let (s, r) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 200, "{r}");
}

#[tokio::test]
async fn sigterm_finishes_every_accepted_request_and_flushes_the_log() {
    let op = Op::start();
    // Batches wait up to a minute to fill, so requests are parked in the log's queue when
    // the signal arrives; shutdown must commit them at once, not drop them.
    let brevis = Brevis::start(
        &email_config(&op),
        &[
            "--ctlog-batch-max-wait",
            "60s",
            "--shutdown-timeout",
            "120s",
        ],
    );
    const N: usize = 8;
    let mut tokens = Vec::new();
    for _ in 0..N {
        tokens.push(op.mint("alice", email(ALICE)).await);
    }
    let mut inflight = Vec::new();
    for t in tokens {
        let (url, http) = (brevis.url.clone(), reqwest::Client::new());
        inflight.push(tokio::spawn(async move {
            let k = ClientKey::generate(Kind::P256);
            let r = http
                .post(format!("{url}/api/v2/signingCert"))
                .json(&k.v2_key_body(&t, ALICE))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let body: Value = r.json().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body))
        }));
    }
    eventually("every request parked in the CT log queue", || async {
        scrape(&brevis)
            .await
            .value("brevis_ctlog_pending_submissions", &[])
            == N as f64
    })
    .await;

    let mut brevis = brevis;
    signal(&brevis, "TERM");
    for h in inflight {
        let (status, body) = h
            .await
            .unwrap()
            .expect("an accepted request got its answer");
        assert_eq!(status, 200, "{body}");
        assert!(body["signedCertificateEmbeddedSct"]["chain"]["certificates"][0].is_string());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = brevis.child().try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "brevis did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "clean exit");
    let log = brevis.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        log.contains("CT log flushed") && log.contains(&format!("tree_size={N}")),
        "{log}"
    );
    // Nothing was lost: after a restart the tree holds every certificate handed out.
    let (dir, _keep) = brevis.stop();
    let again = Brevis::start_in(&dir, Some(&dir.join("identity.yaml")), &[]);
    let sth: Value = reqwest::get(format!(
        "{}/ct/v1/get-sth",
        again.ctlog_url.clone().unwrap()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(sth["tree_size"], N);
}

#[tokio::test]
async fn rate_limits_per_client_and_per_identity() {
    let op = Op::start();
    let brevis = Brevis::start(
        &email_config(&op),
        &[
            "--rate-limit-client",
            "1/h",
            "--rate-limit-client-burst",
            "2",
            "--client-ip-header",
            "X-Real-IP",
        ],
    );
    let post = |ip: &'static str, body: Value| {
        let (url, http) = (
            format!("{}/api/v2/signingCert", brevis.url),
            brevis.http.clone(),
        );
        async move {
            let mut req = http.post(url).json(&body);
            if !ip.is_empty() {
                req = req.header("X-Real-IP", ip);
            }
            req.send().await.unwrap()
        }
    };
    let body = || async {
        let t = op.mint("alice", email(ALICE)).await;
        ClientKey::generate(Kind::P256).v2_key_body(&t, ALICE)
    };
    for _ in 0..2 {
        assert_eq!(post("198.51.100.7", body().await).await.status(), 200);
    }
    let r = post("198.51.100.7", body().await).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3000..=3600).contains(&retry), "{retry}");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], 8);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("too many requests from this client address")
    );
    // Another address has its own bucket; health checks are never limited.
    assert_eq!(post("198.51.100.8", body().await).await.status(), 200);
    for _ in 0..5 {
        assert_eq!(brevis.get("/healthz").await.status(), 200);
    }
    let m = scrape(&brevis).await;
    assert_eq!(
        m.value(
            "brevis_rejections_total",
            &[("reason", "rate_limited_client")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "http_requests_total",
            &[("code", "429"), ("method", "post")]
        ),
        1.0
    );

    // Per identity: counted after the token verified.
    let brevis = Brevis::start(
        &email_config(&op),
        &[
            "--rate-limit-identity",
            "1/h",
            "--rate-limit-identity-burst",
            "1",
        ],
    );
    let (s, r) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 200, "{r}");
    // Another identity has its own budget.
    let bob_first = issue(&brevis, &op, "bob@example.com").await;
    assert_eq!(bob_first.0, 200);
    let (s, r) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 429, "{r}");
    assert!(
        r["message"].as_str().unwrap().contains("for this identity"),
        "{r}"
    );
    // A forged token in carol's name cannot spend her budget: 400, not 429.
    let t = op.mint("carol", email("carol@example.com")).await;
    let k = ClientKey::generate(Kind::P256);
    let (s, _) = brevis
        .post_json(
            "/api/v2/signingCert",
            &k.v2_key_body(&format!("{t}x"), "carol@example.com"),
        )
        .await;
    assert_eq!(s, 400);
    // Nor does a real token with a bad proof of possession: only requests that pass the
    // client-side checks are counted.
    let mut bad_proof = k.v2_key_body(&t, "carol@example.com");
    bad_proof["publicKeyRequest"]["proofOfPossession"] =
        json!(common::keys::b64(k.prove("mallory@example.com")));
    let (s, _) = brevis.post_json("/api/v2/signingCert", &bad_proof).await;
    assert_eq!(s, 400);
    let (s, _) = issue(&brevis, &op, "carol@example.com").await;
    assert_eq!(
        s, 200,
        "carol's budget was untouched by the forged token and the bad proof"
    );
    assert_eq!(
        scrape(&brevis).await.value(
            "brevis_rejections_total",
            &[("reason", "rate_limited_identity")]
        ),
        1.0
    );
}

/// The identity budget is keyed by the concrete issuer a meta-issuer pattern matched, not by
/// the pattern: the same address from two issuers under one pattern has two budgets.
#[tokio::test]
async fn identity_rate_limit_is_per_issuer_under_a_meta_issuer() {
    let (a, b) = (Op::start(), Op::start());
    let config = "meta-issuers:\n  http://127.0.0.1:*:\n    client-id: sigstore\n    type: email\n";
    let brevis = Brevis::start(
        config,
        &[
            "--rate-limit-identity",
            "1/h",
            "--rate-limit-identity-burst",
            "1",
        ],
    );
    let (s, r) = issue(&brevis, &a, ALICE).await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = issue(&brevis, &a, ALICE).await;
    assert_eq!(s, 429, "{r}");
    let (s, r) = issue(&brevis, &b, ALICE).await;
    assert_eq!(s, 200, "another issuer under the same pattern: {r}");
    let (s, r) = issue(&brevis, &b, ALICE).await;
    assert_eq!(s, 429, "{r}");
}

/// The embedded log's sequencer thread runs under SCHED_BATCH (its wake-ups do not preempt
/// the API workers), its search indexer under SCHED_IDLE (only spare CPU); every other
/// thread keeps the policy brevis was started with.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_ct_log_sequencer_runs_under_sched_batch() {
    const SCHED_BATCH: &str = "3";
    // Field 41 of /proc/.../stat is the policy; the fields after the ")" that ends comm
    // start at 3.
    fn policy(stat: &std::path::Path) -> String {
        let stat = std::fs::read_to_string(stat).unwrap();
        let after_comm = &stat[stat.rfind(')').unwrap() + 1..];
        after_comm
            .split_whitespace()
            .nth(41 - 3)
            .unwrap()
            .to_string()
    }
    // brevis inherits this test's policy (SCHED_OTHER unless the runner changed it).
    let inherited = policy(std::path::Path::new("/proc/thread-self/stat"));
    assert_ne!(
        inherited, SCHED_BATCH,
        "run the tests under the default policy"
    );
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &[]);
    let (s, r) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 200, "{r}");
    let mut policies = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", brevis.pid())).unwrap() {
        let path = task.unwrap().path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap();
        policies.push((comm.trim().to_string(), policy(&path.join("stat"))));
    }
    let sequencers: Vec<_> = policies
        .iter()
        .filter(|(comm, _)| comm == "ctlog-sequencer")
        .collect();
    assert_eq!(sequencers.len(), 1, "{policies:?}");
    assert_eq!(sequencers[0].1, SCHED_BATCH, "{policies:?}");
    // The explorer's search indexer runs only on idle CPU (SCHED_IDLE, policy 5).
    let indexers: Vec<_> = policies
        .iter()
        .filter(|(comm, _)| comm == "ctlog-indexer")
        .collect();
    assert_eq!(indexers.len(), 1, "{policies:?}");
    assert_eq!(indexers[0].1, "5", "{policies:?}");
    assert!(
        policies
            .iter()
            .filter(|(comm, _)| comm != "ctlog-sequencer" && comm != "ctlog-indexer")
            .all(|(_, p)| *p == inherited),
        "{policies:?}"
    );
}

/// Reads from `stream` until the server closes it or 30 s pass; returns what arrived.
fn read_all(stream: &mut std::net::TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n")
                    && String::from_utf8_lossy(&out).contains("\"code\"")
                {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string()
}

#[tokio::test]
async fn slow_clients_time_out_and_connections_are_capped() {
    let op = Op::start();
    let brevis = Brevis::start(
        &email_config(&op),
        &["--request-timeout", "1s", "--body-timeout", "1s"],
    );
    let a = addr(&brevis.url);

    // Headers that never finish: 408 from the listener, connection closed.
    let mut s = std::net::TcpStream::connect(&a).unwrap();
    s.write_all(b"POST /api/v2/signingCert HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let got = read_all(&mut s);
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");

    // A body that never finishes: 408 with a JSON error naming the cause.
    let mut s = std::net::TcpStream::connect(&a).unwrap();
    s.write_all(
        b"POST /api/v2/signingCert HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"cred",
    )
    .unwrap();
    let got = read_all(&mut s);
    assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
    assert!(
        got.contains("\"code\":4") && got.contains("request body did not arrive"),
        "{got:?}"
    );

    // The server still serves everyone else.
    let (s, r) = issue(&brevis, &op, ALICE).await;
    assert_eq!(s, 200, "{r}");

    // Connection cap: one worker, two connections. Two clients hold them; a third is
    // served only once one of them leaves.
    let capped = Brevis::start(
        &email_config(&op),
        &[
            "--workers",
            "1",
            "--max-connections",
            "2",
            "--request-timeout",
            "60s",
        ],
    );
    let a = addr(&capped.url);
    let mut held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&a).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    let url = format!("{}/healthz", capped.url);
    let third = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served beyond --max-connections"
    );
    held.clear();
    let status = tokio::time::timeout(Duration::from_secs(30), third)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

/// `GET /healthz` over TLS trusting only the CA in `ca`: the status, or the error (a
/// certificate from another CA fails the handshake).
async fn healthz_over_tls(url: &str, ca: &str) -> Result<u16, reqwest::Error> {
    let r = https_client(ca)
        .get(format!("{url}/healthz"))
        .send()
        .await?;
    Ok(r.status().as_u16())
}

fn https_client(cert: &str) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn tls_listener_serves_the_api_and_reloads_its_certificate() {
    let op = Op::start();
    let tmp = tempfile::tempdir().unwrap();
    let (ca1, c1, k1) = common::server_cert(tmp.path(), "first");
    let (ca2, c2, k2) = common::server_cert(tmp.path(), "second");
    let live_c = tmp.path().join("live.crt").to_str().unwrap().to_string();
    let live_k = tmp.path().join("live.key").to_str().unwrap().to_string();
    std::fs::copy(&c1, &live_c).unwrap();
    std::fs::copy(&k1, &live_k).unwrap();
    let brevis = Brevis::start(
        &email_config(&op),
        &[
            "--tls-cert",
            &live_c,
            "--tls-key",
            &live_k,
            "--watch-interval",
            "0",
        ],
    );
    assert!(brevis.url.starts_with("https://"), "{}", brevis.url);

    // The API over TLS, with the first certificate.
    let t = op.mint("alice", email(ALICE)).await;
    let k = ClientKey::generate(Kind::P256);
    let r = https_client(&ca1)
        .post(format!("{}/api/v2/signingCert", brevis.url))
        .json(&k.v2_key_body(&t, ALICE))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(healthz_over_tls(&brevis.url, &ca2).await.is_err());
    // Plain HTTP on the TLS port gets nothing useful.
    let plain = reqwest::get(format!(
        "{}/healthz",
        brevis.url.replace("https://", "http://")
    ))
    .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));

    // A broken pair (key of another certificate) is refused on SIGHUP; the old one stays.
    std::fs::copy(&k2, &live_k).unwrap();
    signal(&brevis, "HUP");
    eventually("refused TLS reload", || async {
        reloads(&brevis, "tls", "failure").await == 1.0
    })
    .await;
    assert_eq!(healthz_over_tls(&brevis.url, &ca1).await.ok(), Some(200));

    // The matching pair is taken on the next SIGHUP; new connections see it.
    std::fs::copy(&c2, &live_c).unwrap();
    signal(&brevis, "HUP");
    eventually("TLS reload", || async {
        reloads(&brevis, "tls", "success").await == 1.0
    })
    .await;
    assert_eq!(healthz_over_tls(&brevis.url, &ca2).await.ok(), Some(200));
    assert!(healthz_over_tls(&brevis.url, &ca1).await.is_err());

    // A bad certificate path stops startup with a message naming it.
    let out = Command::new(common::brevis_bin())
        .args([
            "serve",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--ctlog-port",
            "0",
            "--tls-cert",
            "/nonexistent.crt",
            "--tls-key",
            &k1,
        ])
        .arg("--data-dir")
        .arg(tmp.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.crt"));
}

#[tokio::test]
async fn a_second_stop_signal_exits_without_waiting() {
    let op = Op::start();
    let brevis = Brevis::start(
        &email_config(&op),
        &["--body-timeout", "120s", "--shutdown-timeout", "120s"],
    );
    // A request whose body never finishes keeps the graceful stop waiting. `Expect:
    // 100-continue` makes brevis answer once it has taken the request in, so the stop
    // signal cannot overtake the request's arrival.
    let mut slow = std::net::TcpStream::connect(addr(&brevis.url)).unwrap();
    slow.write_all(
        b"POST /api/v2/signingCert HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut interim = [0u8; 64];
    let n = std::io::Read::read(&mut slow, &mut interim).unwrap();
    assert!(
        String::from_utf8_lossy(&interim[..n]).starts_with("HTTP/1.1 100"),
        "{:?}",
        String::from_utf8_lossy(&interim[..n])
    );
    slow.write_all(b"{").unwrap();
    let mut brevis = brevis;
    signal(&brevis, "TERM");
    eventually("graceful stop started", || async {
        brevis.log().contains("shutting down")
    })
    .await;
    assert!(
        brevis.child().try_wait().unwrap().is_none(),
        "still draining"
    );
    signal(&brevis, "TERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = brevis.child().try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no exit after the second SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(130));
    assert!(brevis.log().contains("second stop signal"));
}
