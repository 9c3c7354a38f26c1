//! The six steps of one issuance, as one async function with named phases:
//! authenticate, identify, prove possession, prepare, log, issue.
//!
//! Every step has its own error variant; `api::error` maps them to HTTP in one place.

use crate::ca::{CaError, CertificateAuthority};
use crate::config::{AlgorithmRegistry, IdentityConfig, IssuancePolicy};
use crate::ct::{self, CtError, Submitter};
use crate::identity::{Identities, IdentityError};
use crate::metrics;
use crate::model::sct::{self, Entry, Sct};
use crate::model::{Clock, HashAlg, KeyError, KeyKind, Principal, PublicKey, SignatureScheme, pem};
use crate::oidc::{TokenError, VerifiedToken, Verifier, VerifierOptions};
use crate::ratelimit::RateLimiter;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use thiserror::Error;
use x509_parser::prelude::FromDer;

/// How the client proves it holds the key.
#[derive(Debug, Clone)]
pub(crate) enum KeyProof {
    /// A public key (PEM or DER) and a signature over the challenge.
    PublicKey { content: Vec<u8>, proof: Vec<u8> },
    /// A PEM PKCS#10 request; its self-signature is the proof.
    Csr { pem: Vec<u8> },
}

/// One request for a certificate.
#[derive(Debug, Clone)]
pub(crate) struct SigningRequest {
    pub token: String,
    pub key: KeyProof,
}

/// Problems with the client's key or its proof.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    #[error("the public key could not be parsed: {0}")]
    Unparsable(String),
    #[error("the public key is insecure: {0}")]
    Insecure(String),
    #[error("unsupported public key algorithm: {0}")]
    Unsupported(String),
    #[error("the proof of possession does not verify")]
    BadProof,
    #[error("signing algorithm not permitted: {}, {}", .0.go_type(), .1.map(HashAlg::name).unwrap_or("unknown hash value 0"))]
    NotPermitted(KeyKind, Option<HashAlg>),
    #[error("the certificate signing request could not be parsed: {0}")]
    CsrUnparsable(String),
    #[error("unrecognized signature algorithm: {0}")]
    CsrAlgorithm(String),
}

impl KeyProblem {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            KeyProblem::Unparsable(_) => "key_unparsable",
            KeyProblem::Insecure(_) => "key_insecure",
            KeyProblem::Unsupported(_) => "key_unsupported",
            KeyProblem::BadProof => "bad_proof",
            KeyProblem::NotPermitted(..) => "algorithm_not_permitted",
            KeyProblem::CsrUnparsable(_) => "csr_unparsable",
            KeyProblem::CsrAlgorithm(_) => "csr_algorithm",
        }
    }
}

