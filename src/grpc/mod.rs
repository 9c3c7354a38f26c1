//! Fulcio's gRPC API (`dev.sigstore.fulcio.v2.CA`, `proto/fulcio.proto`), the standard
//! health service and server reflection, served over HTTP/2 on a listener of their own
//! (`--grpc-port`, plaintext or TLS). Every request goes through the same path as REST
//! (`api::issue_for_client`): per-client rate limit, issuance deadline, the authority,
//! the error map, metrics and the audit record; only the framing differs.

mod serve;

pub use serve::{GrpcListener, GrpcOptions};
pub(crate) use serve::{HandedOver, Handoff, offers_only_h2, opens_with_h2_preface};

/// The code generated from `proto/fulcio.proto` (messages, server and client).
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/dev.sigstore.fulcio.v2.rs"));

    /// The encoded descriptor of `fulcio.proto`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/fulcio_descriptor.bin"));
}

use crate::api::{self, AppState, error::ApiError};
use crate::authority::{KeyProof, SigningRequest};
use crate::metrics;
use proto::ca_server::Ca;
use proto::create_signing_certificate_request::Key;
use proto::{
    CertificateChain, Configuration, CreateSigningCertificateRequest, GetConfigurationRequest,
    GetTrustBundleRequest, OidcIssuer, SigningCertificate, SigningCertificateDetachedSct,
    SigningCertificateEmbeddedSct, TrustBundle,
};
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The service name clients call (`/dev.sigstore.fulcio.v2.CA/...`).
pub const SERVICE: &str = "dev.sigstore.fulcio.v2.CA";

/// The metadata key a token may travel in when the request's field is empty (Fulcio's).
const TOKEN_METADATA: &str = "oidcidentitytoken";

/// The TCP peer of a gRPC connection, put into every request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

/// The `CA` service over the state the REST handlers use.
pub(crate) struct CaService {
    state: Arc<AppState>,
}

impl CaService {
    pub(crate) fn new(state: Arc<AppState>) -> CaService {
        CaService { state }
    }
}

/// An API error as a gRPC status: the same code and message the REST body carries.
fn status(e: ApiError) -> Status {
    Status::new(tonic::Code::from_i32(e.code as i32), e.message)
}

#[tonic::async_trait]
impl Ca for CaService {
    async fn create_signing_certificate(
        &self,
        request: Request<CreateSigningCertificateRequest>,
    ) -> Result<Response<SigningCertificate>, Status> {
        let peer = request.extensions().get::<Peer>().map(|p| p.0);
        let header = self
            .state
            .limits
            .client_ip_header
            .as_ref()
            .and_then(|h| request.metadata().get(h.as_str()))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let client = self
            .state
            .limits
            .client_key_from(header.as_deref(), peer.map(|p| p.ip()));
        let metadata_token = request
            .metadata()
            .get(TOKEN_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.state.limits.admit_key(&client).map_err(status)?;
        let message = request.into_inner();
        let token = message
            .credentials
            .and_then(|c| c.credentials)
            .map(|proto::credentials::Credentials::OidcIdentityToken(t)| t)
            .filter(|t| !t.is_empty())
            .or(metadata_token)
            .unwrap_or_default();
        let key = match message.key {
            Some(Key::PublicKeyRequest(pk)) => KeyProof::PublicKey {
                content: pk
                    .public_key
                    .map(|k| k.content)
                    .unwrap_or_default()
                    .into_bytes(),
                proof: pk.proof_of_possession,
            },
            Some(Key::CertificateSigningRequest(pem)) => KeyProof::Csr { pem },
            None => KeyProof::PublicKey {
                content: Vec::new(),
                proof: Vec::new(),
            },
        };
        let peer_text = peer
            .map(|p| p.to_string())
            .unwrap_or_else(|| "unknown".into());
        let issued = api::issue_for_client(&self.state, &peer_text, SigningRequest { token, key })
            .await
            .map_err(status)?;
        metrics::NEW_CERTS.inc();
        let chain = Some(CertificateChain {
            certificates: issued.chain_pem,
        });
        let certificate = match issued.sct {
            Some(_) => proto::signing_certificate::Certificate::SignedCertificateEmbeddedSct(
                SigningCertificateEmbeddedSct { chain },
            ),
            None => proto::signing_certificate::Certificate::SignedCertificateDetachedSct(
                SigningCertificateDetachedSct {
                    chain,
                    signed_certificate_timestamp: Vec::new(),
                },
            ),
        };
        Ok(Response::new(SigningCertificate {
            certificate: Some(certificate),
        }))
    }

    async fn get_trust_bundle(
        &self,
        _: Request<GetTrustBundleRequest>,
    ) -> Result<Response<TrustBundle>, Status> {
        let chains = self
            .state
            .authority
            .published_cas()
            .iter()
            .map(|ca| CertificateChain {
                certificates: ca.chain_pem().to_vec(),
            })
            .collect();
        Ok(Response::new(TrustBundle { chains }))
    }

    async fn get_configuration(
        &self,
        _: Request<GetConfigurationRequest>,
    ) -> Result<Response<Configuration>, Status> {
        let issuers = api::configured_issuers(&self.state)
            .into_iter()
            .map(|i| OidcIssuer {
                issuer: match (i.issuer_url, i.wildcard_issuer_url) {
                    (Some(url), _) => Some(proto::oidc_issuer::Issuer::IssuerUrl(url)),
                    (None, Some(w)) => Some(proto::oidc_issuer::Issuer::WildcardIssuerUrl(w)),
                    (None, None) => None,
                },
                audience: i.audience,
                challenge_claim: i.challenge_claim,
                spiffe_trust_domain: i.spiffe_trust_domain,
                issuer_type: i.issuer_type,
                subject_domain: i.subject_domain,
                skip_email_verification: i.skip_email_verification,
            })
            .collect();
        Ok(Response::new(Configuration { issuers }))
    }
}
