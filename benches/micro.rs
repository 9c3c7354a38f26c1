//! criterion micro-benchmarks of the pieces of one issuance:
//!
//!     cargo bench --bench micro
//!
//! token verification (parse + RS256 signature), certificate building and signing
//! (prepare the TBS, sign the precertificate, sign the final certificate with its SCT list
//! and check it against the precertificate), SCT signing, Merkle tile updates (appending a
//! batch of leaves to the tree state and producing the tiles to store), the request
//! JSON round trip (parse a v2 request, serialize the response), and signature
//! verification with the public key parsed on every call (as brevis verifies tokens and
//! SCTs) against parsed once (`aws_lc_rs::signature::ParsedPublicKey`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use brevis::api::json;
use brevis::ca::{CertificateAuthority, LocalSigner, Signer, SigningAlgorithm};
use brevis::ct::checkpoint::SignedTreeHead;
use brevis::ct::log::TreeState;
use brevis::model::extensions::{Extensions, Field};
use brevis::model::keys::PublicKey;
use brevis::model::principal::{Principal, SubjectAltName};
use brevis::model::sct::{self, DigitallySigned, Entry, Sct};
use brevis::oidc::keys::VerificationKey;
use brevis::oidc::token::UnverifiedToken;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use std::time::SystemTime;

fn token_verification(c: &mut Criterion) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = aws_lc_rs::signature::KeyPair::public_key(&key);
    let jwk = json!({"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero())});
    let vk = VerificationKey::from_jwk(&jwk).unwrap();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({"iss": "https://issuer.example.com", "aud": "sigstore", "sub": "alice",
               "email": "alice@example.com", "email_verified": true,
               "iat": 1_790_000_000u64, "exp": 1_790_000_600u64})
        .to_string(),
    );
    let input = format!("{header}.{claims}");
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
    c.bench_function("token verification (parse + RS256)", |b| {
        b.iter(|| {
            let t = UnverifiedToken::parse(black_box(&token)).unwrap();
            assert!(vk.verify(
                t.signing_input,
                t.signature_b64,
                jsonwebtoken::Algorithm::RS256
            ));
            black_box(t.claims.len())
        })
    });
}

/// The result of a future that is ready at once (signing with a key in memory).
fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("an in-memory key never waits"),
    }
}

fn certificate_building_and_signing(c: &mut Criterion) {
    let ca = CertificateAuthority::ephemeral(SystemTime::now()).unwrap();
    let client = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let key = PublicKey::from_spki_der(client.public_key_spki()).unwrap();
    let mut extensions = Extensions::default();
    extensions.set(Field::Issuer, "https://issuer.example.com");
    let principal = Principal {
        challenge: "alice@example.com".into(),
        san: SubjectAltName::email("alice@example.com").unwrap(),
        extensions,
    };
    let now = 1_790_000_000;
    let log = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let fake_sct = Sct {
        log_id: brevis::ct::sha256(log.public_key_spki()),
        timestamp: 1_790_000_000_000,
        extensions: sct::leaf_index_extension(7),
        signature: DigitallySigned {
            hash_algorithm: sct::HASH_SHA256,
            signature_algorithm: sct::SIG_ECDSA,
            signature: log.sign(b"x").unwrap(),
        },
    };
    let list = sct::sct_list(std::slice::from_ref(&fake_sct));
    c.bench_function("certificate: prepare TBS", |b| {
        b.iter(|| black_box(ca.prepare(&principal, &key, now).unwrap()))
    });
    c.bench_function(
        "certificate: prepare + precert + final (2 ECDSA P-256 signatures)",
        |b| {
            b.iter(|| {
                let leaf = ca.prepare(&principal, &key, now).unwrap();
                let pre = ready(ca.sign_precertificate(&leaf)).unwrap();
                black_box(ready(ca.sign_final(&leaf, &pre, &list)).unwrap())
            })
        },
    );
}

fn sct_signing(c: &mut Criterion) {
    let log = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let tbs = vec![0x5au8; 620];
    let ikh = [7u8; 32];
    let entry = Entry::Precert {
        issuer_key_hash: &ikh,
        tbs: &tbs,
    };
    let ext = sct::leaf_index_extension(123_456);
    c.bench_function("SCT signing (entry encoding + ECDSA P-256)", |b| {
        b.iter(|| {
            let input = sct::signature_input(black_box(1_790_000_000_000), &entry, &ext);
            black_box(log.sign(&input).unwrap())
        })
    });
}

