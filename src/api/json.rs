//! Request and response JSON, as grpc-gateway maps Fulcio's protobuf messages: lowerCamel
//! names out, lowerCamel or snake_case in, unknown fields ignored, unpopulated fields
//! emitted, `bytes` as base64.

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
pub struct CreateSigningCertificateRequest {
    #[serde(default)]
    pub credentials: Option<Credentials>,
    #[serde(default, alias = "public_key_request", rename = "publicKeyRequest")]
    pub public_key_request: Option<PublicKeyRequest>,
    #[serde(
        default,
        alias = "certificate_signing_request",
        rename = "certificateSigningRequest"
    )]
    pub certificate_signing_request: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Credentials {
    #[serde(default, alias = "oidc_identity_token", rename = "oidcIdentityToken")]
    pub oidc_identity_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PublicKeyRequest {
    #[serde(default, alias = "public_key", rename = "publicKey")]
    pub public_key: Option<PublicKey>,
    #[serde(default, alias = "proof_of_possession", rename = "proofOfPossession")]
    pub proof_of_possession: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PublicKey {
    /// Ignored, as in Fulcio: the algorithm comes from the key itself. May be a name or
    /// an enum number.
    #[serde(default)]
    pub algorithm: Option<serde_json::Value>,
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LegacyRequest {
    #[serde(default, rename = "publicKey")]
    pub public_key: Option<LegacyPublicKey>,
    #[serde(default, rename = "signedEmailAddress")]
    pub signed_email_address: Option<String>,
    #[serde(default, rename = "certificateSigningRequest")]
    pub certificate_signing_request: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LegacyPublicKey {
    #[serde(default)]
    pub algorithm: Option<serde_json::Value>,
    /// base64 of DER or PEM (the legacy field is `bytes`).
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CertificateChain {
    pub certificates: Vec<String>,
}

#[derive(Debug, Serialize)]
pub enum SigningCertificate {
    #[serde(rename = "signedCertificateEmbeddedSct")]
    Embedded { chain: CertificateChain },
    #[serde(rename = "signedCertificateDetachedSct")]
    Detached {
        chain: CertificateChain,
        #[serde(rename = "signedCertificateTimestamp")]
        signed_certificate_timestamp: String,
    },
}

#[derive(Debug, Serialize)]
pub struct TrustBundle {
    pub chains: Vec<CertificateChain>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfiguredIssuer {
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
pub struct Configuration {
    pub issuers: Vec<ConfiguredIssuer>,
}
