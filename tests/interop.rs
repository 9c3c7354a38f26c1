//! Real Sigstore clients against brevis, using trust material brevis produced:
//! sigstore-python (its Fulcio client over the CSR path, its verify_sct, chain verifier
//! and identity policies) and sigstore-js (FulcioSigner over the public-key path, its
//! Verifier for chain, SCT, signature and identity); `brevis cert request`/`verify`; and
//! each client's error path for a token brevis refuses.

mod common;

use common::clients::{js_client, python_client, sigstore_rs_client};
use common::{Brevis, Op, email_config};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

const ALICE: &str = "alice@example.com";

struct Deployment {
    op: Op,
    brevis: Brevis,
    dir: tempfile::TempDir,
}

impl Deployment {
    fn start() -> Deployment {
        let op = Op::start();
        let brevis = Brevis::start(&email_config(&op), &[]);
        let dir = tempfile::tempdir().unwrap();
        common::clients::trust_config(&brevis, &dir.path().join("trust"), None, &[]);
        Deployment { op, brevis, dir }
    }

    fn trust(&self, name: &str) -> PathBuf {
        self.dir.path().join("trust").join(name)
    }

    /// A token for alice, with `email_verified` as given, written to a file.
    async fn token_file(&self, name: &str, email_verified: bool) -> PathBuf {
        let claims = json!({"email": ALICE, "email_verified": email_verified});
        let t = self.op.mint("alice", claims).await;
        let p = self.dir.path().join(name);
        std::fs::write(&p, t).unwrap();
        p
    }

    /// Trust material whose CT log key is not brevis's.
    fn wrong_ct_key(&self, name: &str) -> PathBuf {
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(self.trust(name)).unwrap()).unwrap();
        let other =
            brevis::ca::LocalSigner::generate(brevis::ca::SigningAlgorithm::EcdsaP256Sha256)
                .unwrap();
        let spki = brevis::ca::Signer::public_key_spki(&other).to_vec();
        let root = if v.get("trustedRoot").is_some() {
            &mut v["trustedRoot"]
        } else {
            &mut v
        };
        use base64::Engine;
        root["ctlogs"][0]["publicKey"]["rawBytes"] =
            json!(base64::engine::general_purpose::STANDARD.encode(&spki));
        root["ctlogs"][0]["logId"]["keyId"] =
            json!(base64::engine::general_purpose::STANDARD.encode(brevis::ct::sha256(&spki)));
        let p = self.dir.path().join(format!("wrong-{name}"));
        std::fs::write(&p, v.to_string()).unwrap();
        p
    }
}

#[tokio::test]
async fn sigstore_python_gets_and_verifies_a_certificate() {
    let d = Deployment::start();
    let token = d.token_file("token", true).await;
    let r = python_client(
        &d.trust("client_trust_config.json"),
        &token,
        ALICE,
        &d.op.issuer,
    );
    assert_eq!(r["ok"], true, "{r}");
    // sigstore-python puts every CA certificate of the trusted root in its store as an
    // anchor, so the path it builds (minus the leaf) stops at the intermediate: the issuer
    // whose key hash its verify_sct needs for the precertificate entry.
    assert_eq!(
        r["chain_length"], 1,
        "path leaf -> intermediate from the trusted root"
    );
    // The certificate it got verifies with brevis's own verifier too.
    let cert = d.dir.path().join("py-cert.pem");
    std::fs::write(&cert, r["certificate"].as_str().unwrap()).unwrap();
    let out = common::succeed(
        Command::new(common::brevis_bin())
            .args(["cert", "verify", "--json"])
            .arg(&cert)
            .arg("--trust-root")
            .arg(d.trust("trusted_root.json")),
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["san"], json!([format!("email:{ALICE}")]));
    assert_eq!(v["issuer"], d.op.issuer);
    assert_eq!(v["scts"][0]["verified"], true);

    // Its SCT check is real: trust material with another CT key makes it refuse.
    let token = d.token_file("token2", true).await;
    let r = python_client(
        &d.wrong_ct_key("client_trust_config.json"),
        &token,
        ALICE,
        &d.op.issuer,
    );
    assert_eq!(
        (r["ok"].as_bool(), r["stage"].as_str()),
        (Some(false), Some("request certificate")),
        "{r}"
    );
    // A token brevis refuses: sigstore-python's Fulcio client error, no crash, no hang.
    let bad = d.token_file("bad", false).await;
    let r = python_client(
        &d.trust("client_trust_config.json"),
        &bad,
        ALICE,
        &d.op.issuer,
    );
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"], "FulcioClientError", "{r}");
}