#[derive(Debug, Error)]
pub(crate) enum IssueError {
    #[error("identity token: {0}")]
    Token(#[from] TokenError),
    #[error("identity: {0}")]
    Identity(#[from] IdentityError),
    #[error("key: {0}")]
    Key(#[from] KeyProblem),
    #[error("CA: {0}")]
    Ca(#[from] CaError),
    #[error("CT: {0}")]
    Ct(#[from] CtError),
    /// The operator's issuance policy refused the verified token.
    #[error("{refusal}")]
    Policy {
        /// Which policy and claim.
        refusal: crate::config::policy::Refusal,
        /// The identity that was refused (for the audit record, not the client).
        identity: String,
        /// Its issuer.
        issuer: String,
    },
    /// The identity's rate limit is exhausted; retry after this long.
    #[error("rate limit for {identity} exhausted")]
    RateLimited {
        identity: String,
        retry_after: std::time::Duration,
    },
}

impl IssueError {
    /// Every reason code [`IssueError::reason`] returns.
    pub(crate) const REASONS: &'static [&'static str] = &[
        "token_missing",
        "token_too_large",
        "token_malformed",
        "unknown_issuer",
        "meta_issuer_admission",
        "issuer_unavailable",
        "token_algorithm",
        "token_unknown_key",
        "token_signature",
        "token_issuer_mismatch",
        "token_audience",
        "token_expired",
        "token_not_yet_valid",
        "token_issued_in_future",
        "token_claims",
        "identity_claims",
        "identity_template",
        "key_unparsable",
        "key_insecure",
        "key_unsupported",
        "bad_proof",
        "algorithm_not_permitted",
        "csr_unparsable",
        "csr_algorithm",
        "ca_chain_invalid",
        "policy",
        "ca_backend",
        "ca_signer_unavailable",
        "ct_log",
        "rate_limited_identity",
    ];

    /// A closed set of reason codes for `brevis_rejections_total`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            IssueError::Token(e) => e.reason(),
            IssueError::Identity(IdentityError::Claim(_)) => "identity_claims",
            IssueError::Identity(IdentityError::Template(_)) => "identity_template",
            IssueError::Key(k) => k.reason(),
            IssueError::Ca(CaError::Template(_)) => "identity_template",
            IssueError::Ca(CaError::ChainExpired { .. } | CaError::ChainNotYetValid { .. }) => {
                "ca_chain_invalid"
            }
            IssueError::Policy { .. } => "policy",
            IssueError::Ca(CaError::Signer(e)) if e.is_transient() => "ca_signer_unavailable",
            IssueError::Ca(_) => "ca_backend",
            IssueError::Ct(_) => "ct_log",
            IssueError::RateLimited { .. } => "rate_limited_identity",
        }
    }

    /// Failures that are brevis's own (CA backend, CT log), not the client's.
    pub(crate) fn is_server_side(&self) -> bool {
        matches!(self, IssueError::Ct(_))
            || matches!(self, IssueError::Ca(e) if !matches!(e, CaError::Template(_)))
    }
}

/// A signed certificate and how its SCT travels.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    /// Canonical PEM: leaf, then the CA chain (issuing certificate first, root last).
    pub chain_pem: Vec<String>,
    /// `Some` when the SCT is embedded in the leaf; `None` when CT is disabled.
    pub sct: Option<Sct>,
    pub identity: IssuedIdentity,
}

/// What was certified, for logs and the audit record.
#[derive(Debug, Clone)]
pub(crate) struct IssuedIdentity {
    pub issuer_label: String,
    pub issuer_type: String,
    pub san: String,
    pub key: KeyKind,
    pub serial_hex: String,
}

/// Why an identity configuration cannot be put to use.
#[derive(Debug, Error)]
pub enum IdentityStateError {
    /// A CI provider's templates in the identity configuration are missing or do not parse.
    #[error(transparent)]
    Identities(#[from] crate::config::ConfigError),
    /// The OIDC verifier cannot be built from the configuration (bad CA cert or issuer pattern).
    #[error(transparent)]
    Verifier(#[from] crate::oidc::BuildError),
}

/// The identity side of the configuration, swapped as a whole on reload.
pub(crate) struct IdentityState {
    pub config: IdentityConfig,
    pub verifier: Verifier,
    pub identities: Identities,
    /// Who of the trusted issuers' subjects may get a certificate (`--issuance-policy`).
    pub policy: Option<IssuancePolicy>,
}

impl IdentityState {
    pub(crate) fn new(
        config: IdentityConfig,
        clock: Arc<dyn Clock>,
        options: VerifierOptions,
    ) -> Result<IdentityState, IdentityStateError> {
        let identities = Identities::new(&config)?;
        let verifier = Verifier::new(&config, clock, options)?;
        Ok(IdentityState {
            config,
            verifier,
            identities,
            policy: None,
        })
    }

    /// Restricts issuance with `policy` (already checked against this config).
    pub(crate) fn with_policy(mut self, policy: Option<IssuancePolicy>) -> IdentityState {
        self.policy = policy;
        self
    }
}

/// Everything one issuance needs.
pub(crate) struct Authority {
    identity: RwLock<Arc<IdentityState>>,
    ca: RwLock<Arc<CertificateAuthority>>,
    algorithms: AlgorithmRegistry,
    ct: Option<CtPlan>,
    clock: Arc<dyn Clock>,
    identity_limit: Option<RateLimiter>,
    /// The last signer self-test: when, of which CA, and how it went.
    last_self_test: Mutex<Option<SelfTest>>,
    /// A staged CA and the Unix second from which it issues (rotation).
    next: Mutex<Option<(Arc<CertificateAuthority>, i64)>>,
    /// `next`'s switch time, read on every issuance without a lock (`i64::MAX`: none).
    switch_at: std::sync::atomic::AtomicI64,
    /// The CA replaced at the last switch, listed in the trust bundle until every
    /// certificate it issued has expired.
    previous: RwLock<Option<(Arc<CertificateAuthority>, i64)>>,
}

/// How long a CA replaced by a rotation stays in the trust bundle after the switch:
/// the longest leaf lifetime (ten minutes) and a minute of clock skew.
pub(crate) const PREVIOUS_CA_LISTED: i64 = 11 * 60;

type SelfTest = (Instant, Arc<CertificateAuthority>, Result<(), Arc<CaError>>);

/// How long a signer self-test result answers readiness probes.
pub(crate) const SELF_TEST_TTL: std::time::Duration = std::time::Duration::from_secs(5);

fn observe(phase: &'static str, start: Instant) {
    metrics::ISSUANCE_PHASE
        .with_label_values(&[phase])
        .observe(start.elapsed().as_secs_f64());
}

impl Authority {
    pub(crate) fn new(
        identity: IdentityState,
        ca: CertificateAuthority,
        algorithms: AlgorithmRegistry,
        ct: Option<Arc<dyn Submitter>>,
        clock: Arc<dyn Clock>,
    ) -> Authority {
        publish_ca_expiry(&ca);
        Authority {
            identity: RwLock::new(Arc::new(identity)),
            ca: RwLock::new(Arc::new(ca)),
            algorithms,
            ct: ct.map(CtPlan::single),
            clock,
            identity_limit: None,
            last_self_test: Mutex::new(None),
            next: Mutex::new(None),
            switch_at: std::sync::atomic::AtomicI64::new(i64::MAX),
            previous: RwLock::new(None),
        }
    }

    /// Logs to several CT logs (`--ct-log-url` given more than once, or with
    /// `--ct-log-embedded`).
    pub(crate) fn with_ct_plan(mut self, plan: CtPlan) -> Authority {
        self.ct = Some(plan);
        self
    }

    /// Stages `next` to issue from `switch_at` (Unix seconds) on: until then it is only
    /// published (trust bundle); from then on it signs, and the CA it replaces stays
    /// published for [`PREVIOUS_CA_LISTED`].
    pub(crate) fn with_next_ca(self, next: CertificateAuthority, switch_at: i64) -> Authority {
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = Some((Arc::new(next), switch_at));
        self.switch_at
            .store(switch_at, std::sync::atomic::Ordering::Release);
        self
    }

    /// Switches to the staged CA when its time has come.
    fn switch_if_due(&self) {
        let now = self.clock.unix_seconds();
        if now < self.switch_at.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let Some((ca, at)) = next.take_if(|(_, at)| now >= *at) else {
            return;
        };
        self.switch_at
            .store(i64::MAX, std::sync::atomic::Ordering::Release);
        publish_ca_expiry(&ca);
        let old = std::mem::replace(&mut *self.ca.write().unwrap_or_else(|p| p.into_inner()), ca);
        *self.previous.write().unwrap_or_else(|p| p.into_inner()) =
            Some((old, at + PREVIOUS_CA_LISTED));
        metrics::CA_SWITCHES.inc();
        tracing::info!(
            switch_at = at,
            "issuing with the next CA from now on; the previous chain stays in the trust bundle"
        );
    }

    /// Every chain clients should trust now: the issuing CA's, a staged CA's (published
    /// before it signs anything), and the previous CA's until its last certificate
    /// expired.
    pub(crate) fn published_cas(&self) -> Vec<Arc<CertificateAuthority>> {
        let mut out = vec![self.ca()];
        if let Some((next, _)) = self.next.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            out.push(next.clone());
        }
        if let Some((previous, until)) = self
            .previous
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            && self.clock.unix_seconds() < *until
        {
            out.push(previous.clone());
        }
        out
    }

    /// Limits certificates per identity (issuer and SAN), checked once the token verified
    /// so nobody can spend another identity's budget with forged tokens.
    pub(crate) fn with_identity_rate_limit(mut self, limiter: RateLimiter) -> Authority {
        self.identity_limit = Some(limiter);
        self
    }

    pub(crate) fn identity(&self) -> Arc<IdentityState> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the value
        // inside is still a complete state.
        self.identity
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn ca(&self) -> Arc<CertificateAuthority> {
        self.switch_if_due();
        self.ca.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn replace_identity(&self, state: IdentityState) {
        *self.identity.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
    }

    pub(crate) fn replace_ca(&self, ca: CertificateAuthority) {
        publish_ca_expiry(&ca);
        *self.ca.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ca);
    }

    /// Whether this authority can issue now: the CA chain is valid at the clock's time and
    /// the signer works. The signer's self-test runs at most once per [`SELF_TEST_TTL`]
    /// for a given CA, so unauthenticated readiness probes cannot make the CA sign in a
    /// loop (10 ms a probe with an RSA-4096 key).
    pub(crate) fn can_issue(&self) -> Result<(), Arc<CaError>> {
        let ca = self.ca();
        ca.check_validity(self.clock.unix_seconds())?;
        let mut last = self
            .last_self_test
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((at, tested, result)) = last.as_ref()
            && Arc::ptr_eq(tested, &ca)
            && at.elapsed() < SELF_TEST_TTL
        {
            return result.clone();
        }
        let result = ca.self_test().map_err(Arc::new);
        metrics::CA_SELF_TESTS
            .with_label_values(&[if result.is_ok() { "ok" } else { "error" }])
            .inc();
        *last = Some((Instant::now(), ca, result.clone()));
        result
    }

    /// Issues one certificate.
    pub(crate) async fn issue(&self, request: SigningRequest) -> Result<Issued, IssueError> {
        let identity = self.identity();
        let ca = self.ca();

        // 1. Authenticate: route on the unverified issuer, verify the token.
        let t = Instant::now();
        let token: VerifiedToken = identity.verifier.verify(&request.token).await?;
        observe("authenticate", t);

        // 2. Identify: claims -> principal, by issuer type.
        let t = Instant::now();
        let principal: Principal = identity
            .identities
            .principal(&token.issuer, &token.claims)?;
        observe("identify", t);
        // 3. Prove possession.
        let t = Instant::now();
        let key = self.prove_possession(&request.key, &principal.challenge)?;
        observe("prove", t);
        // The operator's policy on the verified claims, before anything is signed or
        // logged (and before the identity's budget is charged).
        if let Some(policy) = &identity.policy {
            policy
                .check(policy_key(&token.issuer), &token.claims)
                .map_err(|refusal| IssueError::Policy {
                    refusal,
                    identity: principal.san.value().to_string(),
                    issuer: token.issuer.issuer_url.clone(),
                })?;
        }

        // The identity's budget: charged once token and proof checked out (keyed by the
        // concrete issuer, not a meta-issuer pattern), given back unless a certificate was
        // issued or the client was at fault: brevis failing, the request timing out or
        // being dropped (a guard refunds on drop) cost the identity nothing.
        let mut charge = match &self.identity_limit {
            None => None,
            Some(limit) => {
                let who = format!("{}\n{}", token.issuer.issuer_url, principal.san.value());
                limit
                    .check(&who)
                    .map_err(|retry_after| IssueError::RateLimited {
                        identity: principal.san.value().to_string(),
                        retry_after,
                    })?;
                Some(Charge {
                    limit,
                    who,
                    spent: false,
                })
            }
        };
        let result = self.sign_and_log(&ca, &token, &principal, &key).await;
        if let Some(c) = &mut charge {
            c.spent = !matches!(&result, Err(e) if e.is_server_side());
        }
        result
    }

    /// Phases 4-6: prepare, log, issue.
    async fn sign_and_log(
        &self,
        ca: &CertificateAuthority,
        token: &VerifiedToken,
        principal: &Principal,
        key: &PublicKey,
    ) -> Result<Issued, IssueError> {
        // 4. Prepare the TBS.
        let t = Instant::now();
        let leaf = ca.prepare(principal, key, self.clock.unix_seconds())?;
        observe("prepare", t);

        let (leaf_der, sct) = match &self.ct {
            None => {
                let t = Instant::now();
                let der = ca.sign_without_ct(&leaf).await?;
                metrics::SIGNER_DURATION
                    .with_label_values(&["certificate"])
                    .observe(t.elapsed().as_secs_f64());
                observe("issue", t);
                (der, None)
            }
            Some(plan) => {
                // 5. Log: precertificate -> add-pre-chain -> verified SCT(s).
                let t = Instant::now();
                let precert = ca.sign_precertificate(&leaf).await?;
                metrics::SIGNER_DURATION
                    .with_label_values(&["precertificate"])
                    .observe(t.elapsed().as_secs_f64());
                // What the SCT signs: the precertificate's TBS without its poison, which is
                // the prepared TBS with no last extension (no need to parse it back).
                let scts = match plan.logs.as_slice() {
                    [log] => vec![
                        self.log_precertificate(log.as_ref(), ca, &precert.der, &leaf.tbs(None))
                            .await?,
                    ],
                    _ => {
                        plan.log_everywhere(ca, &precert.der, leaf.tbs(None))
                            .await?
                    }
                };
                observe("log", t);

                // 6. Issue: same TBS with the SCT list in the poison's place, checked.
                let t = Instant::now();
                let list = sct::sct_list(&scts);
                let sct = scts.into_iter().next().ok_or(CtError::TooFewScts {
                    got: 0,
                    want: 1,
                    first: "no SCT".into(),
                })?;
                let der = ca.sign_final(&leaf, &precert, &list).await?;
                metrics::SIGNER_DURATION
                    .with_label_values(&["certificate"])
                    .observe(t.elapsed().as_secs_f64());
                observe("issue", t);
                (der, Some(sct))
            }
        };

        let mut chain_pem = Vec::with_capacity(ca.chain_pem().len() + 1);
        chain_pem.push(pem::certificate(&leaf_der));
        chain_pem.extend(ca.chain_pem().iter().cloned());
        metrics::CERTS_ISSUED
            .with_label_values(&[token.label.as_str(), token.issuer.kind.as_str()])
            .inc();
        Ok(Issued {
            chain_pem,
            sct,
            identity: IssuedIdentity {
                issuer_label: token.label.clone(),
                issuer_type: token.issuer.kind.as_str().to_string(),
                san: principal.san.value().to_string(),
                key: key.kind(),
                serial_hex: hex::encode(&leaf.serial),
            },
        })
    }

    async fn log_precertificate(
        &self,
        log: &dyn Submitter,
        ca: &CertificateAuthority,
        precert: &[u8],
        unpoisoned_tbs: &[u8],
    ) -> Result<Sct, IssueError> {
        let mut chain = Vec::with_capacity(ca.chain_der().len() + 1);
        chain.push(precert.to_vec());
        chain.extend(ca.chain_der().iter().cloned());
        let ikh = ct::sha256(ca.issuer_spki());
        Ok(submit_verified(log, &chain, &ikh, unpoisoned_tbs).await?)
    }

    fn prove_possession(&self, proof: &KeyProof, challenge: &str) -> Result<PublicKey, KeyProblem> {
        match proof {
            KeyProof::PublicKey { content, proof } => {
                if content.is_empty() {
                    return Err(KeyProblem::Unparsable("no public key supplied".into()));
                }
                let key = PublicKey::from_content(content).map_err(key_problem)?;
                if !key.verify_proof(challenge.as_bytes(), proof) {
                    return Err(KeyProblem::BadProof);
                }
                let hash = key.kind().default_hash();
                if !self.algorithms.permits(key.kind(), hash) {
                    return Err(KeyProblem::NotPermitted(key.kind(), hash));
                }
                Ok(key)
            }
            KeyProof::Csr { pem: csr_pem } => {
                let csr = ParsedCsr::parse(csr_pem)?;
                if !csr.key.verify(csr.scheme, &csr.info, &csr.signature) {
                    return Err(KeyProblem::BadProof);
                }
                let hash = csr.scheme.hash();
                if !self.algorithms.permits(csr.key.kind(), hash) {
                    return Err(KeyProblem::NotPermitted(csr.key.kind(), hash));
                }
                Ok(csr.key)
            }
        }
    }
}

/// A PKCS#10 request taken apart, its self-signature not yet checked.
pub(crate) struct ParsedCsr {
    /// The requested key, validated as any client key.
    pub key: PublicKey,
    pub scheme: SignatureScheme,
    /// The signed bytes: `CertificationRequestInfo`.
    pub info: Vec<u8>,
    pub signature: Vec<u8>,
}

impl ParsedCsr {
    /// Parses Fulcio's `certificateSigningRequest`: one PEM `CERTIFICATE REQUEST` block
    /// whose DER has nothing after the request.
    pub(crate) fn parse(pem_bytes: &[u8]) -> Result<ParsedCsr, KeyProblem> {
        let text = std::str::from_utf8(pem_bytes)
            .map_err(|_| KeyProblem::CsrUnparsable("not PEM text".into()))?;
        let block = pem::parse_first(text).map_err(|e| KeyProblem::CsrUnparsable(e.to_string()))?;
        if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
            return Err(KeyProblem::CsrUnparsable(format!(
                "PEM block is {:?}, not CERTIFICATE REQUEST",
                block.label
            )));
        }
        let (rest, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(&block.der)
                .map_err(|e| KeyProblem::CsrUnparsable(e.to_string()))?;
        if !rest.is_empty() {
            return Err(KeyProblem::CsrUnparsable("trailing data".into()));
        }
        let info = &csr.certification_request_info;
        let key = PublicKey::from_spki_der(info.subject_pki.raw).map_err(key_problem)?;
        let alg_oid = csr.signature_algorithm.algorithm.as_bytes();
        let scheme = SignatureScheme::from_oid(alg_oid).ok_or_else(|| {
            KeyProblem::CsrAlgorithm(signature_algorithm_name(
                &csr.signature_algorithm.algorithm.to_id_string(),
            ))
        })?;
        Ok(ParsedCsr {
            key,
            scheme,
            info: info.raw.to_vec(),
            signature: csr.signature_value.data.to_vec(),
        })
    }
}

/// `brevis_expiry_timestamp_seconds{object="ca_chain"}` for the CA now issuing.
/// Submits to one log and verifies the SCT with the log's key; measured per log.
async fn submit_verified(
    log: &dyn Submitter,
    chain: &[Vec<u8>],
    issuer_key_hash: &[u8; 32],
    unpoisoned_tbs: &[u8],
) -> Result<Sct, CtError> {
    let start = Instant::now();
    let result = log
        .add_own_pre_chain(chain, issuer_key_hash, unpoisoned_tbs)
        .await
        .and_then(|sct| match log.public_key() {
            None => Ok(sct),
            Some(key) => {
                let entry = Entry::Precert {
                    issuer_key_hash,
                    tbs: unpoisoned_tbs,
                };
                if key.verify_sct(&sct, &entry) {
                    Ok(sct)
                } else {
                    Err(CtError::BadSignature {
                        log: log.label().to_string(),
                    })
                }
            }
        });
    metrics::CT_SUBMISSION_DURATION
        .with_label_values(&[log.label()])
        .observe(start.elapsed().as_secs_f64());
    metrics::CT_SUBMISSIONS
        .with_label_values(&[log.label(), if result.is_ok() { "ok" } else { "error" }])
        .inc();
    result
}

/// Which SCTs go into the certificate when several logs answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmbedScts {
    /// Exactly one: the first log in the configured order that returned a valid SCT
    /// (every client accepts one; the entry is in every log that answered).
    #[default]
    One,
    /// Every valid SCT obtained, in the configured order (sigstore-js accepts several;
    /// sigstore-python and the sigstore crate refuse more than one).
    All,
}

/// Where precertificates are logged: one log, or several with a quorum.
pub(crate) struct CtPlan {
    /// The logs, in the configured order.
    pub logs: Vec<Arc<dyn Submitter>>,
    /// Valid SCTs required before the certificate is issued.
    pub min_scts: usize,
    /// What goes into the certificate.
    pub embed: EmbedScts,
    /// Once `min_scts` are in hand, how long the other logs still get.
    pub grace: std::time::Duration,
}

impl CtPlan {
    pub(crate) fn single(log: Arc<dyn Submitter>) -> CtPlan {
        CtPlan {
            logs: vec![log],
            min_scts: 1,
            embed: EmbedScts::One,
            grace: std::time::Duration::ZERO,
        }
    }

