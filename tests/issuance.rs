//! The core CA over HTTP: a real OIDC provider, brevis on 127.0.0.1:0, every key type on
//! both key paths, and every certificate decoded by independent parsers.

mod common;

use common::keys::{self, ClientKey, Kind};
use common::profile::{self, Expect, San};
use common::{Brevis, Op, email_config, now_secs};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";

fn email_claims() -> Value {
    json!({"email": ALICE, "email_verified": true})
}

fn certificates(resp: &Value) -> Vec<String> {
    let shape = resp
        .get("signedCertificateEmbeddedSct")
        .or_else(|| resp.get("signedCertificateDetachedSct"))
        .unwrap_or_else(|| panic!("no certificate in {resp}"));
    shape["chain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_key_type_on_both_paths_gets_a_fulcio_profile_certificate() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &["--ct-log-url", ""]);
    for kind in keys::ALL {
        let key = ClientKey::generate(kind);
        let expect = Expect {
            san: San::Email(ALICE),
            issuer: &op.issuer,
            subject: "alice",
            spki_der: key.spki_der(),
        };

        // Public key + proof of possession, token in the body.
        let token = op.mint("alice", email_claims()).await;
        let (status, resp) = brevis
            .post_json("/api/v2/signingCert", &key.v2_key_body(&token, ALICE))
            .await;
        assert_eq!(status, 200, "{kind:?}: {resp}");
        let detached = &resp["signedCertificateDetachedSct"];
        assert_eq!(
            detached["signedCertificateTimestamp"], "",
            "CT disabled: empty detached SCT"
        );
        let chain = certificates(&resp);
        assert_eq!(chain.len(), 3, "leaf, intermediate, root");
        profile::check_chain(&chain, &expect, now_secs());

        // CSR, token in the Authorization header.
        let token = op.mint("alice", email_claims()).await;
        let body = json!({"certificateSigningRequest": keys::b64(key.csr_pem())});
        let r = brevis
            .http
            .post(format!("{}/api/v2/signingCert", brevis.url))
            .bearer_auth(&token)
            .header("accept", "application/pem-certificate-chain")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{kind:?}");
        let resp: Value = r.json().await.unwrap();
        profile::check_chain(&certificates(&resp), &expect, now_secs());
    }
}

#[tokio::test]
async fn legacy_v1_api_trust_bundle_configuration_and_health() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &["--ct-log-url", ""]);
    let key = ClientKey::generate(Kind::P256);
    let token = op.mint("alice", email_claims()).await;
    let body = json!({
        "publicKey": {"algorithm": "ecdsa", "content": keys::b64(key.spki_der())},
        "signedEmailAddress": keys::b64(key.prove(ALICE)),
    });
    let r = brevis
        .http
        .post(format!("{}/api/v1/signingCert", brevis.url))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.headers()["content-type"],
        "application/pem-certificate-chain"
    );
    assert!(r.headers().get("sct").is_none());
    let text = r.text().await.unwrap();
    let blocks = brevis::model::pem::parse_all(&text).unwrap();
    assert_eq!(blocks.len(), 3);
    let chain: Vec<String> = blocks
        .iter()
        .map(|b| brevis::model::pem::certificate(&b.der))
        .collect();
    profile::check_chain(
        &chain,
        &Expect {
            san: San::Email(ALICE),
            issuer: &op.issuer,
            subject: "alice",
            spki_der: key.spki_der(),
        },
        now_secs(),
    );

    // The trust bundle is the chain without a leaf; rootCert joins it with blank lines.
    let bundle: Value = brevis
        .get("/api/v2/trustBundle")
        .await
        .json()
        .await
        .unwrap();
    let certs = bundle["chains"][0]["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0], chain[1]);
    assert_eq!(certs[1], chain[2]);
    let root = brevis.get("/api/v1/rootCert").await;
    assert_eq!(root.status(), 200);
    assert_eq!(
        root.headers()["content-type"],
        "application/pem-certificate-chain"
    );
    let root_text = root.text().await.unwrap();
    assert_eq!(root_text, format!("{}\n{}", chain[1], chain[2]).trim());

    let config: Value = brevis
        .get("/api/v2/configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        config,
        json!({"issuers": [{
            "issuerUrl": op.issuer, "audience": "sigstore", "challengeClaim": "email",
            "spiffeTrustDomain": "", "issuerType": "email", "subjectDomain": "",
            "skipEmailVerification": false
        }]})
    );
    let health = brevis.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "SERVING"})
    );
}