#[tokio::test]
async fn sigstore_js_gets_and_verifies_a_certificate() {
    let d = Deployment::start();
    let token = d.token_file("token", true).await;
    let root = d.trust("trusted_root.json");
    let r = js_client(&d.brevis.url, &root, &token, ALICE, &d.op.issuer);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["san"], ALICE);
    // sigstore-js keeps the leaf PEM verbatim: it must be canonical for other verifiers.
    common::profile::assert_canonical_pem(r["certificate"].as_str().unwrap());

    // The SCT check is real.
    let token = d.token_file("token2", true).await;
    let r = js_client(
        &d.brevis.url,
        &d.wrong_ct_key("trusted_root.json"),
        &token,
        ALICE,
        &d.op.issuer,
    );
    assert_eq!(
        (r["ok"].as_bool(), r["stage"].as_str()),
        (Some(false), Some("verify chain and SCT")),
        "{r}"
    );
    // A refused token: the signer's error path.
    let claims = d.op.claims(json!({"sub": "alice", "email": ALICE, "email_verified": true, "exp": common::now_secs() - 60}));
    let expired = d.op.sign(json!({"claims": claims})).await;
    let bad = d.dir.path().join("expired");
    std::fs::write(&bad, expired).unwrap();
    let r = js_client(&d.brevis.url, &root, &bad, ALICE, &d.op.issuer);
    assert_eq!(r["ok"], false);
    assert_eq!(r["error"], "CA_CREATE_SIGNING_CERTIFICATE_ERROR", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("error creating signing certificate"),
        "{r}"
    );
}