    /// The precertificate to every log at once; each SCT verified with its log's key.
    /// Returns the SCTs to embed, in the configured order, once `min_scts` are valid and
    /// the rest have had `grace`; fewer than `min_scts` is an error (no certificate).
    async fn log_everywhere(
        &self,
        ca: &CertificateAuthority,
        precert: &[u8],
        unpoisoned_tbs: Vec<u8>,
    ) -> Result<Vec<Sct>, CtError> {
        let mut chain = Vec::with_capacity(ca.chain_der().len() + 1);
        chain.push(precert.to_vec());
        chain.extend(ca.chain_der().iter().cloned());
        let (chain, tbs) = (Arc::new(chain), Arc::new(unpoisoned_tbs));
        let ikh = ct::sha256(ca.issuer_spki());
        // Tasks, so one slow log does not hold the others; dropped (aborted) with the set
        // when the request ends.
        let mut set = tokio::task::JoinSet::new();
        for (i, log) in self.logs.iter().enumerate() {
            let (log, chain, tbs) = (log.clone(), chain.clone(), tbs.clone());
            set.spawn(async move { (i, submit_verified(log.as_ref(), &chain, &ikh, &tbs).await) });
        }
        let n = self.logs.len();
        let mut got: Vec<Option<Sct>> = vec![None; n];
        let (mut ok, mut first_failure) = (0, None);
        let mut grace_until: Option<tokio::time::Instant> = None;
        loop {
            let next = match grace_until {
                None => set.join_next().await,
                Some(t) => match tokio::time::timeout_at(t, set.join_next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            let Some(joined) = next else { break };
            match joined {
                Ok((i, Ok(sct))) => {
                    got[i] = Some(sct);
                    ok += 1;
                    if ok == n {
                        break;
                    }
                    if ok >= self.min_scts && grace_until.is_none() {
                        grace_until = Some(tokio::time::Instant::now() + self.grace);
                    }
                }
                Ok((i, Err(e))) => {
                    tracing::warn!(log = self.logs[i].label(), error = %crate::errors::Chain(&e), "CT log submission failed");
                    first_failure.get_or_insert_with(|| crate::errors::Chain(&e).to_string());
                }
                Err(e) => {
                    first_failure.get_or_insert_with(|| format!("a submission task failed: {e}"));
                }
            }
        }
        if ok < self.min_scts {
            return Err(CtError::TooFewScts {
                got: ok,
                want: self.min_scts,
                first: first_failure.unwrap_or_else(|| "no answer within the grace period".into()),
            });
        }
        let scts = got.into_iter().flatten();
        Ok(match self.embed {
            EmbedScts::One => scts.take(1).collect(),
            EmbedScts::All => scts.collect(),
        })
    }
}

/// What an issuance policy names an issuer by: its meta-issuer pattern when it was
/// admitted under one, else its URL (the identity config's key).
fn policy_key(issuer: &crate::config::IssuerConfig) -> &str {
    issuer.pattern.as_deref().unwrap_or(&issuer.key)
}

fn publish_ca_expiry(ca: &CertificateAuthority) {
    metrics::EXPIRY
        .with_label_values(&["ca_chain"])
        .set(ca.validity_window().1 as f64);
}

/// A token taken from an identity's bucket; given back on drop unless marked spent.
struct Charge<'a> {
    limit: &'a RateLimiter,
    who: String,
    spent: bool,
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        if !self.spent {
            self.limit.refund(&self.who);
        }
    }
}

fn key_problem(e: KeyError) -> KeyProblem {
    match e {
        KeyError::Malformed(m) => KeyProblem::Unparsable(m.to_string()),
        KeyError::Insecure(m) => KeyProblem::Insecure(m),
        KeyError::Unsupported(m) => KeyProblem::Unsupported(m),
    }
}

/// Go's names for the signature algorithms Fulcio refuses on CSRs.
fn signature_algorithm_name(dotted: &str) -> String {
    match dotted {
        "1.2.840.113549.1.1.4" => "MD5-RSA".into(),
        "1.2.840.113549.1.1.5" => "SHA1-RSA".into(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".into(),
        "1.2.840.10045.4.1" => "ECDSA-SHA1".into(),
        "1.2.840.10040.4.3" => "DSA-SHA1".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
