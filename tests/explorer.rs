//! The log explorer (`/ui/`) and its JSON API on a real `brevis ctlog serve` and on brevis's
//! embedded log: search by identity (exact and prefix), repository and serial with paging,
//! bad parameters (4xx with a reason, in JSON and in HTML), escaping of what a user types,
//! the index rebuilt from the log, and the pages driven in headless Chromium (the Debian
//! package, through playwright-core): search, open a certificate, see its fields and the
//! SCT, inclusion proof and checkpoint signature verified by the page's own script.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::keys::{ClientKey, Kind};
use common::testca::{Leaf, TestCa};
use common::{Brevis, CtLog, Op, eventually, github_claims, repo_root};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::Command;

async fn add_chain(base: &str, cert: &[u8]) {
    let r = reqwest::Client::new()
        .post(format!("{base}/ct/v1/add-chain"))
        .json(&json!({"chain": [STANDARD.encode(cert)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn get(url: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let r = reqwest::get(url).await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, r.text().await.unwrap(), h)
}

async fn get_json(url: &str) -> (u16, Value) {
    let (s, body, _) = get(url).await;
    (
        s,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

async fn wait_indexed(base: &str, n: u64) {
    eventually("the search index to catch up", || async move {
        get_json(&format!("{base}/ui/api/stats")).await.1["indexed_to"] == n
    })
    .await;
}

/// All results of a search, following `next_cursor`; checks every page's size.
async fn all_pages(base: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/ui/api/search?{query}&limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let (s, v) = get_json(&url).await;
        assert_eq!(s, 200, "{url}: {v}");
        let page = v["results"].as_array().unwrap().clone();
        assert!(page.len() <= limit);
        out.extend(page);
        match v["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(v["results"].as_array().unwrap().len(), limit);
                cursor = Some(c.to_string());
            }
            None => break,
        }
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_api_pages_refuses_bad_parameters_and_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("explorer");
    let roots = ca.write_root(dir.path());
    let mut log = CtLog::start(dir.path(), &roots, &[]);
    for i in 0..45u64 {
        add_chain(&log.url, &ca.issue(Leaf::certificate(i))).await;
    }
    let base = log.url.clone();
    wait_indexed(&base, 45).await;

    // Exact identity: one certificate, with everything the results list shows.
    let (s, v) = get_json(&format!("{base}/ui/api/search?q=user7%40example.com")).await;
    assert_eq!(s, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{v}");
    assert_eq!(r[0]["identity"], "user7@example.com");
    assert_eq!(r[0]["serial"], "010000000000000007");
    assert_eq!(r[0]["precertificate"], false);
    let index = r[0]["index"].as_u64().unwrap();
    assert_eq!(r[0]["url"], format!("/ui/entry/{index}"));
    assert_eq!(v["tree_size"], 45);

    // Prefix, paged: user1, user10..user19, each once.
    for limit in [1, 4, 100] {
        let all = all_pages(&base, "q=user1&prefix=true", limit).await;
        let ids: BTreeSet<String> = all
            .iter()
            .map(|h| h["identity"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(all.len(), 11, "limit {limit}");
        assert_eq!(ids.len(), 11);
        assert!(ids.iter().all(|i| i.starts_with("user1")));
    }
    // `*` at the end is a prefix search too; the whole log pages through.
    assert_eq!(all_pages(&base, "q=user*", 10).await.len(), 45);
    // Serial, with colons and upper case as people paste them.
    let (_, v) = get_json(&format!(
        "{base}/ui/api/search?by=serial&q=01:00:00:00:00:00:00:00:2A"
    ))
    .await;
    assert_eq!(v["results"][0]["identity"], "user42@example.com", "{v}");
    // Nothing found is an empty page, not an error.
    let (s, v) = get_json(&format!("{base}/ui/api/search?q=nobody%40example.com")).await;
    assert_eq!((s, v["results"].as_array().unwrap().len()), (200, 0));
    assert!(v["next_cursor"].is_null());

    // Bad parameters: 400 with the reason.
    for (query, reason) in [
        ("", "q is required"),
        ("q=", "q is required"),
        ("q=a&by=name", "by must be identity, repository or serial"),
        ("q=a&limit=0", "limit must be a whole number from 1 to 100"),
        (
            "q=a&limit=101",
            "limit must be a whole number from 1 to 100",
        ),
        (
            "q=a&limit=ten",
            "limit must be a whole number from 1 to 100",
        ),
        ("q=a&cursor=zzz", "cursor is not one this API returned"),
        ("q=a*&cursor=5", "cursor is not one this API returned"),
        ("q=a&prefix=perhaps", "prefix must be true or false"),
        ("q=a&order=asc", "unknown parameter order"),
    ] {
        let (s, v) = get_json(&format!("{base}/ui/api/search?{query}")).await;
        assert_eq!(s, 400, "{query}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains(reason),
            "{query}: {v}"
        );
    }
    let long = "a".repeat(513);
    let (s, _) = get_json(&format!("{base}/ui/api/search?q={long}")).await;
    assert_eq!(s, 400);

    // One entry: decoded fields, SCT, and a proof that verifies against the root.
    let (s, e) = get_json(&format!("{base}/ui/api/entry/{index}")).await;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["certificate"]["sans"][0]["value"], "user7@example.com");
    assert_eq!(e["certificate"]["sans"][0]["kind"], "email");
    let leaf = STANDARD.decode(e["leaf_input"].as_str().unwrap()).unwrap();
    let proof: Vec<Vec<u8>> = e["inclusion"]["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| STANDARD.decode(p.as_str().unwrap()).unwrap())
        .collect();
    let root = STANDARD
        .decode(e["inclusion"]["root"].as_str().unwrap())
        .unwrap();
    brevis::ct::merkle::verify_inclusion(
        index,
        45,
        &brevis::ct::merkle::leaf_hash(&leaf),
        &proof,
        &root,
    )
    .unwrap();
    assert_eq!(e["sct"]["log_id"], log.key().log_id_base64());
    for (path, status) in [("abc", 400), ("-1", 400), ("45", 404), ("99999999999", 404)] {
        let (s, v) = get_json(&format!("{base}/ui/api/entry/{path}")).await;
        assert_eq!(s, status, "{path}: {v}");
        assert!(v["error"].is_string());
    }

    // The HTML pages: results without JavaScript, errors as pages, input escaped.
    let (s, html, h) = get(&format!("{base}/ui/?q=user7%40example.com")).await;
    assert_eq!(s, 200);
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(
        html.contains(&format!("href=\"/ui/entry/{index}\"")),
        "{html}"
    );
    assert!(html.contains("user7@example.com"));
    let (s, html, _) = get(&format!("{base}/ui/?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")).await;
    assert_eq!(s, 200);
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    for (path, status, text) in [
        ("/ui/?q=a&by=name", 400, "by must be identity"),
        ("/ui/entry/abc", 400, "whole number"),
        ("/ui/entry/4500", 404, "no entry"),
    ] {
        let (s, html, _) = get(&format!("{base}{path}")).await;
        assert_eq!(s, status, "{path}");
        assert!(html.contains(text), "{path}: {html}");
    }
    let (s, html, _) = get(&format!("{base}/ui/entry/{index}")).await;
    assert_eq!(s, 200);
    assert!(html.contains("user7@example.com") && html.contains("id=\"entry-data\""));
    let (s, js, h) = get(&format!("{base}/ui/app.js")).await;
    assert_eq!(s, 200);
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.contains("rootFromProof"));

    // The index is derived: deleted, it is rebuilt from the log at the next start.
    log.kill();
    std::fs::remove_file(dir.path().join("log/search.sqlite")).unwrap();
    let log = CtLog::start(dir.path(), &roots, &[]);
    wait_indexed(&log.url, 45).await;
    let (_, v) = get_json(&format!("{}/ui/api/search?q=user7%40example.com", log.url)).await;
    assert_eq!(v["results"][0]["index"], index);

    // Without an index (--ctlog-search-index=false): searches say so; entries still show.
    drop(log);
    let log = CtLog::start(dir.path(), &roots, &["--ctlog-search-index=false"]);
    let (s, v) = get_json(&format!("{}/ui/api/search?q=user7%40example.com", log.url)).await;
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"], "this log keeps no search index");
    let (s, _) = get_json(&format!("{}/ui/api/entry/{index}", log.url)).await;
    assert_eq!(s, 200);
    let (s, html, _) = get(&format!("{}/ui/", log.url)).await;
    assert_eq!(s, 200);
    assert!(html.contains("not kept by this log"));
}

/// Runs tests/ui/explorer.mjs (playwright-core with /usr/bin/chromium).
fn drive_chromium(base: &str, spec: Value) -> Value {
    let dir = repo_root().join("tests/ui");
    common::require(
        &dir.join("node_modules/playwright-core"),
        "playwright-core (npm ci in tests/ui)",
    );
    let out = Command::new("node")
        .arg("explorer.mjs")
        .arg(base)
        .arg(spec.to_string())
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "explorer.mjs failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_in_headless_chromium() {
    let op = Op::start_with(&[("TENANTS", "github")]);
    let gh = op.tenant("github");
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
",
        root = op.issuer,
    );
    let b = Brevis::start(&config, &[]);
    let key = ClientKey::generate(Kind::P256);
    for email in ["alice@example.com", "bob@example.com", "alice@example.org"] {
        let t = op
            .mint("x", json!({"email": email, "email_verified": true}))
            .await;
        let (s, v) = b
            .post_json("/api/v2/signingCert", &key.v2_key_body(&t, email))
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (sub, claims) = github_claims();
    let repo = format!(
        "{}/{}",
        claims["server_url"]
            .as_str()
            .unwrap_or("https://github.com"),
        claims["repository"].as_str().unwrap()
    );
    let t = op.mint_at(&gh, "sigstore", &sub, claims).await;
    let (s, v) = b
        .post_json("/api/v2/signingCert", &key.v2_key_body(&t, &sub))
        .await;
    assert_eq!(s, 200, "{v}");
    let base = b.ctlog_url.clone().unwrap();
    wait_indexed(&base, 4).await;
    // Let the hourly counts cached while the index filled expire (re-read after 2 s when
    // the index grew).
    eventually("the day's count to include every entry", || {
        let url = format!("{base}/ui/api/stats");
        async move {
            let v = get_json(&url).await.1;
            v["hourly"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["entries"].as_u64().unwrap())
                .sum::<u64>()
                == 4
        }
    })
    .await;

    let shots = repo_root().join("target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let r = drive_chromium(
        &base,
        json!({
            "identity": "alice@example.com",
            "prefix": "alice@",
            "repository": repo,
            "screenshots": shots,
        }),
    );
    // Search by identity: one row; the certificate page shows the decoded fields and the
    // page's own checks passed.
    assert_eq!(r["identity_rows"], 1, "{r}");
    assert_eq!(r["prefix_rows"], 2, "{r}");
    assert_eq!(r["entry"]["identity"], "alice@example.com", "{r}");
    assert_eq!(r["entry"]["issuer"], op.issuer.as_str(), "{r}");
    assert!(
        r["entry"]["sans"]
            .as_str()
            .unwrap()
            .contains("alice@example.com")
    );
    assert_eq!(r["entry"]["sct"], "true", "{r}");
    assert_eq!(r["entry"]["proof"], "true", "{r}");
    assert_eq!(r["entry"]["sth"], "true", "{r}");
    assert!(
        r["entry"]["proof_text"]
            .as_str()
            .unwrap()
            .contains("verified")
    );
    // Search by repository: the GitHub certificate, with its Sigstore extensions decoded.
    assert_eq!(r["repository_rows"], 1, "{r}");
    let exts = r["repo_entry"]["extensions"].as_str().unwrap();
    for name in [
        "source-repository-uri",
        "build-signer-uri",
        "issuer",
        "runner-environment",
    ] {
        assert!(exts.contains(name), "{name} not in {exts}");
    }
    assert!(exts.contains(&repo), "{exts}");
    assert_eq!(r["repo_entry"]["proof"], "true", "{r}");
    // Without JavaScript the results are still there.
    assert_eq!(r["nojs_rows"], 1, "{r}");
    // The health panel and its chart.
    assert_eq!(r["health"]["tree_size"], "4", "{r}");
    assert_eq!(r["health"]["bars"], 24, "{r}");
    assert_eq!(r["health"]["day"], "4", "{r}");
    // A tampered proof is caught by the page: the server is not trusted for the verdict.
    assert_eq!(r["tampered"]["proof"], "false", "{r}");
    for name in [
        "search",
        "results",
        "entry",
        "repository-entry",
        "nojs-results",
        "tampered",
    ] {
        let p = shots.join(format!("{name}.png"));
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{} missing or empty", p.display());
    }
}
