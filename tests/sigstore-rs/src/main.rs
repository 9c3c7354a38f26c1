//! Drives the sigstore crate's own code against a brevis deployment.
//!
//! For each Fulcio API version the crate speaks:
//! - v1: `FulcioClient::request_cert` (public key + signed challenge, token as Bearer) and
//!   the chain it returns as PEM;
//! - v2: `FulcioClient::request_cert_v2` with a CSR built by x509-cert, as the crate's own
//!   `SigningSession` builds it;
//!
//! then signs an artifact with the certified key and hands the result to the crate's
//! `bundle::verify::Verifier`, loaded with the CA certificates and CT log key from the
//! TrustedRoot brevis wrote. That verifier checks the chain (webpki), the embedded SCT
//! against the CT log key, the identity policy (SAN and the `.1` issuer extension), the
//! signature, and that the signing time lies inside the certificate's validity.
//!
//! The verifier only accepts a bundle with a Rekor entry, and brevis is not Rekor. The
//! entry given to it is the hashedrekord body of this signature with the current time as
//! its integrated time; sigstore 0.15 checks that body against the bundle and the time
//! against the certificate, and (by its own TODOs) does not verify the entry's signed
//! timestamp, so nothing brevis must prove is skipped.
//!
//! usage: sigstore-rs-interop FULCIO_URL TRUSTED_ROOT TOKEN_FILE EXPECTED_SAN EXPECTED_ISSUER
//! prints one JSON line: {"v1": RESULT, "v2": RESULT}, RESULT = {"ok": true, ...} or
//! {"ok": false, "stage": ..., "error": ...}.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use openidconnect::core::CoreIdToken;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::elliptic_curve::Generate;
use serde_json::{json, Value};
use sha2::Digest;
use sigstore::bundle::verify::{policy, Verifier};
use sigstore::bundle::Bundle;
use sigstore::crypto::SigningScheme;
use sigstore::fulcio::{FulcioClient, TokenProvider};
use sigstore::oauth::IdentityToken;
use sigstore::rekor::apis::configuration::Configuration as RekorConfiguration;
use sigstore::rekor::models::hashedrekord;
use sigstore::trust::ManualTrustRoot;
use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{
    bundle, verification_material, VerificationMaterial,
};
use sigstore_protobuf_specs::dev::sigstore::common::v1::{
    HashAlgorithm, HashOutput, LogId, MessageSignature, X509Certificate, X509CertificateChain,
};
use sigstore_protobuf_specs::dev::sigstore::rekor::v1::{
    InclusionPromise, KindVersion, TransparencyLogEntry,
};
use std::collections::BTreeMap;
use x509_cert::der::{Decode, Encode, EncodePem};

const ARTIFACT: &[u8] = b"signed by the sigstore crate against brevis";

type Failure = (&'static str, String);

fn fail<E: std::fmt::Display>(stage: &'static str) -> impl FnOnce(E) -> Failure {
    move |e| (stage, e.to_string())
}

struct Args {
    url: url::Url,
    trust: ManualTrustRoot<'static>,
    token: String,
    san: String,
    issuer: String,
}

/// Reads the CA certificates and CT log keys from a TrustedRoot JSON file.
fn trust_root(path: &str) -> Result<ManualTrustRoot<'static>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let b64 = |v: &Value| {
        B64.decode(v.as_str().unwrap_or_default())
            .map_err(|e| e.to_string())
    };
    let mut root = ManualTrustRoot::default();
    for ca in v["certificateAuthorities"].as_array().into_iter().flatten() {
        for cert in ca["certChain"]["certificates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            root.fulcio_certs
                .push(rustls_pki_types::CertificateDer::from(b64(
                    &cert["rawBytes"]
                )?));
        }
    }
    for log in v["ctlogs"].as_array().into_iter().flatten() {
        let id = log["logId"]["keyId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        root.ctfe_keys
            .insert(id, b64(&log["publicKey"]["rawBytes"])?);
    }
    root.rekor_keys = BTreeMap::new();
    Ok(root)
}

