//! Every Fulcio identity type beyond the core ones, with realistic token shapes minted by
//! the real provider: CI providers through `ci-provider` templates (brevis's public-good
//! equivalent), the hard-coded legacy types, chainguard, meta-issuers; SAN and every
//! extension decoded by pyca/cryptography and compared with what Fulcio issues. Every
//! token also goes through the gRPC API, which must certify the same identity (or refuse
//! with the same message).

mod common;

use common::keys::{ClientKey, Kind};
use common::{Brevis, Op, github_claims, repo_root, run_python};
use serde_json::{Value, json};

const TENANTS: &str = "github,gitlab,buildkite,codefresh,circleci,buddy,legacy-github,legacy-gitlab,legacy-buildkite,legacy-codefresh,chainguard,ghe-acme";

/// Test identity config: tenants of one OP as issuers, the CI templates taken verbatim from
/// config/public-good.yaml.
fn config(op: &Op) -> String {
    let text = std::fs::read_to_string(repo_root().join("config/public-good.yaml")).unwrap();
    let public: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let mut issuers = serde_norway::Mapping::new();
    let mut add = |tenant: &str, kind: &str, provider: Option<&str>| {
        let url = op.tenant(tenant);
        let mut m = serde_norway::Mapping::new();
        m.insert("issuer-url".into(), url.clone().into());
        m.insert("client-id".into(), "sigstore".into());
        m.insert("type".into(), kind.into());
        if let Some(p) = provider {
            m.insert("ci-provider".into(), p.into());
        }
        issuers.insert(url.into(), serde_norway::Value::Mapping(m));
    };
    add("github", "ci-provider", Some("github-workflow"));
    add("gitlab", "ci-provider", Some("gitlab-pipeline"));
    add("buildkite", "ci-provider", Some("buildkite-job"));
    add("codefresh", "ci-provider", Some("codefresh-workflow"));
    add("circleci", "ci-provider", Some("circleci-job"));
    add("buddy", "ci-provider", Some("buddy-pipeline"));
    add("legacy-github", "github-workflow", None);
    add("legacy-gitlab", "gitlab-pipeline", None);
    add("legacy-buildkite", "buildkite-job", None);
    add("legacy-codefresh", "codefresh-workflow", None);
    add("chainguard", "chainguard-identity", None);
    let mut meta = serde_norway::Mapping::new();
    let mut ghe = serde_norway::Mapping::new();
    ghe.insert("client-id".into(), "sigstore".into());
    ghe.insert("type".into(), "ci-provider".into());
    ghe.insert("ci-provider".into(), "github-workflow".into());
    meta.insert(
        format!("{}/ghe-*", op.issuer).into(),
        serde_norway::Value::Mapping(ghe),
    );
    let mut doc = serde_norway::Mapping::new();
    doc.insert("oidc-issuers".into(), serde_norway::Value::Mapping(issuers));
    doc.insert("meta-issuers".into(), serde_norway::Value::Mapping(meta));
    doc.insert(
        "ci-issuer-metadata".into(),
        public["ci-issuer-metadata"].clone(),
    );
    serde_norway::to_string(&doc).unwrap()
}

/// (arc, value) of every Sigstore extension, in certificate order, as pyca sees them.
fn sigstore_extensions(py: &Value) -> Vec<(u32, String)> {
    py["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let oid = e["oid"].as_str().unwrap();
            let arc: u32 = oid.strip_prefix("1.3.6.1.4.1.57264.1.")?.parse().ok()?;
            let raw = hex::decode(e["value_hex"].as_str()?).ok()?;
            let value = if arc <= 6 {
                String::from_utf8(raw).unwrap()
            } else {
                assert_eq!(raw[0], 0x0c, ".{arc} must be a UTF8String");
                brevis::model::extensions::parse_der_string(&raw).expect("a single DER string")
            };
            assert_eq!(e["critical"], false);
            Some((arc, value))
        })
        .collect()
}

struct Issued {
    san: Vec<String>,
    ext: Vec<(u32, String)>,
}

async fn issue(
    brevis: &Brevis,
    op: &Op,
    tenant: &str,
    sub: &str,
    claims: Value,
) -> Result<Issued, (u16, Value)> {
    let token = op
        .mint_at(&op.tenant(tenant), "sigstore", sub, claims)
        .await;
    issue_token(brevis, &token, sub).await
}