#[tokio::test]
async fn snake_case_fields_unknown_fields_and_body_token_precedence() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &["--ct-log-url", ""]);
    let key = ClientKey::generate(Kind::P256);
    let token = op.mint("alice", email_claims()).await;
    let body = json!({
        "credentials": {"oidc_identity_token": token},
        "public_key_request": {
            "public_key": {"algorithm": 2, "content": key.public_pem()},
            "proof_of_possession": keys::b64(key.prove(ALICE)).trim_end_matches('='),
        },
        "someFutureField": {"ignored": true}
    });
    let r = brevis
        .http
        .post(format!("{}/api/v2/signingCert", brevis.url))
        .bearer_auth("not-a-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "body token wins over the header");
    assert!(r.headers().contains_key("x-request-id"));
}

/// Asserts an error response: status, gRPC code and exact message.
async fn refused(brevis: &Brevis, body: &Value, status: u16, message: &str) {
    let (s, resp) = brevis.post_json("/api/v2/signingCert", body).await;
    assert_eq!(s, status, "{resp}");
    assert_eq!(resp["message"], message, "{resp}");
    assert_eq!(resp["code"], if status >= 500 { 13 } else { 3 }, "{resp}");
    assert_eq!(resp["details"], json!([]));
}

const TOKEN_MSG: &str = "There was an error processing the identity token";

#[tokio::test]
async fn bad_tokens_are_refused_with_fulcios_message() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &["--ct-log-url", ""]);
    let key = ClientKey::generate(Kind::P256);
    let good = |token: &str| key.v2_key_body(token, ALICE);
    let now = now_secs();
    let base = op.claims(json!({"sub": "alice", "email": ALICE, "email_verified": true}));
    let with = |patch: Value| {
        let mut c = base.clone();
        c.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        c
    };

    // Sanity: a token signed the same way but valid is accepted.
    let ok = op.sign(json!({"claims": base})).await;
    let (s, r) = brevis.post_json("/api/v2/signingCert", &good(&ok)).await;
    assert_eq!(s, 200, "{r}");

    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            op.sign(json!({"claims": with(json!({"exp": now - 10}))}))
                .await,
        ),
        (
            "missing exp",
            op.sign(json!({"claims": with(json!({"exp": null}))})).await,
        ),
        (
            "nbf in the future",
            op.sign(json!({"claims": with(json!({"nbf": now + 3600}))}))
                .await,
        ),
        (
            "iat in the future",
            op.sign(json!({"claims": with(json!({"iat": now + 3600}))}))
                .await,
        ),
        (
            "wrong audience (real flow)",
            op.mint_for("other-audience", "alice", email_claims()).await,
        ),
        (
            "audience array without us",
            op.sign(json!({"claims": with(json!({"aud": ["a", "b"]}))}))
                .await,
        ),
        (
            "unknown issuer",
            op.sign(json!({"claims": with(json!({"iss": "http://127.0.0.1:1/elsewhere"}))}))
                .await,
        ),
        (
            "issuer only matching as a prefix",
            op.sign(json!({"claims": with(json!({"iss": format!("{}/x", op.issuer)}))}))
                .await,
        ),
        (
            "alg none",
            op.sign(json!({"claims": base, "unsigned": true})).await,
        ),
        (
            "HS256 keyed with the RSA public key",
            op.sign(json!({"claims": base, "hmac": op.public_key_pem().await}))
                .await,
        ),
        (
            "unknown kid",
            op.sign(json!({"claims": base, "header": {"kid": "no-such-key"}}))
                .await,
        ),
        (
            "email_verified false",
            op.sign(json!({"claims": with(json!({"email_verified": false}))}))
                .await,
        ),
        (
            "email_verified missing",
            op.sign(json!({"claims": with(json!({"email_verified": null}))}))
                .await,
        ),
        (
            "email_verified a number",
            op.sign(json!({"claims": with(json!({"email_verified": 1}))}))
                .await,
        ),
        (
            "email not an address",
            op.sign(json!({"claims": with(json!({"email": "alice"}))}))
                .await,
        ),
        (
            "crit header",
            op.sign(json!({"claims": base, "header": {"crit": ["exp"]}}))
                .await,
        ),
        ("empty token", String::new()),
        ("garbage", "not.a.jwt".to_string()),
        (
            "oversized token",
            format!("{}.{}.{}", "a".repeat(40_000), "b".repeat(40_000), "c"),
        ),
    ];
    for (name, token) in cases {
        let (s, resp) = brevis.post_json("/api/v2/signingCert", &good(&token)).await;
        assert_eq!(
            (s, resp["message"].as_str()),
            (400, Some(TOKEN_MSG)),
            "{name}: {resp}"
        );
    }

    // Bad signature: flip a byte of a real token's signature.
    let real = op.mint("alice", email_claims()).await;
    let (head, sig) = real.rsplit_once('.').unwrap();
    let mut sig = sig.to_string();
    let c = if sig.starts_with('A') { "B" } else { "A" };
    sig.replace_range(0..1, c);
    refused(&brevis, &good(&format!("{head}.{sig}")), 400, TOKEN_MSG).await;

    // A string "true" email_verified is accepted, as Fulcio's stringAsBool does.
    let t = op
        .sign(json!({"claims": with(json!({"email_verified": "true"}))}))
        .await;
    let (s, r) = brevis.post_json("/api/v2/signingCert", &good(&t)).await;
    assert_eq!(s, 200, "{r}");

    // Each refusal is counted by reason.
    let m = brevis.metrics().await;
    for reason in [
        "token_expired",
        "token_audience",
        "unknown_issuer",
        "token_algorithm",
        "token_unknown_key",
        "identity_claims",
        "token_signature",
    ] {
        assert!(
            m.contains(&format!("brevis_rejections_total{{reason=\"{reason}\"}}")),
            "{reason} not counted"
        );
    }
}