fn merkle_tile_updates(c: &mut Criterion) {
    let sth = SignedTreeHead {
        tree_size: 0,
        timestamp: 0,
        root: brevis::ct::merkle::empty_root(),
        signature: DigitallySigned {
            hash_algorithm: sct::HASH_SHA256,
            signature_algorithm: sct::SIG_ECDSA,
            signature: Vec::new(),
        },
    };
    // A tree of a million leaves, then batches of 32 appended (a group-commit batch).
    let mut base = TreeState::empty(sth);
    let seed: Vec<[u8; 32]> = (0..1_000_000u32)
        .map(|i| brevis::ct::merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    base.append_leaves(&seed);
    let batch: Vec<[u8; 32]> = (0..32u32)
        .map(|i| brevis::ct::merkle::leaf_hash(&(2_000_000 + i).to_be_bytes()))
        .collect();
    let mut group = c.benchmark_group("merkle tiles");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.bench_function("append 32 leaves to a 1M-leaf tree + tiles to store", |b| {
        b.iter_batched(
            || base.clone(),
            |mut s| {
                let tiles = s.append_leaves(black_box(&batch));
                black_box((tiles, s.frontier.root()))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn json_round_trip(c: &mut Criterion) {
    let client = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let token = format!("{}.{}.{}", "a".repeat(60), "b".repeat(600), "c".repeat(342));
    let request = json!({
        "credentials": {"oidcIdentityToken": token},
        "publicKeyRequest": {
            "publicKey": {"algorithm": "ECDSA",
                "content": brevis::model::pem::encode("PUBLIC KEY", client.public_key_spki())},
            "proofOfPossession": STANDARD.encode(client.sign(b"alice@example.com").unwrap())
        }
    })
    .to_string();
    let ca = CertificateAuthority::ephemeral(SystemTime::now()).unwrap();
    let chain: Vec<String> = std::iter::repeat_n(ca.chain_pem()[0].clone(), 3).collect();
    c.bench_function("JSON: parse v2 request + serialize response", |b| {
        b.iter(|| {
            let parsed: json::CreateSigningCertificateRequest =
                serde_json::from_slice(black_box(request.as_bytes())).unwrap();
            black_box(&parsed);
            let body = json::SigningCertificate::Embedded {
                chain: json::CertificateChain {
                    certificates: chain.clone(),
                },
            };
            black_box(serde_json::to_vec(&body).unwrap())
        })
    });
}

/// What parsing the public key on every verification costs: RS256 (an OIDC issuer's key)
/// and ECDSA P-256 (the CT log's key), per call against parsed once.
fn verification_key_parsing(c: &mut Criterion) {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        self as sig, EcdsaKeyPair, KeyPair, ParsedPublicKey, RsaKeyPair, UnparsedPublicKey,
    };
    let rng = SystemRandom::new();
    let message = vec![0xa5u8; 700];
    let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let mut rsa_sig = vec![0u8; rsa.public_modulus_len()];
    rsa.sign(&sig::RSA_PKCS1_SHA256, &rng, &message, &mut rsa_sig)
        .unwrap();
    let rsa_public = rsa.public_key().as_ref().to_vec();
    let rsa_parsed = ParsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, &rsa_public).unwrap();
    c.bench_function("RS256 verify, key parsed per call", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, &rsa_public)
                .verify(black_box(&message), &rsa_sig)
                .unwrap()
        })
    });
    c.bench_function("RS256 verify, key parsed once", |b| {
        b.iter(|| {
            rsa_parsed
                .verify_sig(black_box(&message), &rsa_sig)
                .unwrap()
        })
    });
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let ec =
        EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let ec_sig = ec.sign(&rng, &message).unwrap();
    let ec_public = ec.public_key().as_ref().to_vec();
    let ec_parsed = ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, &ec_public).unwrap();
    c.bench_function("ECDSA P-256 verify, key parsed per call", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, &ec_public)
                .verify(black_box(&message), ec_sig.as_ref())
                .unwrap()
        })
    });
    c.bench_function("ECDSA P-256 verify, key parsed once", |b| {
        b.iter(|| {
            ec_parsed
                .verify_sig(black_box(&message), ec_sig.as_ref())
                .unwrap()
        })
    });
}

criterion_group!(
    benches,
    verification_key_parsing,
    token_verification,
    certificate_building_and_signing,
    sct_signing,
    merkle_tile_updates,
    json_round_trip
);
criterion_main!(benches);
