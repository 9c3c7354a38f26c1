//! Issuance policies against a real OpenID Provider: email-shaped and GitHub-shaped tokens
//! and a meta-issuer pattern; claims that match, miss, hit a deny pattern, are absent, are
//! numbers and booleans, or arrays; the 403 shape, the metric, the audit record; reload to a
//! stricter policy and a broken one; `config check --issuance-policy`.

mod common;

use common::keys::{ClientKey, Kind};
use common::{Brevis, Op, brevis_bin, eventually, github_claims, repo_root};
use serde_json::{Value, json};
use std::process::Command;

fn identity_config(op: &Op) -> String {
    format!(
        "oidc-issuers:\n  {iss}:\n    issuer-url: {iss}\n    client-id: sigstore\n    type: email\n  {gh}:\n    issuer-url: {gh}\n    client-id: sigstore\n    type: github-workflow\nmeta-issuers:\n  {iss}/ghe-*:\n    client-id: sigstore\n    type: email\n",
        iss = op.issuer,
        gh = op.tenant("github"),
    )
}

fn policy(op: &Op, staff: &str) -> String {
    format!(
        r#"policies:
  - name: acme-release
    issuer: {gh}
    allow:
      repository_owner: [username]
      ref: [refs/heads/main, "refs/tags/v*"]
    deny:
      job_workflow_ref: ["*/sandbox/*"]
  - name: staff
    issuer: {iss}
    allow:
      email: ["{staff}"]
  - name: numbers
    issuer: {iss}
    allow:
      build_number: [4242]
      internal: [true]
  - name: acme-ghe
    issuer: "{iss}/ghe-*"
    allow:
      email: ["*@acme.example"]
      groups: [release]
"#,
        gh = op.tenant("github"),
        iss = op.issuer,
    )
}

struct Caller<'a> {
    op: &'a Op,
    b: &'a Brevis,
    key: ClientKey,
}

impl Caller<'_> {
    async fn email(&self, issuer: &str, email: &str, extra: Value) -> (u16, Value) {
        let mut claims = json!({"email": email, "email_verified": true});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let token = self.op.mint_at(issuer, "sigstore", "someone", claims).await;
        self.b
            .post_json("/api/v2/signingCert", &self.key.v2_key_body(&token, email))
            .await
    }

    async fn github(
        &self,
        change: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> (u16, Value) {
        let (sub, mut claims) = github_claims();
        change(claims.as_object_mut().unwrap());
        let token = self
            .op
            .mint_at(&self.op.tenant("github"), "sigstore", &sub, claims)
            .await;
        self.b
            .post_json("/api/v2/signingCert", &self.key.v2_key_body(&token, &sub))
            .await
    }
}

fn refused(r: &(u16, Value), policy: &str, claim: &str, how: &str) {
    assert_eq!(r.0, 403, "{}", r.1);
    assert_eq!(r.1["code"], 7, "{}", r.1);
    let m = r.1["message"].as_str().unwrap();
    assert!(
        m.contains(&format!("policy {policy:?}")) && m.contains(&format!("claim {claim:?} {how}")),
        "{m}"
    );
}