/// A bundle with the leaf certificate, the artifact's digest and signature, and the
/// hashedrekord entry describing exactly that signature (see the module comment).
fn bundle(leaf_der: &[u8], digest: &[u8], signature: &[u8]) -> Result<Bundle, Failure> {
    let leaf = x509_cert::Certificate::from_der(leaf_der).map_err(fail("parse certificate"))?;
    let pem = leaf
        .to_pem(x509_cert::der::pem::LineEnding::LF)
        .map_err(fail("parse certificate"))?;
    let body = hashedrekord::Spec::new(
        hashedrekord::Signature::new(
            B64.encode(signature),
            hashedrekord::PublicKey::new(B64.encode(pem)),
        ),
        hashedrekord::Data::new(hashedrekord::Hash::new(
            hashedrekord::AlgorithmKind::sha256,
            hex::encode(digest),
        )),
    );
    let body =
        sigstore::rekor::models::Hashedrekord::new("hashedrekord".into(), "0.0.1".into(), body);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let entry = TransparencyLogEntry {
        log_index: 0,
        log_id: Some(LogId {
            key_id: vec![0; 32],
        }),
        kind_version: Some(KindVersion {
            kind: "hashedrekord".into(),
            version: "0.0.1".into(),
        }),
        integrated_time: now,
        inclusion_promise: Some(InclusionPromise {
            signed_entry_timestamp: vec![0],
        }),
        inclusion_proof: None,
        canonicalized_body: serde_json::to_vec(&body).map_err(fail("build bundle"))?,
    };
    Ok(Bundle {
        media_type: "application/vnd.dev.sigstore.bundle+json;version=0.1".into(),
        verification_material: Some(VerificationMaterial {
            timestamp_verification_data: None,
            tlog_entries: vec![entry],
            content: Some(verification_material::Content::X509CertificateChain(
                X509CertificateChain {
                    certificates: vec![X509Certificate {
                        raw_bytes: leaf_der.to_vec(),
                    }],
                },
            )),
        }),
        content: Some(bundle::Content::MessageSignature(MessageSignature {
            message_digest: Some(HashOutput {
                algorithm: HashAlgorithm::Sha2256.into(),
                digest: digest.to_vec(),
            }),
            signature: signature.to_vec(),
        })),
    })
}

async fn verify(
    args: &Args,
    trust: ManualTrustRoot<'static>,
    bundle: Bundle,
) -> Result<(), Failure> {
    let verifier =
        Verifier::new(RekorConfiguration::default(), trust).map_err(fail("load trusted root"))?;
    let policy = policy::Identity::new(&args.san, &args.issuer);
    verifier
        .verify(ARTIFACT, bundle, &policy, true)
        .await
        .map_err(fail("verify"))
}

