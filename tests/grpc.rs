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
use common::{Brevis, Op, email_config, line_after_in, run_python};
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
    let bundle = client
        .get_trust_bundle(GetTrustBundleRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bundle.chains.len(), 1);
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
    let r = py(&target, json!({"call": "bundle"}));
    assert_eq!(r["ok"], true);
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