#[tokio::test]
async fn bad_keys_proofs_and_requests_are_refused() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &["--ct-log-url", ""]);
    let key = ClientKey::generate(Kind::P256);
    let token = op.mint("alice", email_claims()).await;

    // Proof over the wrong challenge.
    let mut body = key.v2_key_body(&token, "mallory@example.com");
    refused(
        &brevis,
        &body,
        400,
        "The signature supplied in the request could not be verified",
    )
    .await;
    // Garbage PEM.
    body["publicKeyRequest"]["publicKey"]["content"] =
        json!("-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n");
    refused(
        &brevis,
        &body,
        400,
        "The public key supplied in the request could not be parsed",
    )
    .await;
    body["publicKeyRequest"]["publicKey"]["content"] = json!("garbage");
    refused(
        &brevis,
        &body,
        400,
        "The public key supplied in the request could not be parsed",
    )
    .await;
    // No key at all.
    refused(
        &brevis,
        &json!({"credentials": {"oidcIdentityToken": token}}),
        400,
        "The public key supplied in the request could not be parsed",
    )
    .await;

    // RSA-1024, on both paths.
    let rsa_dir = keys::openssl_key(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]);
    let rsa_pem = keys::openssl_public_pem(&rsa_dir);
    let body = json!({
        "credentials": {"oidcIdentityToken": token},
        "publicKeyRequest": {"publicKey": {"content": rsa_pem}, "proofOfPossession": keys::b64(keys::openssl_sign(&rsa_dir, ALICE))}
    });
    refused(
        &brevis,
        &body,
        400,
        "The public key supplied in the request is insecure",
    )
    .await;
    let csr = keys::openssl_csr(&rsa_dir, "sha256");
    let body = json!({"credentials": {"oidcIdentityToken": token}, "certificateSigningRequest": keys::b64(csr)});
    refused(
        &brevis,
        &body,
        400,
        "The public key supplied in the request is insecure",
    )
    .await;

    // A CSR whose signature does not verify.
    let csr = key.csr_pem();
    let mut der = brevis::model::pem::parse_first(&csr).unwrap().der;
    let n = der.len();
    der[n - 5] ^= 0x01;
    let tampered = brevis::model::pem::encode("CERTIFICATE REQUEST", &der);
    let body = json!({"credentials": {"oidcIdentityToken": token}, "certificateSigningRequest": keys::b64(tampered)});
    refused(
        &brevis,
        &body,
        400,
        "The signature supplied in the request could not be verified",
    )
    .await;
    // A CSR field that is not a CSR.
    let body = json!({"credentials": {"oidcIdentityToken": token}, "certificateSigningRequest": keys::b64(key.public_pem())});
    refused(
        &brevis,
        &body,
        400,
        "The certificate signing request could not be parsed",
    )
    .await;
    // A P-384 key signing its CSR with SHA-256 is outside the default allow-list.
    let dir = keys::openssl_key(&["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]);
    let csr = keys::openssl_csr(&dir, "sha256");
    let body = json!({"credentials": {"oidcIdentityToken": token}, "certificateSigningRequest": keys::b64(csr)});
    refused(
        &brevis,
        &body,
        400,
        "signing algorithm not permitted: *ecdsa.PublicKey, SHA-256",
    )
    .await;

    // Both oneof members, malformed JSON, oversized body.
    let mut both = key.v2_key_body(&token, ALICE);
    both["certificateSigningRequest"] = json!(keys::b64(key.csr_pem()));
    let (s, r) = brevis.post_json("/api/v2/signingCert", &both).await;
    assert_eq!((s, r["code"].as_u64()), (400, Some(3)), "{r}");
    assert!(r["message"].as_str().unwrap().contains("oneof"), "{r}");
    let r = brevis
        .http
        .post(format!("{}/api/v2/signingCert", brevis.url))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid request body"),
        "{v}"
    );
    let big = vec![b' '; brevis::api::MAX_BODY_BYTES + 1];
    let r = brevis
        .http
        .post(format!("{}/api/v2/signingCert", brevis.url))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("exceeds"), "{v}");
    // A body exactly at the limit is read (and then refused only for being blank JSON).
    let at = vec![b' '; brevis::api::MAX_BODY_BYTES];
    let r = brevis
        .http
        .post(format!("{}/api/v2/signingCert", brevis.url))
        .body(at)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid request body"),
        "{v}"
    );

    // Routing errors.
    let r = brevis.get("/api/v2/nope").await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"code": 5, "message": "Not Found", "details": []})
    );
    let r = brevis.get("/api/v2/signingCert").await;
    assert_eq!(r.status(), 501);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 12);
}

