//! Hostile input and faulty peers (docs/security.md): each test is named after the
//! behaviour it guarantees, and each failed on the code before its fix.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::fake::{Fake, Reply};
use common::keys::{ClientKey, Kind};
use common::prom;
use common::{Brevis, InProcess, Op, email_config, eventually, now_secs};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN_MSG: &str = "There was an error processing the identity token";

fn email(who: &str) -> Value {
    json!({"email": who, "email_verified": true})
}

async fn scrape(b: &Brevis) -> prom::Metrics {
    prom::parse(&b.metrics().await)
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// A random token of `n` letters (a valid HTTP method token, and a path segment).
fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| (b'A' + x % 26) as char).collect()
}

/// Series of a metric family in the exposition (one per label set).
fn series(text: &str, family: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_listener_keeps_metric_series_and_memory_bounded_under_random_methods_and_paths() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &[]);
    let listeners = [
        brevis.url.clone(),
        brevis.ctlog_url.clone().unwrap(),
        brevis.metrics_url.trim_end_matches("/metrics").to_string(),
    ];
    let client = reqwest::Client::new();
    // Warm up every listener (allocator arenas, connection pools), then measure.
    for base in &listeners {
        let _ = client.get(format!("{base}/healthz")).send().await;
    }
    let before = rss_bytes(brevis.pid());
    let flood = |base: String| {
        let client = client.clone();
        async move {
            for _ in 0..800 {
                let method = reqwest::Method::from_bytes(random_token(12).as_bytes()).unwrap();
                let path = format!(
                    "/{}/{}?{}={}",
                    random_token(8),
                    random_token(8),
                    random_token(4),
                    random_token(16)
                );
                let r = client
                    .request(method, format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_client_error() || r.status().is_server_error());
            }
        }
    };
    let mut tasks = Vec::new();
    for base in &listeners {
        for _ in 0..3 {
            tasks.push(tokio::spawn(flood(base.clone())));
        }
    }
    // Known routes with random methods too.
    for route in ["/api/v2/signingCert", "/api/v2/trustBundle", "/readyz"] {
        for _ in 0..200 {
            let method = reqwest::Method::from_bytes(random_token(10).as_bytes()).unwrap();
            let _ = client
                .request(method, format!("{}{route}", brevis.url))
                .send()
                .await
                .unwrap();
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let text = brevis.metrics().await;
    for family in [
        "http_requests_total",
        "fulcio_api_latency_count",
        "brevis_ctlog_http_requests_total",
    ] {
        let n = series(&text, family);
        assert!(n <= 30, "{family} has {n} series after the flood");
    }
    assert!(
        text.contains(r#"http_requests_total{code="501",method="other"}"#)
            || text.contains(r#"http_requests_total{code="404",method="other"}"#),
        "random methods count as `other`"
    );
    assert!(
        text.contains(r#"route="unmatched""#),
        "unknown CT log paths count as `unmatched`"
    );
    assert!(text.len() < 256 * 1024, "/metrics is {} bytes", text.len());
    let after = rss_bytes(brevis.pid());
    assert!(
        after < before + 48 * 1024 * 1024,
        "RSS grew from {before} to {after} bytes"
    );
}

#[tokio::test]
async fn readiness_probes_do_not_make_the_ca_sign_each_time() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &[]);
    for _ in 0..50 {
        assert_eq!(brevis.get("/readyz").await.status(), 200);
    }
    let m = scrape(&brevis).await;
    let signed = m.value("brevis_ca_self_tests_total", &[("outcome", "ok")]);
    assert!(
        (1.0..=3.0).contains(&signed),
        "50 probes made the CA sign {signed} times"
    );
}

/// In-process with a clock moved by hand: no waiting for the intermediate to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_chain_clamps_leaves_then_stops_issuance_and_readiness() {
    let op = Op::start();
    let dir = tempfile::tempdir().unwrap();
    // The intermediate expires a minute from now: a leaf issued now must not outlive it,
    // and once it is gone brevis must stop.
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let not_after = now + time::Duration::seconds(60);
    let (chain, key) = common::testca::fileca_chain(dir.path(), not_after);
    let mut opts = InProcess::options(dir.path(), &email_config(&op));
    opts.ca = brevis::ca::provision::CaChoice::File {
        cert: Some(chain),
        key: Some(key),
        password: None,
    };
    opts.ct = brevis::server::CtChoice::Disabled;
    let clock = Arc::new(brevis::model::ManualClock::at_unix(
        now.unix_timestamp() as u64
    ));
    let brevis = InProcess::start(opts, clock.clone());
    let m = prom::parse(
        &reqwest::get(&brevis.metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(
        m.value("brevis_expiry_timestamp_seconds", &[("object", "ca_chain")]),
        not_after.unix_timestamp() as f64
    );
    let token = op.mint("alice", email("alice@example.com")).await;
    let k = ClientKey::generate(Kind::P256);
    let (s, r) = brevis
        .post_json(
            "/api/v2/signingCert",
            &k.v2_key_body(&token, "alice@example.com"),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let leaf = r["signedCertificateDetachedSct"]["chain"]["certificates"][0]
        .as_str()
        .unwrap()
        .to_string();
    let der = brevis::model::pem::parse_first(&leaf).unwrap().der;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        cert.validity().not_after.timestamp(),
        not_after.unix_timestamp(),
        "the leaf's notAfter is clamped to the intermediate's"
    );
    assert_eq!(brevis.get("/readyz").await.status(), 200);

    // Past the intermediate's notAfter: 503, no certificate, not ready.
    clock.advance(Duration::from_secs(61));
    let rejected_before = prom::parse(
        &reqwest::get(&brevis.metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .value("brevis_rejections_total", &[("reason", "ca_chain_invalid")]);
    let (s, r) = brevis
        .post_json(
            "/api/v2/signingCert",
            &k.v2_key_body(&token, "alice@example.com"),
        )
        .await;
    assert_eq!(s, 503, "{r}");
    assert_eq!(r["code"], 14);
    assert!(r["message"].as_str().unwrap().contains("chain"), "{r}");
    assert_eq!(brevis.get("/readyz").await.status(), 503);
    let m = prom::parse(
        &reqwest::get(&brevis.metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(m.value("brevis_ready", &[]), 0.0);
    assert_eq!(
        m.value("brevis_rejections_total", &[("reason", "ca_chain_invalid")]),
        rejected_before + 1.0
    );
}

/// A remote CT log answering 503 with a `Retry-After` that overflows any duration sum:
/// the request fails closed within the deadline (no dropped connection, no panic), and
/// the identity's rate-limit token is refunded, so the next try is not a 429.
#[tokio::test]
async fn a_hostile_remote_log_cannot_hold_or_crash_a_request_and_the_identity_budget_is_refunded() {
    let op = Op::start();
    let huge = Fake::start(|_, _| {
        Reply::json(503, "{}").with_header("Retry-After", "18446744073709551615")
    })
    .await;
    let brevis = Brevis::start(
        &email_config(&op),
        &[
            "--ct-log-url",
            &huge.url,
            "--ct-log-timeout",
            "3s",
            "--rate-limit-identity",
            "1/h",
            "--rate-limit-identity-burst",
            "1",
        ],
    );
    let token = op.mint("alice", email("alice@example.com")).await;
    for attempt in 0..3 {
        let k = ClientKey::generate(Kind::P256);
        let started = Instant::now();
        let (s, r) = brevis
            .post_json(
                "/api/v2/signingCert",
                &k.v2_key_body(&token, "alice@example.com"),
            )
            .await;
        assert_eq!(
            (s, r["message"].as_str()),
            (500, Some("Error entering certificate in CTL")),
            "attempt {attempt}: {r}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "bounded by --ct-log-timeout"
        );
    }
    assert!(huge.requests() >= 1);

    // Garbage, an oversized body and a log that hangs: the same, within the deadline.
    let garbage = Fake::start(|_, _| Reply::json(200, "{\"sct_version\": \"nope\"")).await;
    let oversized = Fake::start(|_, _| Reply::Http {
        status: 200,
        headers: vec![],
        body: vec![b' '; 8 << 20],
    })
    .await;
    let hangs = Fake::start(|_, _| Reply::Hang).await;
    for fake in [&garbage, &oversized, &hangs] {
        let b = Brevis::start(
            &email_config(&op),
            &["--ct-log-url", &fake.url, "--ct-log-timeout", "2s"],
        );
        let k = ClientKey::generate(Kind::P256);
        let started = Instant::now();
        let (s, r) = b
            .post_json(
                "/api/v2/signingCert",
                &k.v2_key_body(&token, "alice@example.com"),
            )
            .await;
        assert_eq!(s, 500, "{r}");
        assert!(r.to_string().find("BEGIN CERTIFICATE").is_none());
        assert!(started.elapsed() < Duration::from_secs(15));
    }
}

/// The Ed25519 identity point as a key, with R = identity and S = 0 as its "proof":
/// every message verifies under it, so no certificate may bind it; on either key path.
#[tokio::test]
async fn small_order_ed25519_keys_get_no_certificate() {
    use brevis::model::{der, oid};
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &["--ct-log-url", ""]);
    let token = op.mint("alice", email("alice@example.com")).await;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let spki = der::sequence(&[
        &der::sequence(&[&oid::ED25519.tlv()]),
        &der::bit_string(&identity),
    ]);
    let mut forged = [0u8; 64];
    forged[0] = 1; // R = identity, S = 0
    let body = json!({
        "credentials": {"oidcIdentityToken": token},
        "publicKeyRequest": {
            "publicKey": {"content": brevis::model::pem::encode("PUBLIC KEY", &spki)},
            "proofOfPossession": STANDARD.encode(forged),
        }
    });
    let (s, r) = brevis.post_json("/api/v2/signingCert", &body).await;
    assert_eq!(
        (s, r["message"].as_str()),
        (
            400,
            Some("The public key supplied in the request is insecure")
        ),
        "{r}"
    );

    // The CSR path: a request for the same key, "self-signed" the same way.
    let info = der::sequence(&[
        &der::unsigned_integer(&[0]),
        &der::sequence(&[]),
        &spki,
        &der::tlv(der::context_constructed(0), &[]),
    ]);
    let csr = der::sequence(&[
        &info,
        &der::sequence(&[&oid::ED25519.tlv()]),
        &der::bit_string(&forged),
    ]);
    let body = json!({
        "credentials": {"oidcIdentityToken": token},
        "certificateSigningRequest": STANDARD.encode(brevis::model::pem::encode("CERTIFICATE REQUEST", &csr)),
    });
    let (s, r) = brevis.post_json("/api/v2/signingCert", &body).await;
    assert_eq!(s, 400, "{r}");
    assert!(r.to_string().find("BEGIN CERTIFICATE").is_none());
}

/// A `sub` that other URL parsers read differently (a backslash before `@`, a tab, a
/// newline, a space) never becomes a URI SAN.
#[tokio::test]
async fn uri_subjects_that_parsers_read_differently_get_no_certificate() {
    let op = Op::start();
    let config = format!(
        "oidc-issuers:\n  {i}:\n    issuer-url: {i}\n    client-id: sigstore\n    type: uri\n    subject-domain: http://127.0.0.1\n",
        i = op.issuer
    );
    let brevis = Brevis::start(&config, &["--ct-log-url", ""]);
    for sub in [
        "http://127.0.0.1\\@evil.com/x",
        "http://127.0.0.1/a\tb",
        "http://127.0.0.1/a\nb",
        "http://127.0.0.1/a b",
        "HTTP://127.0.0.1/x",
    ] {
        let token = op
            .sign(json!({"claims": op.claims(json!({"sub": sub}))}))
            .await;
        let k = ClientKey::generate(Kind::P256);
        let (s, r) = brevis
            .post_json("/api/v2/signingCert", &k.v2_key_body(&token, sub))
            .await;
        assert_eq!(
            (s, r["message"].as_str()),
            (400, Some(TOKEN_MSG)),
            "{sub:?}: {r}"
        );
    }
    // A canonical one still works.
    let sub = "http://127.0.0.1/users/alice";
    let token = op
        .sign(json!({"claims": op.claims(json!({"sub": sub}))}))
        .await;
    let k = ClientKey::generate(Kind::P256);
    let (s, r) = brevis
        .post_json("/api/v2/signingCert", &k.v2_key_body(&token, sub))
        .await;
    assert_eq!(s, 200, "{r}");
}

/// A data tile index whose byte offset wraps around u64 named another tile's bytes; a
/// level written "01" was accepted. Only canonical, in-range paths answer 200.
#[tokio::test]
async fn tile_paths_that_overflow_or_are_not_canonical_answer_404() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &[]);
    let token = op.mint("alice", email("alice@example.com")).await;
    let k = ClientKey::generate(Kind::P256);
    let (s, r) = brevis
        .post_json(
            "/api/v2/signingCert",
            &k.v2_key_body(&token, "alice@example.com"),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let log = brevis.ctlog_url.clone().unwrap();
    let get = |path: String| {
        let url = format!("{log}/{path}");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(get("tile/data/000.p/1".into()).await, 200);
    assert_eq!(get("tile/0/000.p/1".into()).await, 200);
    let wraps = brevis::ct::tiles::encode_index(1u64 << 56); // * 256 = 2^64
    assert_eq!(get(format!("tile/data/{wraps}.p/1")).await, 404);
    assert_eq!(get(format!("tile/0/{wraps}.p/1")).await, 404);
    let max = brevis::ct::tiles::encode_index(u64::MAX);
    assert_eq!(get(format!("tile/data/{max}.p/1")).await, 404);
    for bad in [
        "tile/00/000.p/1",
        "tile/+0/000.p/1",
        "tile/6/000",
        "tile/256/000",
    ] {
        assert_eq!(get(bad.into()).await, 404, "{bad}");
    }
}

/// IPv6 clients get one bucket per /64: rotating through addresses of one network does
/// not buy fresh buckets; another network has its own.
#[tokio::test]
async fn ipv6_clients_rotating_through_their_64_share_one_bucket() {
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
    let post = |ip: &'static str| {
        let url = format!("{}/api/v2/signingCert", brevis.url);
        async move {
            reqwest::Client::new()
                .post(url)
                .header("X-Real-IP", ip)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // No token: 400, after a token was taken from the bucket.
    assert_eq!(post("2001:db8:1:2::1").await, 400);
    assert_eq!(post("2001:db8:1:2::2").await, 400);
    assert_eq!(
        post("2001:db8:1:2:ffff::3").await,
        429,
        "same /64, same bucket"
    );
    assert_eq!(post("2001:db8:1:3::1").await, 400, "another /64");
}

/// Tokens naming new issuers under a meta-issuer pattern are admitted at a bounded rate:
/// beyond it they are refused without any fetch; an issuer whose tokens verified stays
/// cached through a flood of forged ones, and is not fetched again.
#[tokio::test]
async fn meta_issuer_admission_is_bounded_and_verified_issuers_stay_cached() {
    let op = Op::start_with(&[("TENANTS", "good")]);
    let pattern = format!("{}/*", op.issuer);
    let config = format!("meta-issuers:\n  {pattern}:\n    client-id: sigstore\n    type: email\n");
    let brevis = Brevis::start(
        &config,
        &["--ct-log-url", "", "--meta-issuer-admission-rate", "4/m"],
    );
    let good = op.tenant("good");
    let issue = |token: String| {
        let k = ClientKey::generate(Kind::P256);
        let body = k.v2_key_body(&token, "alice@example.com");
        let b = &brevis;
        async move { b.post_json("/api/v2/signingCert", &body).await }
    };
    let token = op
        .mint_at(&good, "sigstore", "alice", email("alice@example.com"))
        .await;
    let (s, r) = issue(token.clone()).await;
    assert_eq!(s, 200, "{r}");
    let jwks_after_first = op.jwks_fetches().await;

    let fetches = |m: &prom::Metrics| -> f64 {
        m.samples
            .iter()
            .filter(|s| {
                s.name == "brevis_oidc_fetches_total"
                    && s.labels.get("issuer") == Some(&pattern)
                    && s.labels.get("document").map(String::as_str) == Some("discovery")
            })
            .map(|s| s.value)
            .sum()
    };
    let before = fetches(&scrape(&brevis).await);
    for i in 0..20 {
        let forged = op
            .sign(json!({"claims": {
                "iss": format!("{}/forged{i}", op.issuer), "aud": "sigstore",
                "sub": "x", "email": "alice@example.com", "email_verified": true,
                "iat": now_secs(), "exp": now_secs() + 600
            }}))
            .await;
        let (s, r) = issue(forged).await;
        assert_eq!((s, r["message"].as_str()), (400, Some(TOKEN_MSG)), "{r}");
    }
    let m = scrape(&brevis).await;
    let admitted = fetches(&m) - before;
    assert!(
        admitted <= 4.0,
        "{admitted} discovery fetches for 20 forged issuers with 4/m admitted"
    );
    assert!(
        m.value(
            "brevis_rejections_total",
            &[("reason", "meta_issuer_admission")]
        ) >= 16.0
    );
    // The verified issuer was neither evicted nor fetched again.
    let (s, r) = issue(token).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(op.jwks_fetches().await, jwks_after_first);
}

/// An issuer's discovery redirecting to another port of the same host (another service)
/// is not followed.
#[tokio::test]
async fn oidc_redirects_to_another_origin_are_refused() {
    let op = Op::start();
    let elsewhere = Fake::start(|_, _| Reply::json(200, "{}")).await;
    let target = elsewhere.url.clone();
    let issuer = Fake::start(move |_, path| Reply::Http {
        status: 302,
        headers: vec![("location".into(), format!("{target}{path}"))],
        body: vec![],
    })
    .await;
    let config = format!(
        "oidc-issuers:\n  {i}:\n    issuer-url: {i}\n    client-id: sigstore\n    type: email\n",
        i = issuer.url
    );
    let brevis = Brevis::start(&config, &["--ct-log-url", ""]);
    let token = op
        .sign(json!({"claims": {
            "iss": issuer.url, "aud": "sigstore", "sub": "alice",
            "email": "alice@example.com", "email_verified": true,
            "iat": now_secs(), "exp": now_secs() + 600
        }}))
        .await;
    let k = ClientKey::generate(Kind::P256);
    let (s, r) = brevis
        .post_json(
            "/api/v2/signingCert",
            &k.v2_key_body(&token, "alice@example.com"),
        )
        .await;
    assert_eq!((s, r["message"].as_str()), (400, Some(TOKEN_MSG)), "{r}");
    assert!(issuer.requests() >= 1);
    assert_eq!(elsewhere.requests(), 0, "the redirect was not followed");
}

/// Tokens from an issuer whose clock runs ahead: `iat`/`nbf` within the allowed skew
/// pass, beyond it they fail; `exp` gets no leeway.
#[tokio::test]
async fn clock_skew_within_the_leeway_passes_and_beyond_it_fails() {
    let op = Op::start();
    let brevis = Brevis::start(
        &email_config(&op),
        &["--ct-log-url", "", "--oidc-clock-skew", "60s"],
    );
    let try_claims = |extra: Value| {
        let claims = op
            .claims(json!({"sub": "alice", "email": "alice@example.com", "email_verified": true}));
        let mut claims = claims.as_object().unwrap().clone();
        claims.extend(extra.as_object().unwrap().clone());
        let (op, b) = (&op, &brevis);
        async move {
            let token = op.sign(json!({ "claims": claims })).await;
            let k = ClientKey::generate(Kind::P256);
            b.post_json(
                "/api/v2/signingCert",
                &k.v2_key_body(&token, "alice@example.com"),
            )
            .await
            .0
        }
    };
    let now = now_secs();
    assert_eq!(
        try_claims(json!({"iat": now + 30, "nbf": now + 30})).await,
        200
    );
    assert_eq!(try_claims(json!({"iat": now + 300})).await, 400);
    assert_eq!(try_claims(json!({"nbf": now + 300})).await, 400);
    assert_eq!(try_claims(json!({"exp": now - 2})).await, 400);
}

/// The OIDC provider goes away after brevis verified a token from it: its keys keep
/// serving; an issuer never reached fails fast; an issuer that hangs fails within the
/// fetch timeout, and nothing waits longer.
#[tokio::test]
async fn oidc_providers_that_go_down_or_hang_cost_bounded_time() {
    let op = Op::start();
    let hangs = Fake::start(|_, _| Reply::Hang).await;
    let config = format!(
        "oidc-issuers:\n  {o}:\n    issuer-url: {o}\n    client-id: sigstore\n    type: email\n  {h}:\n    issuer-url: {h}\n    client-id: sigstore\n    type: email\n  http://127.0.0.1:9:\n    issuer-url: http://127.0.0.1:9\n    client-id: sigstore\n    type: email\n",
        o = op.issuer,
        h = hangs.url
    );
    let brevis = Brevis::start(&config, &["--ct-log-url", "", "--oidc-fetch-timeout", "1s"]);
    let token = op.mint("alice", email("alice@example.com")).await;
    let post = |token: String| {
        let k = ClientKey::generate(Kind::P256);
        let body = k.v2_key_body(&token, "alice@example.com");
        let b = &brevis;
        async move {
            let started = Instant::now();
            let (s, _) = b.post_json("/api/v2/signingCert", &body).await;
            (s, started.elapsed())
        }
    };
    assert_eq!(post(token.clone()).await.0, 200);
    let forged = |iss: &str| {
        let iss = iss.to_string();
        let op = &op;
        async move {
            op.sign(json!({"claims": {
                "iss": iss, "aud": "sigstore", "sub": "alice",
                "email": "alice@example.com", "email_verified": true,
                "iat": now_secs(), "exp": now_secs() + 600
            }}))
            .await
        }
    };
    let (hang_token, down_token) = (forged(&hangs.url).await, forged("http://127.0.0.1:9").await);
    drop(op); // the provider is gone
    let (s, _) = post(token).await;
    assert_eq!(s, 200, "keys already verified keep serving");
    let (s, took) = post(down_token).await;
    assert_eq!(s, 400);
    assert!(
        took < Duration::from_secs(5),
        "an unreachable issuer fails fast: {took:?}"
    );
    let (s, took) = post(hang_token).await;
    assert_eq!(s, 400);
    assert!(
        took < Duration::from_secs(10),
        "a hanging issuer is cut off: {took:?}"
    );
}

/// An OIDC provider that comes and goes. Once a token from it verified, its keys serve
/// through every outage; a key brevis has not seen fails fast while the provider is away
/// (and is not mistaken for a reason to drop the keys it has), and works once it is back.
#[tokio::test]
async fn an_oidc_provider_that_flaps_never_costs_a_verified_identity_its_certificate() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, OnceLock};
    let op = Op::start();
    let http = reqwest::Client::new();
    let jwks_of = |op_issuer: String| {
        let http = http.clone();
        async move {
            let d: Value = http
                .get(format!("{op_issuer}/.well-known/openid-configuration"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let uri = d["jwks_uri"].as_str().unwrap().to_string();
            http.get(uri).send().await.unwrap().text().await.unwrap()
        }
    };
    // The provider's documents behind a front the test switches on and off.
    let up = Arc::new(AtomicBool::new(true));
    let jwks = Arc::new(Mutex::new(jwks_of(op.issuer.clone()).await));
    let me: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let front = {
        let (up, jwks, me) = (up.clone(), jwks.clone(), me.clone());
        Fake::start(move |_, path| {
            if !up.load(Ordering::SeqCst) {
                return Reply::json(503, "{}");
            }
            let me = me.get().cloned().unwrap_or_default();
            match path {
                "/.well-known/openid-configuration" => Reply::json(
                    200,
                    &json!({"issuer": me, "jwks_uri": format!("{me}/jwks")}).to_string(),
                ),
                "/jwks" => Reply::json(200, &jwks.lock().unwrap()),
                _ => Reply::json(404, "{}"),
            }
        })
        .await
    };
    me.set(front.url.clone()).unwrap();
    let config = format!(
        "oidc-issuers:\n  {f}:\n    issuer-url: {f}\n    client-id: sigstore\n    type: email\n",
        f = front.url
    );
    let brevis = Brevis::start(
        &config,
        &[
            "--ct-log-url",
            "",
            "--oidc-fetch-timeout",
            "2s",
            "--oidc-jwks-refresh-interval",
            "0s",
        ],
    );
    let token = || {
        op.sign(json!({"claims": {
            "iss": front.url, "aud": "sigstore", "sub": "alice",
            "email": "alice@example.com", "email_verified": true,
            "iat": now_secs(), "exp": now_secs() + 600
        }}))
    };
    let post = |token: String| {
        let body = ClientKey::generate(Kind::P256).v2_key_body(&token, "alice@example.com");
        let b = &brevis;
        async move {
            let started = Instant::now();
            let (s, r) = b.post_json("/api/v2/signingCert", &body).await;
            (s, r, started.elapsed())
        }
    };
    let old_key = token().await;
    assert_eq!(post(old_key.clone()).await.0, 200, "first contact");
    for round in 0..3 {
        up.store(round % 2 == 1, Ordering::SeqCst);
        let (s, r, _) = post(old_key.clone()).await;
        assert_eq!(
            s,
            200,
            "round {round}, provider up: {}: {r}",
            round % 2 == 1
        );
    }

    // The provider rotates to a key brevis has not fetched, and goes away.
    op.rotate(false).await;
    *jwks.lock().unwrap() = jwks_of(op.issuer.clone()).await;
    let new_key = token().await;
    up.store(false, Ordering::SeqCst);
    let served_before = front.requests();
    let (s, r, took) = post(new_key.clone()).await;
    assert_eq!((s, r["message"].as_str()), (400, Some(TOKEN_MSG)), "{r}");
    assert!(
        took < Duration::from_secs(5),
        "bounded by the fetch timeout: {took:?}"
    );
    assert!(
        front.requests() > served_before,
        "brevis asked for the new key"
    );
    assert_eq!(post(old_key.clone()).await.0, 200, "the keys held stay");

    up.store(true, Ordering::SeqCst);
    assert_eq!(
        post(new_key.clone()).await.0,
        200,
        "back: the new key is fetched"
    );
    up.store(false, Ordering::SeqCst);
    assert_eq!(post(new_key).await.0, 200);
    assert_eq!(post(old_key).await.0, 200);
}

/// The embedded log's disk fills up: issuance fails closed (no certificate, no SCT for
/// an entry that is not stored), readiness drops; when space returns brevis recovers by
/// itself, and every certificate it returned is in the log.
#[tokio::test]
async fn a_full_disk_under_the_embedded_log_fails_closed_and_recovers() {
    let op = Op::start();
    let dir = tempfile::tempdir().unwrap();
    // The data directory is a small tmpfs of its own.
    let mnt = dir.path().join("data");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "this test mounts a small tmpfs (needs root, as in CI)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let config_path = dir.path().join("identity.yaml");
    std::fs::write(&config_path, email_config(&op)).unwrap();
    let data = mnt.clone();
    let brevis = Brevis::start_in(dir.path(), Some(&config_path), &[]);
    let token = op.mint("alice", email("alice@example.com")).await;
    let issue = || {
        let k = ClientKey::generate(Kind::P256);
        let body = k.v2_key_body(&token, "alice@example.com");
        let b = &brevis;
        async move { b.post_json("/api/v2/signingCert", &body).await }
    };
    let mut issued = Vec::new();
    for _ in 0..3 {
        let (s, r) = issue().await;
        assert_eq!(s, 200, "{r}");
        issued.push(r);
    }
    // Fill the disk.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let mut refused = 0;
    for _ in 0..40 {
        let (s, r) = issue().await;
        if s == 200 {
            issued.push(r); // fitted into pages already allocated
        } else {
            assert!(s >= 500, "{s}: {r}");
            assert!(!r.to_string().contains("BEGIN CERTIFICATE"));
            refused += 1;
        }
    }
    assert!(refused > 0, "a full disk refuses issuance");
    eventually("readiness to drop", || async {
        brevis.get("/readyz").await.status() == 503
    })
    .await;

    // Space returns: brevis recovers without a restart.
    std::fs::remove_file(&filler).unwrap();
    eventually("readiness to return", || async {
        brevis.get("/readyz").await.status() == 200
    })
    .await;
    let (s, r) = issue().await;
    assert_eq!(s, 200, "{r}");
    issued.push(r);

    // Every returned certificate is in the log.
    let log = brevis.ctlog_url.clone().unwrap();
    let sth: Value = reqwest::get(format!("{log}/ct/v1/get-sth"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let size = sth["tree_size"].as_u64().unwrap();
    let key = brevis::ct::LogPublicKey::from_pem(
        &std::fs::read_to_string(data.join("ctlog/log-public-key.pem")).unwrap(),
    )
    .unwrap();
    for r in &issued {
        let chain: Vec<Vec<u8>> = r["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                brevis::model::pem::parse_first(c.as_str().unwrap())
                    .unwrap()
                    .der
            })
            .collect();
        let scts = brevis::ct::embedded_scts(&chain[0], &chain[1]).unwrap();
        assert!(key.verify_sct(&scts[0].sct, &scts[0].entry()));
        let hash = STANDARD.encode(scts[0].leaf_hash());
        let url = format!(
            "{log}/ct/v1/get-proof-by-hash?tree_size={size}&hash={}",
            url::form_urlencoded::byte_serialize(hash.as_bytes()).collect::<String>()
        );
        assert_eq!(
            reqwest::get(url).await.unwrap().status(),
            200,
            "a returned certificate is in the log"
        );
    }
}
