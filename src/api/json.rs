//! Request and response JSON, as grpc-gateway maps Fulcio's protobuf messages: lowerCamel
//! names out, lowerCamel or snake_case in, unknown fields ignored, unpopulated fields
//! emitted, `bytes` as base64.

use serde::{Deserialize, Serialize};

/// Body of `POST /api/v2/signingCert` (Fulcio's `CreateSigningCertificateRequest`).
#[derive(Debug, Default, Deserialize)]
pub struct CreateSigningCertificateRequest {
    /// `credentials`: the OIDC token; when absent or empty, the `Authorization: Bearer` header
    /// is used.
    #[serde(default)]
    pub credentials: Option<Credentials>,
    /// `publicKeyRequest`: the public key and its proof of possession; exclusive with
    /// `certificateSigningRequest`.
    #[serde(default, alias = "public_key_request", rename = "publicKeyRequest")]
    pub public_key_request: Option<PublicKeyRequest>,
    /// `certificateSigningRequest`: base64 of a PEM PKCS#10 CSR; exclusive with `publicKeyRequest`.
    #[serde(
        default,
        alias = "certificate_signing_request",
        rename = "certificateSigningRequest"
    )]
    pub certificate_signing_request: Option<String>,
}

/// Fulcio's `Credentials` message.
#[derive(Debug, Default, Deserialize)]
pub struct Credentials {
    /// `oidcIdentityToken`: the raw OIDC ID token (a compact JWS).
    #[serde(default, alias = "oidc_identity_token", rename = "oidcIdentityToken")]
    pub oidc_identity_token: Option<String>,
}

/// Fulcio's `PublicKeyRequest` message: a key plus proof that the caller holds its private half.
#[derive(Debug, Default, Deserialize)]
pub struct PublicKeyRequest {
    /// `publicKey`: the key to certify.
    #[serde(default, alias = "public_key", rename = "publicKey")]
    pub public_key: Option<PublicKey>,
    /// `proofOfPossession`: base64 of a signature by the key over the identity's challenge string
    /// (the token's `sub` or `email`).
    #[serde(default, alias = "proof_of_possession", rename = "proofOfPossession")]
    pub proof_of_possession: Option<String>,
}

/// Fulcio's `PublicKey` message.
#[derive(Debug, Default, Deserialize)]
pub struct PublicKey {
    /// Ignored, as in Fulcio: the algorithm comes from the key itself. May be a name or
    /// an enum number.
    #[serde(default)]
    pub algorithm: Option<serde_json::Value>,
    /// `content`: the public key as PEM text (not base64-wrapped).
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LegacyRequest {
    #[serde(default, rename = "publicKey")]
    pub public_key: Option<LegacyPublicKey>,
    #[serde(default, rename = "signedEmailAddress")]
    pub signed_email_address: Option<String>,
    #[serde(default, rename = "certificateSigningRequest")]
    pub certificate_signing_request: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LegacyPublicKey {
    /// base64 of DER or PEM (the legacy field is `bytes`).
    #[serde(default)]
    pub content: Option<String>,
}

/// Fulcio's `CertificateChain` message.
#[derive(Debug, Serialize)]
pub struct CertificateChain {
    /// `certificates`: PEM certificates, each issued by the next: the leaf (when there is one)
    /// or the issuing CA first, the root last.
    pub certificates: Vec<String>,
}

/// Body of a successful `POST /api/v2/signingCert` (Fulcio's `SigningCertificate` oneof).
#[derive(Debug, Serialize)]
pub enum SigningCertificate {
    /// `signedCertificateEmbeddedSct`: the leaf carries its SCT in the embedded-SCT extension.
    #[serde(rename = "signedCertificateEmbeddedSct")]
    Embedded {
        /// `chain`: the issued chain, leaf first.
        chain: CertificateChain,
    },
    /// `signedCertificateDetachedSct`: the leaf has no embedded SCT (CT logging is disabled).
    #[serde(rename = "signedCertificateDetachedSct")]
    Detached {
        /// `chain`: the issued chain, leaf first.
        chain: CertificateChain,
        /// `signedCertificateTimestamp`: base64 of a detached SCT; brevis always sends it empty.
        #[serde(rename = "signedCertificateTimestamp")]
        signed_certificate_timestamp: String,
    },
}

#[derive(Debug, Serialize)]
pub(crate) struct TrustBundle {
    pub chains: Vec<CertificateChain>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfiguredIssuer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wildcard_issuer_url: Option<String>,
    pub audience: String,
    pub challenge_claim: String,
    pub spiffe_trust_domain: String,
    pub issuer_type: String,
    pub subject_domain: String,
    pub skip_email_verification: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Configuration {
    pub issuers: Vec<ConfiguredIssuer>,
}