#[tokio::test]
async fn policies_decide_on_verified_claims_and_reload_safely() {
    let op = Op::start_with(&[("TENANTS", "github,ghe-acme")]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("identity.yaml");
    std::fs::write(&config, identity_config(&op)).unwrap();
    let policy_file = dir.path().join("policy.yaml");

    // A broken policy stops the start, naming the field.
    std::fs::write(
        &policy_file,
        "policies:\n  - name: x\n    issuer: https://unknown.example\n    allow: {email: [a]}\n",
    )
    .unwrap();
    let out = Command::new(brevis_bin())
        .args([
            "serve",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--insecure-http-issuers",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("never"))
        .arg("--config-path")
        .arg(&config)
        .arg("--issuance-policy")
        .arg(&policy_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("policies[0].issuer"), "{err}");

    std::fs::write(&policy_file, policy(&op, "*@example.com")).unwrap();
    // config check shows, per issuer, who may get a certificate.
    let out = common::succeed(
        Command::new(brevis_bin())
            .args(["config", "check", "--insecure-http-issuers"])
            .arg(&config)
            .arg("--issuance-policy")
            .arg(&policy_file),
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("staff: email ~ *@example.com"), "{text}");
    assert!(text.contains("acme-release: ref ~ refs/heads/main | refs/tags/v*, repository_owner ~ username; never job_workflow_ref ~ */sandbox/*"), "{text}");
    assert!(
        text.contains("numbers: build_number ~ 4242, internal ~ true"),
        "{text}"
    );

    let b = Brevis::start_in(
        dir.path(),
        Some(&config),
        &[
            "--issuance-policy",
            policy_file.to_str().unwrap(),
            "--watch-interval",
            "100ms",
        ],
    );
    let c = Caller {
        op: &op,
        b: &b,
        key: ClientKey::generate(Kind::P256),
    };
    let iss = op.issuer.clone();
    // Email-shaped.
    assert_eq!(c.email(&iss, "alice@example.com", json!({})).await.0, 200);
    let r = c.email(&iss, "mallory@evil.example", json!({})).await;
    // The first policy of the issuer names the first claim that failed; no claim value
    // is echoed.
    refused(&r, "staff", "email", "matches no allowed pattern");
    assert!(!r.1["message"].as_str().unwrap().contains("mallory"));
    // Numbers and booleans match their JSON text; one of the issuer's policies suffices.
    let ok = c
        .email(
            &iss,
            "x@other.example",
            json!({"build_number": 4242, "internal": true}),
        )
        .await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    let no = c
        .email(
            &iss,
            "x@other.example",
            json!({"build_number": 4243, "internal": true}),
        )
        .await;
    assert_eq!(no.0, 403);
    let no = c
        .email(
            &iss,
            "x@other.example",
            json!({"build_number": "4242", "internal": "yes"}),
        )
        .await;
    assert_eq!(no.0, 403);

    // GitHub-shaped.
    assert_eq!(c.github(|_| {}).await.0, 200);
    let r = c
        .github(|m| {
            m.insert("ref".into(), json!("refs/tags/v1.2.0"));
        })
        .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let r = c
        .github(|m| {
            m.insert("ref".into(), json!("refs/heads/dev"));
        })
        .await;
    refused(&r, "acme-release", "ref", "matches no allowed pattern");
    let r = c
        .github(|m| {
            m.insert(
                "job_workflow_ref".into(),
                json!("username/sandbox/.github/workflows/x.yml@refs/heads/main"),
            );
        })
        .await;
    refused(
        &r,
        "acme-release",
        "job_workflow_ref",
        "matches a denied pattern",
    );
    // A meta-issuer pattern.
    let ghe = op.tenant("ghe-acme");
    // An array claim matches when one element does.
    let groups = json!({"groups": ["dev", "release"]});
    let ok = c.email(&ghe, "dev@acme.example", groups.clone()).await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    refused(
        &c.email(&ghe, "dev@other.example", groups).await,
        "acme-ghe",
        "email",
        "matches no allowed pattern",
    );
    refused(
        &c.email(&ghe, "dev@acme.example", json!({})).await,
        "acme-ghe",
        "groups",
        "is absent",
    );

    // Counted and audited.
    let m = b.metrics().await;
    assert!(
        m.lines().any(
            |l| l.starts_with("brevis_rejections_total{reason=\"policy\"} ") && !l.ends_with(" 0")
        ),
        "{m}"
    );
    let log = b.log();
    assert!(
        log.lines()
            .any(|l| l.contains("certificate refused by issuance policy")
                && l.contains("policy=\"staff\"")
                && l.contains("mallory@evil.example")),
        "{log}"
    );

    // A stricter policy takes effect on the next request after the file changes.
    std::fs::write(&policy_file, policy(&op, "carol@example.com")).unwrap();
    eventually("the stricter policy", || async {
        c.email(&iss, "alice@example.com", json!({})).await.0 == 403
    })
    .await;
    assert_eq!(c.email(&iss, "carol@example.com", json!({})).await.0, 200);
    // A broken policy is refused at reload; the one in force stays.
    let failures = |m: &str| {
        m.lines()
            .find(|l| {
                l.starts_with("brevis_config_reloads_total")
                    && l.contains("identity_config")
                    && l.contains("failure")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = failures(&b.metrics().await);
    std::fs::write(&policy_file, "policies:\n  - name: broken\n").unwrap();
    eventually("the refused reload", || async {
        failures(&b.metrics().await) > before
    })
    .await;
    assert_eq!(c.email(&iss, "alice@example.com", json!({})).await.0, 403);
    assert_eq!(c.email(&iss, "carol@example.com", json!({})).await.0, 200);
    assert!(b.log().contains("policies[0].issuer"), "{}", b.log());
}

#[test]
fn the_shipped_example_policy_fits_the_public_good_config() {
    let out = common::succeed(
        Command::new(brevis_bin())
            .args(["config", "check"])
            .arg(repo_root().join("config/public-good.yaml"))
            .arg("--issuance-policy")
            .arg(repo_root().join("config/issuance-policy.yaml")),
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("acme-release: ref ~ refs/heads/main"),
        "{text}"
    );
    assert!(
        text.contains("refused: no policy (default: deny)"),
        "{text}"
    );
}