#[tokio::test]
async fn jwks_rotation_refreshes_once_and_unknown_kids_cannot_storm_the_issuer() {
    let op = Op::start();
    let brevis = Brevis::start(
        &email_config(&op),
        &["--ct-log-url", "", "--oidc-jwks-refresh-interval", "1s"],
    );
    let key = ClientKey::generate(Kind::P256);
    let t = op.mint("alice", email_claims()).await;
    assert_eq!(
        brevis
            .post_json("/api/v2/signingCert", &key.v2_key_body(&t, ALICE))
            .await
            .0,
        200
    );

    // The provider rotates; a token with the new kid is accepted after one refetch.
    op.rotate(false).await;
    std::thread::sleep(std::time::Duration::from_millis(1100)); // past the refresh interval
    let before = op.jwks_fetches().await;
    let t = op.mint("alice", email_claims()).await;
    let (s, r) = brevis
        .post_json("/api/v2/signingCert", &key.v2_key_body(&t, ALICE))
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(op.jwks_fetches().await, before + 1);

    // A token without kid is tried against the keys of its algorithm.
    let claims = op.claims(json!({"sub": "alice", "email": ALICE, "email_verified": true}));
    let no_kid = op
        .sign(json!({"claims": claims, "header": {"kid": null}}))
        .await;
    assert_eq!(
        brevis
            .post_json("/api/v2/signingCert", &key.v2_key_body(&no_kid, ALICE))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_at_most_one_jwks_fetch() {
    let op = Op::start();
    let brevis = Brevis::start(&email_config(&op), &["--ct-log-url", ""]);
    let key = ClientKey::generate(Kind::P256);
    let t = op.mint("alice", email_claims()).await;
    assert_eq!(
        brevis
            .post_json("/api/v2/signingCert", &key.v2_key_body(&t, ALICE))
            .await
            .0,
        200
    );
    let before = op.jwks_fetches().await;
    let claims = op.claims(json!({"sub": "alice", "email": ALICE, "email_verified": true}));
    for i in 0..25 {
        let t = op
            .sign(json!({"claims": claims, "header": {"kid": format!("random-{i}")}}))
            .await;
        refused(&brevis, &key.v2_key_body(&t, ALICE), 400, TOKEN_MSG).await;
    }
    // The default interval is 30 s; this loop takes far less, so at most one refetch.
    assert!(op.jwks_fetches().await <= before + 1);
}

#[tokio::test]
async fn ephemeral_ca_issues_directly_from_its_root() {
    let op = Op::start();
    let brevis = Brevis::start(
        &email_config(&op),
        &["--ct-log-url", "", "--ca", "ephemeralca"],
    );
    let key = ClientKey::generate(Kind::Ed25519);
    let t = op.mint("alice", email_claims()).await;
    let (s, r) = brevis
        .post_json("/api/v2/signingCert", &key.v2_key_body(&t, ALICE))
        .await;
    assert_eq!(s, 200, "{r}");
    let chain = certificates(&r);
    assert_eq!(chain.len(), 2, "leaf and root");
    profile::check_chain(
        &chain,
        &Expect {
            san: San::Email(ALICE),
            issuer: &op.issuer,
            subject: "alice",
            spki_der: key.spki_der(),
        },
        now_secs(),
    );
    let root = common::run_python("inspect_cert.py", &[], &chain[1]);
    assert_eq!(
        root["basic_constraints"],
        json!({"ca": true, "critical": true})
    );
}
