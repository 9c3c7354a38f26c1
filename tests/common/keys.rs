//! Client keys for tests: every algorithm Fulcio accepts, PoP signatures and CSRs.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use brevis::ca::{LocalSigner, Signer, SigningAlgorithm};
use brevis::model::pem;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    P256,
    P384,
    P521,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

pub const ALL: [Kind; 7] = [
    Kind::P256,
    Kind::P384,
    Kind::P521,
    Kind::Rsa2048,
    Kind::Rsa3072,
    Kind::Rsa4096,
    Kind::Ed25519,
];

pub struct ClientKey {
    pub kind: Kind,
    pub signer: LocalSigner,
}

impl ClientKey {
    pub fn generate(kind: Kind) -> ClientKey {
        let rsa = |size| {
            let kp = RsaKeyPair::generate(size).unwrap();
            LocalSigner::from_pkcs8(kp.as_der().unwrap().as_ref()).unwrap()
        };
        let signer = match kind {
            Kind::P256 => LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap(),
            Kind::P384 => LocalSigner::generate(SigningAlgorithm::EcdsaP384Sha384).unwrap(),
            Kind::P521 => LocalSigner::generate(SigningAlgorithm::EcdsaP521Sha512).unwrap(),
            Kind::Ed25519 => LocalSigner::generate(SigningAlgorithm::Ed25519).unwrap(),
            Kind::Rsa2048 => rsa(KeySize::Rsa2048),
            Kind::Rsa3072 => rsa(KeySize::Rsa3072),
            Kind::Rsa4096 => rsa(KeySize::Rsa4096),
        };
        ClientKey { kind, signer }
    }

    pub fn spki_der(&self) -> &[u8] {
        self.signer.public_key_spki()
    }

    pub fn public_pem(&self) -> String {
        pem::encode("PUBLIC KEY", self.spki_der())
    }

    /// Proof of possession over `challenge`, as the key's client would make it.
    pub fn prove(&self, challenge: &str) -> Vec<u8> {
        self.signer.sign(challenge.as_bytes()).unwrap()
    }

    /// A PEM CSR with an empty subject, self-signed.
    pub fn csr_pem(&self) -> String {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .serialize_request(&self.signer)
            .unwrap()
            .pem()
            .unwrap()
    }

    /// v2 body for the public-key path.
    pub fn v2_key_body(&self, token: &str, challenge: &str) -> Value {
        json!({
            "credentials": {"oidcIdentityToken": token},
            "publicKeyRequest": {
                "publicKey": {"algorithm": "ECDSA", "content": self.public_pem()},
                "proofOfPossession": STANDARD.encode(self.prove(challenge)),
            }
        })
    }

    /// v2 body for the CSR path.
    pub fn v2_csr_body(&self, token: &str) -> Value {
        json!({
            "credentials": {"oidcIdentityToken": token},
            "certificateSigningRequest": STANDARD.encode(self.csr_pem()),
        })
    }
}

pub fn b64(data: impl AsRef<[u8]>) -> String {
    STANDARD.encode(data)
}

/// A private key made by the openssl CLI (`genpkey <args>`), e.g. RSA-1024 that aws-lc-rs
/// refuses to generate. The key lives in the returned directory as `key.pem`.
pub fn openssl_key(args: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    super::succeed(
        std::process::Command::new("openssl")
            .arg("genpkey")
            .args(args)
            .arg("-out")
            .arg(dir.path().join("key.pem")),
    );
    dir
}

/// The public half of an [`openssl_key`] as PEM.
pub fn openssl_public_pem(dir: &tempfile::TempDir) -> String {
    let out = super::succeed(
        std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(dir.path().join("key.pem")),
    );
    String::from_utf8(out).unwrap()
}

/// Signs `message` with the openssl-made key in `dir` (SHA-256, PKCS#1 v1.5).
pub fn openssl_sign(dir: &tempfile::TempDir, message: &str) -> Vec<u8> {
    let msg = dir.path().join("msg");
    std::fs::write(&msg, message).unwrap();
    super::succeed(
        std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(dir.path().join("key.pem"))
            .arg(&msg),
    )
}

/// A CSR made by the openssl CLI with the key in `dir`.
pub fn openssl_csr(dir: &tempfile::TempDir, digest: &str) -> String {
    let out = super::succeed(
        std::process::Command::new("openssl")
            .args(["req", "-new", "-subj", "/", "-key"])
            .arg(dir.path().join("key.pem"))
            .arg(format!("-{digest}")),
    );
    String::from_utf8(out).unwrap()
}