fn clone_trust(t: &ManualTrustRoot<'static>) -> ManualTrustRoot<'static> {
    ManualTrustRoot {
        fulcio_certs: t.fulcio_certs.clone(),
        rekor_keys: t.rekor_keys.clone(),
        ctfe_keys: t.ctfe_keys.clone(),
    }
}

/// v1: the crate generates the key, signs the challenge and posts to /api/v1/signingCert.
async fn v1(args: &Args) -> Result<Value, Failure> {
    let token: CoreIdToken = args.token.parse().map_err(fail("parse token"))?;
    let client = FulcioClient::new(
        args.url.clone(),
        TokenProvider::Static((token, args.san.clone())),
    );
    let (signer, chain) = client
        .request_cert(SigningScheme::ECDSA_P256_SHA256_ASN1)
        .await
        .map_err(fail("request certificate"))?;
    let chain = chain.to_string();
    let certs = x509_cert::Certificate::load_pem_chain(chain.as_bytes()).map_err(|e| {
        (
            "request certificate",
            format!("{e}: {}", chain.chars().take(300).collect::<String>()),
        )
    })?;
    let leaf = certs
        .first()
        .ok_or(("request certificate", "empty chain".to_owned()))?;
    let leaf_der = leaf.to_der().map_err(fail("parse certificate"))?;
    let signature = signer.sign(ARTIFACT).map_err(fail("sign"))?;
    let digest = sha2::Sha256::digest(ARTIFACT);
    verify(
        args,
        clone_trust(&args.trust),
        bundle(&leaf_der, &digest, &signature)?,
    )
    .await?;
    Ok(json!({"ok": true, "chain_length": certs.len(), "certificate": chain}))
}

/// The CSR the crate's own `SigningSession` sends: subject emailAddress as a UTF8String,
/// a BasicConstraints extension, ECDSA P-256 over SHA-256.
fn csr(
    key: &p256::ecdsa::SigningKey,
    email: &str,
) -> Result<x509_cert::request::CertReq, Box<dyn std::error::Error>> {
    use x509_cert::attr::{AttributeTypeAndValue, AttributeValue};
    use x509_cert::der::Tag;
    let mut rdns = x509_cert::name::RdnSequence::default();
    rdns.push(
        vec![AttributeTypeAndValue {
            oid: x509_cert::der::oid::db::rfc3280::EMAIL_ADDRESS,
            value: AttributeValue::new(Tag::Utf8String, email.as_bytes())?,
        }]
        .try_into()?,
    );
    let subject = x509_cert::name::Name::from_der(&rdns.to_der()?)?;
    let mut builder = x509_cert::builder::RequestBuilder::new(subject)?;
    builder.add_extension(&x509_cert::ext::pkix::BasicConstraints {
        ca: false,
        path_len_constraint: None,
    })?;
    Ok(x509_cert::builder::Builder::build::<
        _,
        p256::ecdsa::DerSignature,
    >(builder, key)?)
}

/// v2: that CSR to /api/v2/signingCert.
async fn v2(args: &Args) -> Result<Value, Failure> {
    let token = IdentityToken::try_from(args.token.as_str()).map_err(fail("parse token"))?;
    let key = p256::ecdsa::SigningKey::generate();
    let csr = csr(&key, &token.unverified_claims().email).map_err(fail("build CSR"))?;
    let client = FulcioClient::new(
        args.url.clone(),
        TokenProvider::Static((
            args.token.parse().map_err(fail("parse token"))?,
            String::new(),
        )),
    );
    let response = client
        .request_cert_v2(csr, &token)
        .await
        .map_err(fail("request certificate"))?;
    if response.detached_sct.is_some() {
        return Err((
            "request certificate",
            "detached SCT: the certificate has none embedded".into(),
        ));
    }
    let digest = sha2::Sha256::digest(ARTIFACT);
    let signature: p256::ecdsa::Signature = key.sign_prehash(&digest).map_err(fail("sign"))?;
    let signature = signature.to_der();
    verify(
        args,
        clone_trust(&args.trust),
        bundle(&response.cert_der, &digest, signature.as_bytes())?,
    )
    .await?;
    Ok(json!({"ok": true, "chain_length": response.chain.len() + 1}))
}

fn report(r: Result<Value, Failure>) -> Value {
    r.unwrap_or_else(|(stage, error)| json!({"ok": false, "stage": stage, "error": error}))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let [url, trust, token, san, issuer] = argv.as_slice() else {
        eprintln!("usage: sigstore-rs-interop FULCIO_URL TRUSTED_ROOT TOKEN_FILE EXPECTED_SAN EXPECTED_ISSUER");
        std::process::exit(2);
    };
    let setup = (|| -> Result<Args, String> {
        Ok(Args {
            url: url::Url::parse(url).map_err(|e| e.to_string())?,
            trust: trust_root(trust)?,
            token: std::fs::read_to_string(token)
                .map_err(|e| format!("{token}: {e}"))?
                .trim()
                .to_owned(),
            san: san.clone(),
            issuer: issuer.clone(),
        })
    })();
    let args = match setup {
        Ok(a) => a,
        Err(e) => {
            println!("{}", json!({"ok": false, "stage": "setup", "error": e}));
            return;
        }
    };
    let v1 = report(v1(&args).await);
    let v2 = report(v2(&args).await);
    println!("{}", json!({"v1": v1, "v2": v2}));
}