#[tokio::test]
async fn brevis_cert_request_and_verify() {
    let d = Deployment::start();
    for method in ["public-key", "csr"] {
        let token = d.token_file(&format!("t-{method}"), true).await;
        let cert = d.dir.path().join(format!("{method}.pem"));
        let key = d.dir.path().join(format!("{method}-key.pem"));
        let out = Command::new(common::brevis_bin())
            .args([
                "cert",
                "request",
                "--url",
                &d.brevis.url,
                "--method",
                method,
            ])
            .arg("--token-file")
            .arg(&token)
            .arg("--trust-root")
            .arg(d.trust("trusted_root.json"))
            .arg("--out")
            .arg(&cert)
            .arg("--out-key")
            .arg(&key)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{method}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("identity:   email:{ALICE}")),
            "{stdout}"
        );
        assert!(stdout.contains("SCT:        verified by"), "{stdout}");
        assert!(key.exists() && cert.exists());
    }
    // An existing key can be reused.
    let token = d.token_file("t-key", true).await;
    let mut again = Command::new(common::brevis_bin());
    again
        .args(["cert", "request", "--url", &d.brevis.url])
        .arg("--token-file")
        .arg(&token)
        .arg("--key")
        .arg(d.dir.path().join("csr-key.pem"))
        .arg("--trust-root")
        .arg(d.trust("trusted_root.json"))
        .arg("--out")
        .arg(d.dir.path().join("again.pem"));
    common::succeed(&mut again);

    // cert verify: human output, JSON, and a refusal against the wrong trust material.
    let cert = d.dir.path().join("public-key.pem");
    let out = common::succeed(
        Command::new(common::brevis_bin())
            .args(["cert", "verify"])
            .arg(&cert)
            .arg("--trust-root")
            .arg(d.trust("client_trust_config.json")),
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("chain:      verified"), "{text}");
    assert!(text.contains("issuer (v1, .1)"), "{text}");
    let out = Command::new(common::brevis_bin())
        .args(["cert", "verify"])
        .arg(&cert)
        .arg("--trust-root")
        .arg(d.wrong_ct_key("trusted_root.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("chain:      verified"), "{text}");
    assert!(
        text.contains("SCT:        NOT VERIFIED by an unknown log"),
        "{text}"
    );
    // A refused request: the server's message, non-zero exit.
    let bad = d.token_file("t-bad", false).await;
    let out = Command::new(common::brevis_bin())
        .args(["cert", "request", "--url", &d.brevis.url])
        .arg("--token-file")
        .arg(&bad)
        .arg("--out")
        .arg(d.dir.path().join("x.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("There was an error processing the identity token")
    );
}

#[tokio::test]
async fn trust_material_shapes() {
    let d = Deployment::start();
    let ctc: Value = serde_json::from_str(
        &std::fs::read_to_string(d.trust("client_trust_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ctc["mediaType"],
        "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
    );
    let sc = &ctc["signingConfig"];
    assert_eq!(
        sc["mediaType"],
        "application/vnd.dev.sigstore.signingconfig.v0.2+json"
    );
    assert_eq!(sc["caUrls"][0]["url"], d.brevis.url);
    assert_eq!(sc["caUrls"][0]["majorApiVersion"], 1);
    assert_eq!(sc["rekorTlogUrls"][0]["url"], "http://127.0.0.1:1");
    let tr = &ctc["trustedRoot"];
    assert_eq!(
        tr["tlogs"][0]["publicKey"]["keyDetails"],
        "PKIX_ECDSA_P256_SHA_256"
    );
    // The CA chain includes the intermediate, as verifiers build paths only from it.
    assert_eq!(
        tr["certificateAuthorities"][0]["certChain"]["certificates"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let standalone: Value =
        serde_json::from_str(&std::fs::read_to_string(d.trust("trusted_root.json")).unwrap())
            .unwrap();
    assert_eq!(&standalone, tr);
}

/// The sigstore crate's binary, built by scripts/test.sh from tests/sigstore-rs.
#[tokio::test]
async fn sigstore_crate_gets_and_verifies_certificates_over_v1_and_v2() {
    let d = Deployment::start();
    let root = d.trust("trusted_root.json");
    let token = d.token_file("token", true).await;
    let r = sigstore_rs_client(&d.brevis.url, &root, &token, ALICE, &d.op.issuer);
    for api in ["v1", "v2"] {
        assert_eq!(r[api]["ok"], true, "{api}: {r}");
        assert_eq!(r[api]["chain_length"], 3, "{api}: leaf, intermediate, root");
    }
    // The v1 answer is Fulcio's PEM chain: blocks joined by "\n", trailing newline trimmed,
    // each block canonical.
    let v1 = r["v1"]["certificate"].as_str().unwrap();
    assert!(!v1.ends_with('\n'));
    for block in v1.split_inclusive("-----END CERTIFICATE-----") {
        common::profile::assert_canonical_pem(&format!("{}\n", block.trim_start_matches('\n')));
    }

    // Its SCT check is real: another CT log key makes its verifier refuse both.
    let r = sigstore_rs_client(
        &d.brevis.url,
        &d.wrong_ct_key("trusted_root.json"),
        &token,
        ALICE,
        &d.op.issuer,
    );
    for api in ["v1", "v2"] {
        assert_eq!(
            (r[api]["ok"].as_bool(), r[api]["stage"].as_str()),
            (Some(false), Some("verify")),
            "{api}: {r}"
        );
        assert!(
            r[api]["error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("sct"),
            "{api}: {r}"
        );
    }
    // So is its identity policy.
    let r = sigstore_rs_client(
        &d.brevis.url,
        &root,
        &token,
        "mallory@example.com",
        &d.op.issuer,
    );
    assert_eq!(
        (r["v2"]["ok"].as_bool(), r["v2"]["stage"].as_str()),
        (Some(false), Some("verify")),
        "{r}"
    );

    // A token brevis refuses: the crate's error path on both APIs, no panic, no hang.
    let bad = d.token_file("bad", false).await;
    let r = sigstore_rs_client(&d.brevis.url, &root, &bad, ALICE, &d.op.issuer);
    for api in ["v1", "v2"] {
        assert_eq!(
            (r[api]["ok"].as_bool(), r[api]["stage"].as_str()),
            (Some(false), Some("request certificate")),
            "{api}: {r}"
        );
    }
    assert!(
        r["v1"]["error"]
            .as_str()
            .unwrap()
            .contains("There was an error processing the identity token"),
        "{r}"
    );
}

/// sigstore-clients.md section 7 item 8: the CA certificates brevis generates are ones every
/// client's path builder accepts, and the trust bundle publishes the intermediate.
#[tokio::test]
async fn generated_ca_certificates_suit_client_path_builders() {
    let d = Deployment::start();
    let r = d.brevis.get("/api/v2/trustBundle").await;
    assert_eq!(r.status(), 200);
    let bundle: Value = r.json().await.unwrap();
    let chain: Vec<String> = bundle["chains"][0]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(chain.len(), 2, "intermediate and root: {bundle}");
    for (i, pem) in chain.iter().enumerate() {
        common::profile::assert_canonical_pem(pem);
        let c = common::run_python("inspect_cert.py", &[], pem);
        let what = if i == 0 { "intermediate" } else { "root" };
        assert_eq!(c["basic_constraints"]["ca"], true, "{what}: {c}");
        assert_eq!(c["basic_constraints"]["critical"], true, "{what}: {c}");
        assert_eq!(c["key_usage"]["key_cert_sign"], true, "{what}: {c}");
        assert!(c["ski_hex"].is_string(), "{what} has an SKI: {c}");
        if i == 0 {
            assert_eq!(
                c["eku"],
                json!(["1.3.6.1.5.5.7.3.3"]),
                "intermediate EKU codeSigning"
            );
        }
    }
    // The same chain is in the TrustedRoot clients load.
    let tr: Value =
        serde_json::from_str(&std::fs::read_to_string(d.trust("trusted_root.json")).unwrap())
            .unwrap();
    let der: Vec<Vec<u8>> = chain
        .iter()
        .map(|p| brevis::model::pem::parse_first(p).unwrap().der)
        .collect();
    use base64::Engine;
    let listed: Vec<Vec<u8>> = tr["certificateAuthorities"][0]["certChain"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            base64::engine::general_purpose::STANDARD
                .decode(c["rawBytes"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(listed, der);
}