async fn issue_token(
    brevis: &Brevis,
    token: &str,
    challenge: &str,
) -> Result<Issued, (u16, Value)> {
    let key = ClientKey::generate(Kind::P256);
    let (s, r) = brevis
        .post_json("/api/v2/signingCert", &key.v2_key_body(token, challenge))
        .await;
    // The same token over gRPC (a client generated from the proto, on the shared port):
    // the same answer, and the same identity field for field.
    let grpc = run_python(
        "grpc_client.py",
        &[brevis.url.trim_start_matches("http://")],
        &serde_json::json!({"call": "create", "token": token, "key": "public",
                            "challenge": challenge})
        .to_string(),
    );
    if s != 200 {
        assert_eq!(
            (grpc["ok"].as_bool(), grpc["code"].as_str()),
            (Some(false), Some("INVALID_ARGUMENT")),
            "REST {s} {r}, gRPC {grpc}"
        );
        assert_eq!(grpc["message"], r["message"], "the same message over gRPC");
        return Err((s, r));
    }
    assert_eq!(grpc["ok"], true, "REST issued, gRPC: {grpc}");
    let identity = |chain: &[String]| {
        let py = run_python("inspect_cert.py", &[], &chain.concat());
        assert_eq!(py["signed_by_issuer"], true);
        let san: Vec<String> = py["san"]["uris"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_string())
            .collect();
        Issued {
            san,
            ext: sigstore_extensions(&py),
        }
    };
    let chain: Vec<String> = r["signedCertificateEmbeddedSct"]["chain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let rest = identity(&chain);
    let over_grpc: Vec<String> = grpc["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let over_grpc = identity(&over_grpc);
    assert_eq!(
        (&over_grpc.san, &over_grpc.ext),
        (&rest.san, &rest.ext),
        "gRPC and REST certify the same identity"
    );
    Ok(rest)
}

fn expect(issuer: &str, sub: &str, pairs: &[(u32, &str)]) -> Vec<(u32, String)> {
    let mut v: Vec<(u32, String)> = vec![(1, issuer.to_string())];
    v.extend(
        pairs
            .iter()
            .filter(|(a, _)| *a <= 6)
            .map(|(a, s)| (*a, s.to_string())),
    );
    v.push((8, issuer.to_string()));
    v.extend(
        pairs
            .iter()
            .filter(|(a, _)| *a > 6)
            .map(|(a, s)| (*a, s.to_string())),
    );
    v.push((24, sub.to_string()));
    v
}

#[tokio::test]
async fn ci_providers_get_fulcios_san_and_extensions() {
    let op = Op::start_with(&[("TENANTS", TENANTS)]);
    let brevis = Brevis::start(&config(&op), &[]);

    // GitHub Actions: the upstream full-token vector, byte for byte (issuer aside).
    let vector: Value = serde_json::from_str(
        &std::fs::read_to_string(
            repo_root().join("tests/vectors/fulcio/github-actions-full-token.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let (sub, claims) = github_claims();
    let iss = op.tenant("github");
    let got = issue(&brevis, &op, "github", &sub, claims.clone())
        .await
        .unwrap();
    assert_eq!(got.san, vec![vector["expected_san_uri"].as_str().unwrap()]);
    let want: Vec<(u32, String)> = vector["expected_extensions_ordered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let arc: u32 = e["oid"]
                .as_str()
                .unwrap()
                .rsplit('.')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let value = if arc == 1 || arc == 8 {
                iss.clone()
            } else {
                e["value"].as_str().unwrap().to_string()
            };
            (arc, value)
        })
        .collect();
    assert_eq!(got.ext, want);
    // Without the optional environment claim, .23 is dropped.
    let mut no_env = claims.clone();
    no_env.as_object_mut().unwrap().remove("environment");
    let got = issue(&brevis, &op, "github", &sub, no_env.clone())
        .await
        .unwrap();
    assert!(got.ext.iter().all(|(a, _)| *a != 23));
    assert_eq!(got.ext.len(), want.len() - 1);
    // Numbers where strings are usual are stringified by templates (Fulcio main).
    let mut numeric = claims.clone();
    numeric["run_id"] = json!(42);
    numeric["run_attempt"] = json!(1);
    let got = issue(&brevis, &op, "github", &sub, numeric).await.unwrap();
    assert!(got.ext.contains(&(
        21,
        "https://github.com/sigstore/fulcio/actions/runs/42/attempts/1".into()
    )));
    // A claim a template needs is missing: 400 with the template error, as Fulcio.
    let mut missing = claims.clone();
    missing.as_object_mut().unwrap().remove("job_workflow_ref");
    let (s, r) = issue(&brevis, &op, "github", &sub, missing)
        .await
        .err()
        .unwrap();
    assert_eq!(s, 400);
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("map has no entry for key \"job_workflow_ref\""),
        "{r}"
    );

    // GitLab CI id_tokens (runner_id is a number, ci_config_ref_uri has no scheme).
    let gl_sub = "project_path:my-group/my-project:ref_type:branch:ref:feature-branch-1";
    let gl = json!({
        "namespace_id": "72", "namespace_path": "my-group", "project_id": "20", "project_path": "my-group/my-project",
        "user_id": "1", "user_login": "sample-user", "user_email": "sample-user@example.com",
        "pipeline_id": "574", "pipeline_source": "push", "job_id": "302", "ref": "feature-branch-1", "ref_type": "branch",
        "ref_path": "refs/heads/feature-branch-1", "ref_protected": "false", "environment": "test-environment2",
        "environment_protected": "false", "deployment_tier": "testing", "environment_action": "start",
        "runner_id": 1, "runner_environment": "self-hosted", "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "project_visibility": "public", "ci_config_ref_uri": "gitlab.example.com/my-group/my-project//.gitlab-ci.yml@refs/heads/main",
        "ci_config_sha": "714a629c0b401fdce83e847fc9589983fc6f46bc"
    });
    let cfg_uri = "https://gitlab.example.com/my-group/my-project//.gitlab-ci.yml@refs/heads/main";
    let sha = "714a629c0b401fdce83e847fc9589983fc6f46bc";
    let gl_want = |iss: &str, with_env: bool| {
        let mut pairs = vec![
            (9, cfg_uri),
            (10, sha),
            (11, "self-hosted"),
            (12, "https://gitlab.com/my-group/my-project"),
            (13, sha),
            (14, "refs/heads/feature-branch-1"),
            (15, "20"),
            (16, "https://gitlab.com/my-group"),
            (17, "72"),
            (18, cfg_uri),
            (19, sha),
            (20, "push"),
            (21, "https://gitlab.com/my-group/my-project/-/jobs/302"),
            (22, "public"),
        ];
        if with_env {
            pairs.push((23, "test-environment2"));
        }
        expect(iss, gl_sub, &pairs)
    };
    let got = issue(&brevis, &op, "gitlab", gl_sub, gl.clone())
        .await
        .unwrap();
    assert_eq!(got.san, vec![cfg_uri]);
    assert_eq!(got.ext, gl_want(&op.tenant("gitlab"), true));
    let mut tag = gl.clone();
    tag["ref_type"] = json!("tag");
    tag["ref"] = json!("v1.0.0");
    let got = issue(&brevis, &op, "gitlab", gl_sub, tag).await.unwrap();
    assert!(got.ext.contains(&(14, "refs/tags/v1.0.0".into())));

    // Buildkite (build_number is a number, build_tag and step_key are null).
    let bk_sub = "organization:example-org:pipeline:example-pipeline:ref:refs/heads/main:commit:b5ffe3aeea51cec6c41aef16e45ee6bce47d8810:step:";
    let bk = json!({
        "organization_slug": "example-org", "pipeline_slug": "example-pipeline", "build_number": 5, "build_branch": "main",
        "build_tag": null, "build_commit": "b5ffe3aeea51cec6c41aef16e45ee6bce47d8810", "step_key": null,
        "job_id": "01945ecf-80f0-41e8-9b83-a2970a9305a1", "agent_id": "01945ecf-8bcf-40a6-9d70-a765db9a0928",
        "build_source": "ui", "runner_environment": "buildkite-hosted"
    });
    let got = issue(&brevis, &op, "buildkite", bk_sub, bk.clone())
        .await
        .unwrap();
    assert_eq!(
        got.san,
        vec!["https://buildkite.com/example-org/example-pipeline"]
    );
    assert_eq!(
        got.ext,
        expect(
            &op.tenant("buildkite"),
            bk_sub,
            &[
                (11, "buildkite-hosted"),
                (13, "b5ffe3aeea51cec6c41aef16e45ee6bce47d8810"),
                (20, "ui"),
                (
                    21,
                    "https://buildkite.com/example-org/example-pipeline/builds/5#01945ecf-80f0-41e8-9b83-a2970a9305a1"
                ),
            ]
        )
    );

    // Codefresh (platform_url absent: the default applies).
    let cf_sub = "account:628a80b693a15c0f9c13ab75:pipeline:65e5a53e52853dc51a5b0cc1";
    let cf = json!({
        "account_id": "628a80b693a15c0f9c13ab75", "account_name": "codefresh-account", "pipeline_id": "65e5a53e52853dc51a5b0cc1",
        "pipeline_name": "oidc-test/get-token", "workflow_id": "65e6d5551e4eb5d4fa9b8f6c", "scm_repo_url": "https://github.com/codefresh-user/oidc-test",
        "scm_ref": "main", "runner_environment": "cloud"
    });
    let got = issue(&brevis, &op, "codefresh", cf_sub, cf.clone())
        .await
        .unwrap();
    assert_eq!(
        got.san,
        vec![
            "https://g.codefresh.io/codefresh-account/oidc-test/get-token:628a80b693a15c0f9c13ab75/65e5a53e52853dc51a5b0cc1"
        ]
    );
    assert_eq!(
        got.ext,
        expect(
            &op.tenant("codefresh"),
            cf_sub,
            &[
                (9, "https://g.codefresh.io/build/65e6d5551e4eb5d4fa9b8f6c"),
                (11, "cloud"),
                (12, "https://github.com/codefresh-user/oidc-test"),
                (14, "main"),
                (
                    18,
                    "https://g.codefresh.io/api/pipelines/65e5a53e52853dc51a5b0cc1"
                ),
                (21, "https://g.codefresh.io/build/65e6d5551e4eb5d4fa9b8f6c"),
            ]
        )
    );

    // CircleCI: claim names with dots and slashes, a boolean ssh-rerun, and the quirks.
    let cc_sub = "org/o1/project/p1/user/u1";
    let mut cc = json!({
        "oidc.circleci.com/project-id": "p1", "oidc.circleci.com/pipeline-definition-id": "d1",
        "oidc.circleci.com/pipeline-id": "pl1", "oidc.circleci.com/workflow-id": "w1", "oidc.circleci.com/job-id": "j1",
        "oidc.circleci.com/vcs-origin": "github.com/org/repo", "oidc.circleci.com/vcs-ref": "refs/heads/main",
        "oidc.circleci.com/ssh-rerun": false
    });
    let cc_want = |runner: &str| {
        expect(
            &op.tenant("circleci"),
            cc_sub,
            &[
                (
                    9,
                    "https://circleci.com/api/v2/projects/p1/pipeline-definitions/d1",
                ),
                (11, runner),
                (12, "github.com/org/repo"),
                (14, "refs/heads/main"),
                (18, "https://circleci.com/api/v2/pipeline/pl1/config"),
                (21, "https://app.circleci.com//workflow/w1/job/j1"),
            ],
        )
    };
    let got = issue(&brevis, &op, "circleci", cc_sub, cc.clone())
        .await
        .unwrap();
    assert_eq!(
        got.san,
        vec!["https://circleci.com/api/v2/projects/p1/pipeline-definitions/d1"]
    );
    assert_eq!(got.ext, cc_want("\"\""));
    cc["oidc.circleci.com/ssh-rerun"] = json!(true);
    let got = issue(&brevis, &op, "circleci", cc_sub, cc).await.unwrap();
    assert_eq!(got.ext, cc_want("ssh-rerun"));

    // Buddy.
    let bd_sub = "workspace:ws:project:proj:pipeline:42";
    let bd = json!({
        "workspace_domain": "ws", "project_name": "proj", "pipeline_id": 42, "execution_id": "7", "triggered_on": "EVENT",
        "runner_environment": "platform-hosted", "revision": "abc123", "ref": "refs/heads/main"
    });
    let got = issue(&brevis, &op, "buddy", bd_sub, bd).await.unwrap();
    assert_eq!(
        got.san,
        vec!["https://app.buddy.works/ws/proj/pipelines/pipeline/42"]
    );
    assert_eq!(
        got.ext,
        expect(
            &op.tenant("buddy"),
            bd_sub,
            &[
                (9, "https://app.buddy.works/ws/proj/pipelines/pipeline/42"),
                (11, "platform-hosted"),
                (12, "https://app.buddy.works/ws/proj"),
                (13, "abc123"),
                (14, "refs/heads/main"),
                (16, "https://app.buddy.works/ws"),
                (20, "EVENT"),
                (
                    21,
                    "https://app.buddy.works/ws/proj/pipelines/pipeline/42/execution/7"
                ),
            ]
        )
    );

    // A GitHub Enterprise issuer through the meta-issuer pattern <op>/ghe-*.
    let got = issue(&brevis, &op, "ghe-acme", &sub, claims.clone())
        .await
        .unwrap();
    assert_eq!(got.ext[0], (1, op.tenant("ghe-acme")));
    // Issuers that match the pattern only partially are unknown and never contacted.
    let fetches = op.jwks_fetches().await;
    for iss in [
        format!("{}/ghe-acme/x", op.issuer),
        format!("{}/ghe-acme.evil", op.issuer),
        format!("{}/ghe-", op.issuer),
    ] {
        let mut c = claims.clone();
        c["iss"] = json!(iss);
        c["aud"] = json!("sigstore");
        c["sub"] = json!(sub);
        c["exp"] = json!(common::now_secs() + 300);
        let t = op.sign(json!({"claims": c})).await;
        let (s, r) = issue_token(&brevis, &t, &sub).await.err().unwrap();
        assert_eq!(
            (s, r["message"].as_str()),
            (
                400,
                Some("There was an error processing the identity token")
            )
        );
    }
    assert_eq!(op.jwks_fetches().await, fetches);
    // One certificate over REST and one over gRPC for the one accepted token.
    let m = brevis.metrics().await;
    assert!(
        m.contains(&format!(
            "brevis_certificates_issued_total{{issuer=\"{}/ghe-*\",type=\"ci-provider\"}} 2",
            op.issuer
        )),
        "{m}"
    );
}

#[tokio::test]
async fn legacy_ci_types_and_chainguard() {
    let op = Op::start_with(&[("TENANTS", TENANTS)]);
    let brevis = Brevis::start(&config(&op), &[]);
    let token_msg = Some("There was an error processing the identity token");

    // github-workflow (hard-coded): the template result minus .23.
    let (sub, claims) = github_claims();
    let legacy = issue(&brevis, &op, "legacy-github", &sub, claims.clone())
        .await
        .unwrap();
    let templ = issue(&brevis, &op, "github", &sub, claims.clone())
        .await
        .unwrap();
    assert_eq!(legacy.san, templ.san);
    let relabel = |v: Vec<(u32, String)>, from: &str, to: &str| -> Vec<(u32, String)> {
        v.into_iter()
            .map(|(a, s)| (a, if s == from { to.to_string() } else { s }))
            .collect()
    };
    let templ_ext: Vec<(u32, String)> =
        relabel(templ.ext, &op.tenant("github"), &op.tenant("legacy-github"))
            .into_iter()
            .filter(|(a, _)| *a != 23)
            .collect();
    assert_eq!(legacy.ext, templ_ext);
    // Every required claim is required; numbers are not strings here.
    for claim in [
        "job_workflow_ref",
        "sha",
        "event_name",
        "repository",
        "workflow",
        "ref",
        "job_workflow_sha",
        "runner_environment",
        "repository_id",
        "repository_owner",
        "repository_owner_id",
        "repository_visibility",
        "workflow_ref",
        "workflow_sha",
        "run_id",
        "run_attempt",
    ] {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove(claim);
        let (s, r) = issue(&brevis, &op, "legacy-github", &sub, c)
            .await
            .err()
            .unwrap();
        assert_eq!((s, r["message"].as_str()), (400, token_msg), "{claim}");
    }
    let mut numeric = claims.clone();
    numeric["run_id"] = json!(42);
    let (s, _) = issue(&brevis, &op, "legacy-github", &sub, numeric)
        .await
        .err()
        .unwrap();
    assert_eq!(s, 400);

    // gitlab-pipeline (hard-coded).
    let gl_sub = "project_path:g/p:ref_type:tag:ref:v1";
    let gl = json!({
        "namespace_id": "72", "namespace_path": "g", "project_id": "20", "project_path": "g/p", "pipeline_id": "574",
        "pipeline_source": "push", "job_id": "302", "ref": "v1", "ref_type": "tag", "runner_id": 7,
        "runner_environment": "gitlab-hosted", "sha": "aa", "project_visibility": "private",
        "ci_config_ref_uri": "gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v1", "ci_config_sha": "aa"
    });
    let got = issue(&brevis, &op, "legacy-gitlab", gl_sub, gl.clone())
        .await
        .unwrap();
    assert_eq!(
        got.san,
        vec!["https://gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v1"]
    );
    assert!(got.ext.contains(&(14, "refs/tags/v1".into())));
    assert!(
        got.ext
            .contains(&(21, "https://gitlab.com/g/p/-/jobs/302".into()))
    );
    for (name, patch) in [
        ("runner_id missing", json!({"runner_id": null})),
        ("ref_type unknown", json!({"ref_type": "sha"})),
        ("runner_id a string", json!({"runner_id": "7"})),
    ] {
        let mut c = gl.clone();
        c.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        let (s, _) = issue(&brevis, &op, "legacy-gitlab", gl_sub, c)
            .await
            .err()
            .unwrap();
        assert_eq!(s, 400, "{name}");
    }

    // buildkite-job (hard-coded): SAN only, plus issuer and subject.
    let got = issue(
        &brevis,
        &op,
        "legacy-buildkite",
        "org:o:pipeline:p",
        json!({"organization_slug": "o", "pipeline_slug": "p", "build_number": 1}),
    )
    .await
    .unwrap();
    assert_eq!(got.san, vec!["https://buildkite.com/o/p"]);
    assert_eq!(
        got.ext,
        expect(&op.tenant("legacy-buildkite"), "org:o:pipeline:p", &[])
    );
    let (s, _) = issue(
        &brevis,
        &op,
        "legacy-buildkite",
        "org:o",
        json!({"organization_slug": "o"}),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(s, 400);

    // codefresh-workflow (hard-coded): .18 points at the build, unlike the template.
    let got = issue(&brevis, &op, "legacy-codefresh", "cf", json!({"account_id": "a", "account_name": "acct", "pipeline_id": "p", "pipeline_name": "proj/pipe", "workflow_id": "w", "platform_url": "https://cf.example.com"})).await.unwrap();
    assert_eq!(got.san, vec!["https://cf.example.com/acct/proj/pipe:a/p"]);
    assert!(
        got.ext
            .contains(&(18, "https://cf.example.com/build/w".into()))
    );
    let (s, _) = issue(
        &brevis,
        &op,
        "legacy-codefresh",
        "cf",
        json!({"account_id": "a", "pipeline_id": "p"}),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(s, 400, "workflow_id is required");

    // chainguard-identity: challenge is the verified email if present, else sub.
    let cg = op.tenant("chainguard");
    let got = issue(&brevis, &op, "chainguard", "abc/def", json!({}))
        .await
        .unwrap();
    assert_eq!(got.san, vec![format!("{cg}/abc/def")]);
    assert_eq!(got.ext, expect(&cg, "abc/def", &[]));
    let t = op
        .mint_at(
            &cg,
            "sigstore",
            "abc/def",
            json!({"email": "bot@example.com", "email_verified": true}),
        )
        .await;
    assert!(issue_token(&brevis, &t, "bot@example.com").await.is_ok());
    assert_eq!(
        issue_token(&brevis, &t, "abc/def").await.err().unwrap().0,
        400,
        "PoP must be over the email"
    );
    let t = op
        .mint_at(
            &cg,
            "sigstore",
            "abc/def",
            json!({"email": "bot@example.com", "email_verified": false}),
        )
        .await;
    assert_eq!(
        issue_token(&brevis, &t, "bot@example.com")
            .await
            .err()
            .unwrap()
            .1["message"]
            .as_str(),
        token_msg
    );
}
