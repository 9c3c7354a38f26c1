//! Fulcio's gRPC API on `--grpc-port`: a Python client generated from proto/fulcio.proto
//! with grpcio-tools and a Rust client (tonic), both key paths, the token in the field and
//! in `oidcidentitytoken` metadata, the error codes, plaintext and TLS, health and
//! reflection, metrics; the certificates checked by sigstore-python's and sigstore-js's
//! verifiers.

mod common;

use brevis::grpc::proto::ca_client::CaClient;
use brevis::grpc::proto::{
    CreateSigningCertificateRequest, Credentials, GetConfigurationRequest, GetTrustBundleRequest,
    PublicKey, PublicKeyRequest, create_signing_certificate_request::Key, credentials,
    signing_certificate::Certificate,
};
use common::clients::{js_verify, python_verify_identity, trust_config};
use common::keys::{ClientKey, Kind};
use common::{Brevis, Op, email_config, github_claims, line_after_in, run_python};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";

fn grpc_addr(b: &Brevis) -> String {
    line_after_in(&b.stdout_lines, "gRPC listening on ").expect("gRPC listener in the banner")
}

fn py(target: &str, spec: Value) -> Value {
    run_python("grpc_client.py", &[target], &spec.to_string())
}

async fn token(op: &Op) -> String {
    op.mint("alice", json!({"email": ALICE, "email_verified": true}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_clients_get_certificates_real_verifiers_accept() {
    let op = Op::start();
    let b = Brevis::start(&email_config(&op), &["--grpc-port", "0"]);
    let target = grpc_addr(&b);

    // Python, generated from the proto: both key paths, token in the field or metadata.
    let mut leaves = Vec::new();
    for (key, token_in) in [
        ("public", "field"),
        ("csr", "field"),
        ("public", "metadata"),
    ] {
        let r = py(
            &target,
            json!({"call": "create", "token": token(&op).await, "token_in": token_in,
                   "key": key, "challenge": ALICE}),
        );
        assert_eq!(r["ok"], true, "{key}/{token_in}: {r}");
        assert_eq!(r["kind"], "signed_certificate_embedded_sct");
        let chain = r["chain"].as_array().unwrap();
        assert_eq!(chain.len(), 3, "{r}");
        leaves.push(chain[0].as_str().unwrap().to_string());
    }
    // The same trust bundle and configuration as REST.
    let bundle = py(&target, json!({"call": "bundle"}));
    let rest: Value = b.get("/api/v2/trustBundle").await.json().await.unwrap();
    assert_eq!(
        bundle["chains"][0], rest["chains"][0]["certificates"],
        "{bundle}"
    );
    let config = py(&target, json!({"call": "config"}));
    assert_eq!(config["issuers"][0]["issuer_url"], op.issuer.as_str());
    assert_eq!(config["issuers"][0]["issuer_type"], "email");
    assert_eq!(config["issuers"][0]["challenge_claim"], "email");

    // sigstore-python's verifier: chain, SCT and identity of every certificate from gRPC.
    let trust = tempfile::tempdir().unwrap();
    trust_config(&b, trust.path(), None, &[]);
    let results = python_verify_identity(
        &trust.path().join("client_trust_config.json"),
        &leaves,
        Some((ALICE, &op.issuer)),
    );
    assert!(results.iter().all(|r| r["ok"] == true), "{results:?}");
    // And sigstore-js's: chain, SCT and identity.
    for leaf in &leaves {
        let r = js_verify(
            &trust.path().join("trusted_root.json"),
            leaf,
            ALICE,
            &op.issuer,
        );
        assert_eq!(r["ok"], true, "{r}");
    }

    // Errors: Fulcio's codes and messages.
    for (spec, code, message) in [
        (
            json!({"call": "create", "token": "not-a-token", "key": "public", "challenge": ALICE}),
            "INVALID_ARGUMENT",
            "There was an error processing the identity token",
        ),
        (
            json!({"call": "create", "token": token(&op).await, "key": "public", "challenge": "bob@example.com"}),
            "INVALID_ARGUMENT",
            "",
        ),
        (
            json!({"call": "create", "token": token(&op).await, "key": "none"}),
            "INVALID_ARGUMENT",
            "",
        ),
        (
            json!({"call": "create", "token": "", "key": "public", "challenge": ALICE}),
            "INVALID_ARGUMENT",
            "",
        ),
    ] {
        let r = py(&target, spec.clone());
        assert_eq!(r["ok"], false, "{spec}: {r}");
        assert_eq!(r["code"], code, "{spec}: {r}");
        assert!(r["message"].as_str().unwrap().contains(message), "{r}");
    }

    // Rust (tonic): the same service; the token in metadata; metrics by method and code.
    let channel = tonic::transport::Channel::from_shared(format!("http://{target}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = CaClient::new(channel);
    let key = ClientKey::generate(Kind::P256);
    let mut request = tonic::Request::new(CreateSigningCertificateRequest {
        credentials: Some(Credentials { credentials: None }),
        key: Some(Key::PublicKeyRequest(PublicKeyRequest {
            public_key: Some(PublicKey {
                algorithm: 2,
                content: key.public_pem(),
            }),
            proof_of_possession: key.prove(ALICE),
        })),
    });
    request
        .metadata_mut()
        .insert("oidcidentitytoken", token(&op).await.parse().unwrap());
    let cert = client
        .create_signing_certificate(request)
        .await
        .unwrap()
        .into_inner();
    match cert.certificate {
        Some(Certificate::SignedCertificateEmbeddedSct(e)) => {
            assert_eq!(e.chain.unwrap().certificates.len(), 3)
        }
        other => panic!("{other:?}"),
    }
    let refused = client
        .create_signing_certificate(CreateSigningCertificateRequest {
            credentials: Some(Credentials {
                credentials: Some(credentials::Credentials::OidcIdentityToken("x.y.z".into())),
            }),
            key: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    // The request id: the client's, echoed and in the call's log lines.
    let mut request = tonic::Request::new(GetTrustBundleRequest {});
    request
        .metadata_mut()
        .insert("x-request-id", "grpc-test-0042".parse().unwrap());
    let response = client.get_trust_bundle(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "grpc-test-0042"
    );
    let bundle = response.into_inner();
    assert_eq!(bundle.chains.len(), 1);
    // Messages beyond 4 MiB are refused by the server, which keeps serving.
    let huge = client
        .create_signing_certificate(CreateSigningCertificateRequest {
            credentials: None,
            key: Some(Key::CertificateSigningRequest(vec![b'a'; 5 << 20])),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            huge.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{huge:?}"
    );
    let config = client
        .get_configuration(GetConfigurationRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(config.issuers.len(), 1);

    let m = b.metrics().await;
    for needle in [
        "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"CreateSigningCertificate\",grpc_service=\"dev.sigstore.fulcio.v2.CA\",grpc_type=\"unary\"} 4",
        "grpc_server_handled_total{grpc_code=\"InvalidArgument\",grpc_method=\"CreateSigningCertificate\",grpc_service=\"dev.sigstore.fulcio.v2.CA\",grpc_type=\"unary\"} 5",
        "grpc_server_started_total{grpc_method=\"GetTrustBundle\"",
        "grpc_server_handling_seconds_bucket{grpc_method=\"CreateSigningCertificate\"",
    ] {
        assert!(m.contains(needle), "{needle}\n{m}");
    }
    // Audit records name the gRPC peer like REST ones name the HTTP peer.
    assert!(b.log().contains("certificate issued"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection() {
    let op = Op::start();
    let b = Brevis::start(&email_config(&op), &["--grpc-port", "0"]);
    let target = grpc_addr(&b);
    let channel = tonic::transport::Channel::from_shared(format!("http://{target}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    // The health service follows readiness.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "dev.sigstore.fulcio.v2.CA".into(),
            })
            .await
            .unwrap()
            .into_inner();
        if r.status == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never SERVING");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Reflection lists the service, as grpcurl asks.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("{response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"dev.sigstore.fulcio.v2.CA".to_string()),
        "{names:?}"
    );
    // An unknown service is Unimplemented, not a hang.
    let r = py(&target, json!({"call": "unknown", "timeout": 10}));
    assert_eq!(r["code"], "UNIMPLEMENTED", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls() {
    let op = Op::start();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::server_cert(dir.path(), "grpc");
    let b = Brevis::start(
        &email_config(&op),
        &[
            "--grpc-port",
            "0",
            "--grpc-tls-certificate",
            &cert,
            "--grpc-tls-key",
            &key,
        ],
    );
    let target = grpc_addr(&b);
    let port = target.rsplit(':').next().unwrap();
    let r = py(
        &format!("localhost:{port}"),
        json!({"call": "create", "token": token(&op).await, "key": "public",
               "challenge": ALICE, "tls_ca": ca}),
    );
    assert_eq!(r["ok"], true, "{r}");
    // Plaintext to the TLS port fails.
    let r = py(&target, json!({"call": "bundle", "timeout": 5}));
    assert_eq!(r["ok"], false, "{r}");
}

/// The API's host:port, where REST and gRPC share the (plaintext) listener.
fn api_target(b: &Brevis) -> String {
    b.url.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_rest_share_the_api_port_under_load() {
    let op = Op::start();
    let b = Brevis::start(&email_config(&op), &[]);
    assert!(
        b.stdout_lines.iter().any(|l| l.contains("gRPC also on")),
        "{:?}",
        b.stdout_lines
    );
    let target = api_target(&b);
    // A generated client pointed at the REST URL's host and port, as sigstore-java does.
    let r = py(
        &target,
        json!({"call": "create", "token": token(&op).await, "key": "public", "challenge": ALICE}),
    );
    assert_eq!(r["ok"], true, "{r}");

    // REST (HTTP/1.1) and gRPC (HTTP/2) clients at once on the one port: every request
    // answered by its own protocol, none lost.
    let channel = tonic::transport::Channel::from_shared(format!("http://{target}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = token(&op).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (channel, token) = (channel.clone(), token.clone());
        tasks.spawn(async move {
            let mut client = CaClient::new(channel);
            for _ in 0..25 {
                let key = ClientKey::generate(Kind::P256);
                let mut req = tonic::Request::new(CreateSigningCertificateRequest {
                    credentials: None,
                    key: Some(Key::PublicKeyRequest(PublicKeyRequest {
                        public_key: Some(PublicKey {
                            algorithm: 2,
                            content: key.public_pem(),
                        }),
                        proof_of_possession: key.prove(ALICE),
                    })),
                });
                req.metadata_mut()
                    .insert("oidcidentitytoken", token.parse().unwrap());
                client.create_signing_certificate(req).await.unwrap();
            }
            ("grpc", i)
        });
    }
    for i in 0..8 {
        let (url, token) = (b.url.clone(), token.clone());
        tasks.spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..25 {
                let key = ClientKey::generate(Kind::P256);
                let r = http
                    .post(format!("{url}/api/v2/signingCert"))
                    .json(&key.v2_key_body(&token, ALICE))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
            }
            ("rest", i)
        });
    }
    let mut done = 0;
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
        done += 1;
    }
    assert_eq!(done, 16);
    let m = b.metrics().await;
    assert!(
        m.contains("grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"CreateSigningCertificate\",grpc_service=\"dev.sigstore.fulcio.v2.CA\",grpc_type=\"unary\"} 201"),
        "{m}"
    );
    // The REST side is still plain HTTP/1.1 with its usual answers.
    assert_eq!(b.get("/healthz").await.status().as_u16(), 200);
}

#[tokio::test]
async fn sharing_can_be_turned_off() {
    let op = Op::start();
    let b = Brevis::start(&email_config(&op), &["--grpc-on-api-port=false"]);
    assert!(!b.stdout_lines.iter().any(|l| l.contains("gRPC")));
    let r = py(&api_target(&b), json!({"call": "bundle", "timeout": 5}));
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(b.get("/healthz").await.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_types_over_grpc() {
    let op = Op::start_with(&[("TENANTS", "github,k8s,uri,user,spiffe")]);
    let t = |n: &str| op.tenant(n);
    let config = format!(
        "oidc-issuers:
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
        gh = t("github"),
        k8s = t("k8s"),
        uri = t("uri"),
        user = t("user"),
        spiffe = t("spiffe"),
    );
    let b = Brevis::start(&config, &[]);
    let target = api_target(&b);
    let (gh_sub, gh_claims) = github_claims();
    // (tenant, sub, claims, what `openssl x509 -text` shows of the SAN)
    let cases = [
        (
            "github",
            gh_sub.as_str(),
            gh_claims,
            // Fulcio's legacy profile: github.com + the token's job_workflow_ref.
            "URI:https://github.com/job/workflow/ref",
        ),
        (
            "k8s",
            "system:serviceaccount:foo:baz",
            json!({"kubernetes.io": {"namespace": "foo", "serviceaccount": {"name": "baz", "uid": "u"}}}),
            "URI:https://kubernetes.io/namespaces/foo/serviceaccounts/baz",
        ),
        (
            "uri",
            "http://127.0.0.1/users/alice",
            json!({}),
            "URI:http://127.0.0.1/users/alice",
        ),
        ("user", "robot", json!({}), "robot!127.0.0.1"),
        (
            "spiffe",
            "spiffe://example.org/ns/foo/sa/bar",
            json!({}),
            "URI:spiffe://example.org/ns/foo/sa/bar",
        ),
    ];
    for (tenant, sub, claims, san) in cases {
        let token = op.mint_at(&t(tenant), "sigstore", sub, claims).await;
        let r = py(
            &target,
            json!({"call": "create", "token": token, "key": "public", "challenge": sub}),
        );
        assert_eq!(r["ok"], true, "{tenant}: {r}");
        let text = common::openssl_text(r["chain"][0].as_str().unwrap());
        assert!(text.contains(san), "{tenant}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_over_grpc() {
    let op = Op::start();
    let dir = tempfile::tempdir().unwrap();
    let create = |token: String| json!({"call": "create", "token": token, "key": "public", "challenge": ALICE});
    // ResourceExhausted: the per-client rate limit.
    let b = Brevis::start(
        &email_config(&op),
        &[
            "--rate-limit-client",
            "1/h",
            "--rate-limit-client-burst",
            "1",
        ],
    );
    let target = api_target(&b);
    assert_eq!(py(&target, create(token(&op).await))["ok"], true);
    let r = py(&target, create(token(&op).await));
    assert_eq!(r["code"], "RESOURCE_EXHAUSTED", "{r}");
    drop(b);

    // PermissionDenied: an issuance policy.
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "policies:\n  - name: others\n    issuer: {}\n    allow:\n      email: ['*@other.example']\n",
            op.issuer
        ),
    )
    .unwrap();
    let b = Brevis::start(
        &email_config(&op),
        &["--issuance-policy", policy.to_str().unwrap()],
    );
    let r = py(&api_target(&b), create(token(&op).await));
    assert_eq!(r["code"], "PERMISSION_DENIED", "{r}");
    assert!(r["message"].as_str().unwrap().contains("\"others\""), "{r}");
    drop(b);

    // Internal: the only CT log refuses (nothing listens there).
    let b = Brevis::start(
        &email_config(&op),
        &[
            "--ct-log-url",
            "http://127.0.0.1:1",
            "--ct-log-timeout",
            "2s",
        ],
    );
    let r = py(&api_target(&b), create(token(&op).await));
    assert_eq!(r["code"], "INTERNAL", "{r}");
    assert_eq!(r["message"], "Error entering certificate in CTL", "{r}");
    drop(b);

    // Unavailable: too few of several logs answer (worth a retry).
    let b = Brevis::start(
        &email_config(&op),
        &[
            "--ct-log-url",
            "http://127.0.0.1:1",
            "--ct-log-embedded",
            "--ct-log-timeout",
            "2s",
        ],
    );
    let r = py(&api_target(&b), create(token(&op).await));
    assert_eq!(r["code"], "UNAVAILABLE", "{r}");
    drop(b);

    // DeadlineExceeded: a CT log that never answers, past the issuance deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let b = Brevis::start(
        &email_config(&op),
        &["--ct-log-url", &url, "--issuance-timeout", "1s"],
    );
    let r = py(&api_target(&b), create(token(&op).await));
    assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_shares_the_tls_api_port_by_alpn() {
    let op = Op::start();
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::server_cert(dir.path(), "api");
    let b = Brevis::start(
        &email_config(&op),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    assert!(b.url.starts_with("https://"), "{}", b.url);
    let port = b.url.rsplit(':').next().unwrap().to_string();
    // A gRPC client offers only h2: it reaches gRPC on the REST port.
    let r = py(
        &format!("localhost:{port}"),
        json!({"call": "create", "token": token(&op).await, "key": "public",
               "challenge": ALICE, "tls_ca": ca}),
    );
    assert_eq!(r["ok"], true, "{r}");
    // An HTTPS client offering http/1.1 reaches REST.
    let pem = std::fs::read(&ca).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let r = client
        .get(format!("https://127.0.0.1:{port}/api/v2/configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // One offering h2 and http/1.1 (as curl and browsers do) is answered in http/1.1 by
    // REST, not taken for gRPC.
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-alpn", "h2,http/1.1", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_deadlines_are_honoured() {
    let op = Op::start();
    // A CT log that never answers: only the client's deadline ends the call.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let b = Brevis::start(&email_config(&op), &["--ct-log-url", &url]);
    let r = py(
        &api_target(&b),
        json!({"call": "create", "token": token(&op).await, "key": "public",
               "challenge": ALICE, "timeout": 1}),
    );
    assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    // brevis ended the call at the client's grpc-timeout, long before its own 60 s: by its
    // own timer (DeadlineExceeded) or, when the client's reset arrives first, by dropping
    // it (Canceled, as gRPC servers count a call the client abandoned before the
    // server-side deadline).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let m = b.metrics().await;
        if ["DeadlineExceeded", "Canceled"].iter().any(|c| {
            m.contains(&format!(
                "grpc_server_handled_total{{grpc_code=\"{c}\",grpc_method=\"CreateSigningCertificate\""
            ))
        }) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_in_flight_at_shutdown_finishes() {
    let op = Op::start();
    let work = tempfile::tempdir().unwrap();
    common::succeed(
        std::process::Command::new(common::brevis_bin())
            .args(["ca", "create", "--out"])
            .arg(work.path().join("ca")),
    );
    let log_dir = work.path().join("log");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = common::CtLog::start(&log_dir, &work.path().join("ca/root.pem"), &[]);
    let slow = common::custody::slow_proxy(&log.url, std::time::Duration::from_millis(1500));
    let ca = work.path().join("ca");
    let mut b = Brevis::start(
        &email_config(&op),
        &[
            "--fileca-cert",
            ca.join("chain.pem").to_str().unwrap(),
            "--fileca-key",
            ca.join("intermediate-key.pem").to_str().unwrap(),
            "--ct-log-url",
            &slow,
            "--ct-log-public-key-path",
            log_dir.join("log/log-public-key.pem").to_str().unwrap(),
        ],
    );
    let target = api_target(&b);
    let spec = json!({"call": "create", "token": token(&op).await, "key": "public",
                      "challenge": ALICE});
    let call = tokio::task::spawn_blocking(move || py(&target, spec));
    // The call is waiting for the slow log; stop brevis now.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let pid = b.pid().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let r = call.await.unwrap();
    assert_eq!(r["ok"], true, "the call in flight finished: {r}");
    // And brevis exits by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while b.child().try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "brevis did not exit");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
