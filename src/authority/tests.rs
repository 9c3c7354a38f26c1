//! `Authority::issue` in-process, table-driven (as boulder tests its issuance): a local
//! JWKS behind a fixed map instead of HTTP, a clock moved by hand, and a fake CT log that
//! signs real SCTs. One row per rejection reason and one per issuer type.

use super::*;
use crate::ct::LogPublicKey;
use crate::model::BoxFuture;
use crate::model::sct::{DigitallySigned, HASH_SHA256, SIG_ECDSA};
use crate::model::signer::{LocalSigner, Signer, SigningAlgorithm};
use crate::model::{ManualClock, der, oid};
use crate::oidc::fetch::{FetchError, Fetcher};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// 2027-01-01T00:00:00Z.
const NOW: u64 = 1_798_761_600;

/// Issuers beyond [`crate::config::EVERY_ISSUER_TYPE`]: a CI provider, an issuer whose
/// key differs from its URL, one that is down, and a meta-issuer pattern.
const MORE_ISSUERS: &str = r#"
  https://ci.example:
    issuer-url: https://ci.example
    client-id: sigstore
    type: ci-provider
    ci-provider: github-like
  https://alias.example:
    issuer-url: https://real.example
    client-id: sigstore
    type: email
  https://down.example:
    issuer-url: https://down.example
    client-id: sigstore
    type: email
meta-issuers:
  https://*.meta.example:
    client-id: sigstore
    type: email
ci-issuer-metadata:
  github-like:
    default-template-values:
      url: https://github.com
    extension-templates:
      source-repository-uri: "{{ .url }}/{{ .repository }}"
      source-repository-digest: sha
    subject-alternative-name-template: "{{ .url }}/{{ .job_workflow_ref }}"
"#;

/// Serves every issuer's discovery document and the one JWKS from memory; anything else
/// is a 404, as an issuer that is down.
struct StaticFetcher(HashMap<String, serde_json::Map<String, Value>>);

impl Fetcher for StaticFetcher {
    fn get_json<'a>(
        &'a self,
        url: &'a str,
    ) -> BoxFuture<'a, Result<serde_json::Map<String, Value>, FetchError>> {
        let r = self.0.get(url).cloned().ok_or(FetchError::Status {
            url: url.to_string(),
            status: 404,
        });
        Box::pin(async move { r })
    }
}

/// A CT log in a test: signs a real SCT for the precertificate, or fails on demand.
struct FakeLog {
    signer: LocalSigner,
    /// The key the authority verifies SCTs with (another key: "a valid SCT from the
    /// wrong log").
    advertised: LogPublicKey,
    fail: bool,
    /// Answers only after this long (a slow log).
    delay: Duration,
}

impl FakeLog {
    fn new(fail: bool, delay: Duration) -> FakeLog {
        let signer = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
        FakeLog {
            advertised: LogPublicKey::from_spki_der(signer.public_key_spki()).unwrap(),
            signer,
            fail,
            delay,
        }
    }
}

impl Submitter for FakeLog {
    fn label(&self) -> &str {
        "fake"
    }
    fn public_key(&self) -> Option<&LogPublicKey> {
        Some(&self.advertised)
    }
    fn add_pre_chain<'a>(&'a self, chain: &'a [Vec<u8>]) -> BoxFuture<'a, Result<Sct, CtError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            if self.fail {
                return Err(CtError::Embedded(crate::ct::log::LogError::Overloaded));
            }
            let (_, issuer) = x509_parser::parse_x509_certificate(&chain[1]).unwrap();
            let ikh = ct::sha256(issuer.public_key().raw);
            let tbs = crate::model::x509::precert_tbs(&chain[0]).unwrap();
            let entry = Entry::Precert {
                issuer_key_hash: &ikh,
                tbs: &tbs,
            };
            let extensions = sct::leaf_index_extension(7);
            let timestamp = NOW * 1000;
            let signature = self
                .signer
                .sign(&sct::signature_input(timestamp, &entry, &extensions))
                .unwrap();
            Ok(Sct {
                log_id: *LogPublicKey::from_spki_der(self.signer.public_key_spki())
                    .unwrap()
                    .log_id(),
                timestamp,
                extensions,
                signature: DigitallySigned {
                    hash_algorithm: HASH_SHA256,
                    signature_algorithm: SIG_ECDSA,
                    signature,
                },
            })
        })
    }

    /// What the embedded log relies on: the entry the CA hands over with its chain is the
    /// one a log derives from the chain (issuer key hash, TBS without the poison).
    fn add_own_pre_chain<'a>(
        &'a self,
        chain: &'a [Vec<u8>],
        issuer_key_hash: &'a [u8; 32],
        unpoisoned_tbs: &'a [u8],
    ) -> BoxFuture<'a, Result<Sct, CtError>> {
        let (_, issuer) = x509_parser::parse_x509_certificate(&chain[1]).unwrap();
        assert_eq!(*issuer_key_hash, ct::sha256(issuer.public_key().raw));
        assert_eq!(
            unpoisoned_tbs,
            crate::model::x509::precert_tbs(&chain[0]).unwrap()
        );
        self.add_pre_chain(chain)
    }
}

/// A signer whose key is fine but which cannot sign (an HSM gone away).
struct FailingSigner(LocalSigner, crate::model::signer::SignerError);

impl Signer for FailingSigner {
    fn algorithm(&self) -> SigningAlgorithm {
        self.0.algorithm()
    }
    fn public_key_spki(&self) -> &[u8] {
        self.0.public_key_spki()
    }
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, crate::model::signer::SignerError> {
        Err(self.1.clone())
    }
}

/// What a row varies in the authority.
#[derive(Default, Clone, Copy)]
struct Setup {
    ct_fails: bool,
    ct_wrong_key: bool,
    only_p256: bool,
    identity_limit: bool,
    policy: bool,
}

struct World {
    authority: Authority,
    token_key: EcdsaKeyPair,
    clock: Arc<ManualClock>,
    log_key: LogPublicKey,
}

fn b64u(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

impl World {
    fn new(setup: Setup) -> World {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let token_key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = token_key.public_key().as_ref();
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": b64u(&point[1..33]), "y": b64u(&point[33..65]),
        }]});
        let mut docs = HashMap::new();
        let config = IdentityConfig::parse(&format!(
            "{}{MORE_ISSUERS}",
            crate::config::EVERY_ISSUER_TYPE
        ))
        .unwrap();
        let urls: Vec<String> = config
            .issuers
            .iter()
            .map(|i| i.issuer_url.clone())
            .filter(|u| u != "https://down.example")
            .chain(["https://a.meta.example".to_string()])
            .collect();
        for url in urls {
            docs.insert(
                format!("{url}/.well-known/openid-configuration"),
                json!({"issuer": url, "jwks_uri": format!("{url}/jwks"),
                       "id_token_signing_alg_values_supported": ["ES256"]})
                .as_object()
                .unwrap()
                .clone(),
            );
            docs.insert(format!("{url}/jwks"), jwks.as_object().unwrap().clone());
        }
        let clock = Arc::new(ManualClock::at_unix(NOW));
        let options = VerifierOptions {
            meta_admission: crate::ratelimit::Rate {
                per_second: 1.0 / 3600.0,
                burst: 1,
            },
            ..VerifierOptions::default()
        };
        let verifier = Verifier::with_fetcher(
            &config,
            clock.clone(),
            options,
            Some(Arc::new(StaticFetcher(docs))),
        )
        .unwrap();
        let policy = setup.policy.then(|| {
            crate::config::IssuancePolicy::parse(
                "policies:\n  - name: only-allowed\n    issuer: https://email.example\n    allow:\n      email: ['*@allowed.example']\n",
                &config,
            )
            .unwrap()
        });
        let identity = IdentityState {
            identities: Identities::new(&config).unwrap(),
            verifier,
            config,
            policy,
        };
        let ca = CertificateAuthority::ephemeral(clock.now()).unwrap();
        let log_signer = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
        let log_key = LogPublicKey::from_spki_der(log_signer.public_key_spki()).unwrap();
        let advertised = if setup.ct_wrong_key {
            let other = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
            LogPublicKey::from_spki_der(other.public_key_spki()).unwrap()
        } else {
            log_key.clone()
        };
        let log = FakeLog {
            signer: log_signer,
            advertised,
            fail: setup.ct_fails,
            delay: Duration::ZERO,
        };
        let algorithms = if setup.only_p256 {
            AlgorithmRegistry::parse(["ecdsa-sha2-256-nistp256"]).unwrap()
        } else {
            AlgorithmRegistry::default()
        };
        let mut authority =
            Authority::new(identity, ca, algorithms, Some(Arc::new(log)), clock.clone());
        if setup.identity_limit {
            authority = authority.with_identity_rate_limit(RateLimiter::new(
                crate::ratelimit::Rate::parse("1/h", 1).unwrap(),
                100,
            ));
        }
        World {
            authority,
            token_key,
            clock,
            log_key,
        }
    }

    /// A token with `header` and `claims` merged over valid defaults for `iss`.
    fn token(&self, iss: &str, header: Value, claims: Value) -> String {
        let now = self.clock.unix_seconds();
        let mut h = json!({"alg": "ES256", "kid": "k1", "typ": "JWT"});
        let mut c = json!({"iss": iss, "aud": "sigstore", "sub": "alice",
                           "iat": now, "exp": now + 600});
        for (base, extra) in [(&mut h, header), (&mut c, claims)] {
            for (k, v) in extra.as_object().unwrap() {
                if v.is_null() {
                    base.as_object_mut().unwrap().remove(k);
                } else {
                    base[k] = v.clone();
                }
            }
        }
        let input = format!(
            "{}.{}",
            b64u(h.to_string().as_bytes()),
            b64u(c.to_string().as_bytes())
        );
        let sig = self
            .token_key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64u(sig.as_ref()))
    }

    async fn issue(&self, token: String, key: KeyProof) -> Result<Issued, IssueError> {
        self.authority.issue(SigningRequest { token, key }).await
    }
}

/// A client key and a proof over `challenge` (DER SPKI content, as a client may send).
fn proof(alg: SigningAlgorithm, challenge: &str) -> KeyProof {
    let k = LocalSigner::generate(alg).unwrap();
    KeyProof::PublicKey {
        content: k.public_key_spki().to_vec(),
        proof: k.sign(challenge.as_bytes()).unwrap(),
    }
}

/// The leaf of an issued chain, decoded from its PEM as a client would.
fn leaf_der(issued: &Issued) -> Vec<u8> {
    let block = pem::parse_first(&issued.chain_pem[0]).unwrap();
    assert_eq!(block.label, "CERTIFICATE");
    block.der
}

fn p256(challenge: &str) -> KeyProof {
    proof(SigningAlgorithm::EcdsaP256Sha256, challenge)
}

fn github_claims() -> Value {
    json!({
        "sub": "repo:acme/app:ref:refs/heads/main",
        "job_workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main",
        "sha": "a".repeat(40), "event_name": "push", "repository": "acme/app",
        "workflow": "release", "ref": "refs/heads/main", "job_workflow_sha": "b".repeat(40),
        "runner_environment": "github-hosted", "repository_id": "1", "repository_owner": "acme",
        "repository_owner_id": "2", "repository_visibility": "public",
        "workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main",
        "workflow_sha": "c".repeat(40), "run_id": "42", "run_attempt": "1",
    })
}

/// Every issuer type: the SAN the certificate carries, and an SCT that verifies.
#[tokio::test]
async fn every_issuer_type_gets_its_san() {
    let w = World::new(Setup::default());
    let rows: Vec<(&str, Value, &str, &str)> = vec![
        (
            "https://email.example",
            json!({"email": "alice@example.com", "email_verified": true}),
            "alice@example.com",
            "alice@example.com",
        ),
        (
            "https://uri.example",
            json!({"sub": "https://uri.example/users/alice"}),
            "https://uri.example/users/alice",
            "https://uri.example/users/alice",
        ),
        (
            "https://username.example",
            json!({"sub": "alice"}),
            "alice",
            "alice!username.example",
        ),
        (
            "https://spiffe.example",
            json!({"sub": "spiffe://example.org/ns/web"}),
            "spiffe://example.org/ns/web",
            "spiffe://example.org/ns/web",
        ),
        (
            "https://k8s.example",
            json!({"sub": "system:serviceaccount:ns:sa",
                   "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa"}}}),
            "system:serviceaccount:ns:sa",
            "https://kubernetes.io/namespaces/ns/serviceaccounts/sa",
        ),
        (
            "https://github.example",
            github_claims(),
            "repo:acme/app:ref:refs/heads/main",
            "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
        ),
        (
            "https://gitlab.example",
            json!({"sub": "project_path:g/p:ref_type:branch:ref:main", "project_path": "g/p",
                   "pipeline_source": "push", "pipeline_id": "9",
                   "ci_config_ref_uri": "gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main",
                   "job_id": "3", "ref": "main", "ref_type": "branch", "namespace_path": "g",
                   "namespace_id": "2", "project_id": "1", "sha": "d".repeat(40),
                   "runner_environment": "gitlab-hosted", "runner_id": 5}),
            "project_path:g/p:ref_type:branch:ref:main",
            "https://gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main",
        ),
        (
            "https://buildkite.example",
            json!({"sub": "organization:acme", "organization_slug": "acme",
                   "pipeline_slug": "app"}),
            "organization:acme",
            "https://buildkite.com/acme/app",
        ),
        (
            "https://codefresh.example",
            json!({"sub": "account:1", "account_id": "1", "pipeline_id": "p", "workflow_id": "w",
                   "account_name": "acme", "pipeline_name": "app"}),
            "account:1",
            "https://g.codefresh.io/acme/app:1/p",
        ),
        (
            "https://chainguard.example",
            json!({"sub": "abc"}),
            "abc",
            "https://chainguard.example/abc",
        ),
        (
            "https://ci.example",
            github_claims(),
            "repo:acme/app:ref:refs/heads/main",
            "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
        ),
    ];
    for (iss, claims, challenge, san) in rows {
        let issued = w
            .issue(w.token(iss, json!({}), claims), p256(challenge))
            .await
            .unwrap_or_else(|e| panic!("{iss}: {e}"));
        assert_eq!(issued.identity.san, san, "{iss}");
        let leaf = leaf_der(&issued);
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        assert_eq!(
            cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp(),
            600
        );
        assert_eq!(cert.validity().not_before.timestamp(), NOW as i64);
        let ca = w.authority.ca();
        let scts = ct::embedded_scts(&leaf, &ca.chain_der()[0]).unwrap();
        assert!(
            w.log_key.verify_sct(&scts[0].sct, &scts[0].entry()),
            "{iss}"
        );
    }
}

/// One row per rejection reason: the closed set `IssueError::reason` reports.
#[tokio::test]
async fn every_rejection_reason_has_a_row() {
    let email = "https://email.example";
    let alice = json!({"email": "alice@example.com", "email_verified": true});
    let ok_claims = || alice.clone();
    let mut seen = std::collections::BTreeSet::new();
    let mut check = |reason: &'static str, r: Result<Issued, IssueError>| {
        match r {
            Ok(_) => panic!("{reason}: issued"),
            Err(e) => assert_eq!(e.reason(), reason, "{e}"),
        }
        seen.insert(reason);
    };

    let w = World::new(Setup::default());
    let a = || p256("alice@example.com");
    check("token_missing", w.issue(String::new(), a()).await);
    check("token_too_large", w.issue("a".repeat(70_000), a()).await);
    check("token_malformed", w.issue("a.b".into(), a()).await);
    check(
        "unknown_issuer",
        w.issue(
            w.token("https://nobody.example", json!({}), ok_claims()),
            a(),
        )
        .await,
    );
    check(
        "token_algorithm",
        w.issue(w.token(email, json!({"alg": "RS256"}), ok_claims()), a())
            .await,
    );
    check(
        "token_unknown_key",
        w.issue(w.token(email, json!({"kid": "nope"}), ok_claims()), a())
            .await,
    );
    let mut forged = w.token(email, json!({}), ok_claims());
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    check("token_signature", w.issue(forged, a()).await);
    check(
        "token_issuer_mismatch",
        w.issue(
            w.token("https://alias.example", json!({}), ok_claims()),
            a(),
        )
        .await,
    );
    check(
        "token_audience",
        w.issue(
            w.token(
                email,
                json!({}),
                json!({"aud": "other", "email": "alice@example.com", "email_verified": true}),
            ),
            a(),
        )
        .await,
    );
    let now = NOW as i64;
    check(
        "token_expired",
        w.issue(
            w.token(
                email,
                json!({}),
                json!({"exp": now - 1, "email": "alice@example.com", "email_verified": true}),
            ),
            a(),
        )
        .await,
    );
    check(
        "token_not_yet_valid",
        w.issue(
            w.token(
                email,
                json!({}),
                json!({"nbf": now + 3600, "email": "alice@example.com", "email_verified": true}),
            ),
            a(),
        )
        .await,
    );
    check(
        "token_issued_in_future",
        w.issue(
            w.token(
                email,
                json!({}),
                json!({"iat": now + 3600, "email": "alice@example.com", "email_verified": true}),
            ),
            a(),
        )
        .await,
    );
    check(
        "token_claims",
        w.issue(
            w.token(
                email,
                json!({}),
                json!({"exp": null, "email": "alice@example.com", "email_verified": true}),
            ),
            a(),
        )
        .await,
    );
    check(
        "issuer_unavailable",
        w.issue(w.token("https://down.example", json!({}), ok_claims()), a())
            .await,
    );
    // Meta-issuers: the first new issuer is admitted (and fetched), the next is not.
    let _ = w
        .issue(
            w.token("https://b.meta.example", json!({}), ok_claims()),
            a(),
        )
        .await;
    check(
        "meta_issuer_admission",
        w.issue(
            w.token("https://c.meta.example", json!({}), ok_claims()),
            a(),
        )
        .await,
    );
    check(
        "identity_claims",
        w.issue(
            w.token(
                email,
                json!({}),
                json!({"email": "alice@example.com", "email_verified": false}),
            ),
            a(),
        )
        .await,
    );
    let mut no_repo = github_claims();
    no_repo["repository"] = Value::Null;
    check(
        "identity_template",
        w.issue(
            w.token("https://ci.example", json!({}), no_repo),
            p256("repo:acme/app:ref:refs/heads/main"),
        )
        .await,
    );
    let token = || w.token(email, json!({}), ok_claims());
    check(
        "key_unparsable",
        w.issue(
            token(),
            KeyProof::PublicKey {
                content: b"garbage".to_vec(),
                proof: vec![1],
            },
        )
        .await,
    );
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    check(
        "key_insecure",
        w.issue(
            token(),
            KeyProof::PublicKey {
                content: der::sequence(&[
                    &der::sequence(&[&oid::ED25519.tlv()]),
                    &der::bit_string(&identity_point),
                ]),
                proof: vec![0; 64],
            },
        )
        .await,
    );
    let dsa = der::sequence(&[
        &der::sequence(&[&der::oid(&[1, 2, 840, 10040, 4, 1])]),
        &der::bit_string(&[2, 1, 1]),
    ]);
    check(
        "key_unsupported",
        w.issue(
            token(),
            KeyProof::PublicKey {
                content: dsa,
                proof: vec![1],
            },
        )
        .await,
    );
    check(
        "bad_proof",
        w.issue(token(), p256("mallory@example.com")).await,
    );
    check(
        "csr_unparsable",
        w.issue(
            token(),
            KeyProof::Csr {
                pem: b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                    .to_vec(),
            },
        )
        .await,
    );
    // A CSR whose signature algorithm Fulcio does not recognise (ECDSA with SHA-1).
    let k = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
    let info = der::sequence(&[
        &der::unsigned_integer(&[0]),
        &der::sequence(&[]),
        k.public_key_spki(),
        &der::tlv(der::context_constructed(0), &[]),
    ]);
    let csr = der::sequence(&[
        &info,
        &der::sequence(&[&der::oid(&[1, 2, 840, 10045, 4, 1])]),
        &der::bit_string(&k.sign(&info).unwrap()),
    ]);
    check(
        "csr_algorithm",
        w.issue(
            token(),
            KeyProof::Csr {
                pem: pem::encode("CERTIFICATE REQUEST", &csr).into_bytes(),
            },
        )
        .await,
    );

    let narrow = World::new(Setup {
        only_p256: true,
        ..Setup::default()
    });
    check(
        "algorithm_not_permitted",
        narrow
            .issue(
                narrow.token(email, json!({}), ok_claims()),
                proof(SigningAlgorithm::EcdsaP384Sha384, "alice@example.com"),
            )
            .await,
    );
    let down = World::new(Setup {
        ct_fails: true,
        ..Setup::default()
    });
    check(
        "ct_log",
        down.issue(down.token(email, json!({}), ok_claims()), a())
            .await,
    );
    let wrong = World::new(Setup {
        ct_wrong_key: true,
        ..Setup::default()
    });
    let r = wrong
        .issue(wrong.token(email, json!({}), ok_claims()), a())
        .await;
    assert!(matches!(
        &r,
        Err(IssueError::Ct(CtError::BadSignature { .. }))
    ));
    check("ct_log", r);
    let limited = World::new(Setup {
        identity_limit: true,
        ..Setup::default()
    });
    limited
        .issue(limited.token(email, json!({}), ok_claims()), a())
        .await
        .unwrap();
    check(
        "rate_limited_identity",
        limited
            .issue(limited.token(email, json!({}), ok_claims()), a())
            .await,
    );
    // A verified token whose claims the operator's policy does not allow.
    let strict = World::new(Setup {
        policy: true,
        ..Setup::default()
    });
    let refused = strict
        .issue(strict.token(email, json!({}), ok_claims()), a())
        .await;
    match &refused {
        Err(IssueError::Policy { refusal, .. }) => {
            assert_eq!(refusal.policy(), Some("only-allowed"));
            assert!(refusal.to_string().contains("claim \"email\""), "{refusal}");
        }
        other => panic!("{other:?}"),
    }
    check("policy", refused);
    // The chain of the ephemeral CA is valid for ten years; past that, nothing is issued
    // (the token is minted at the new time, so only the chain is at fault).
    w.clock.advance(Duration::from_secs(11 * 365 * 86_400));
    check("ca_chain_invalid", w.issue(token(), a()).await);
    assert!(w.authority.can_issue().is_err(), "not ready either");

    // A CA whose signer stops working: broken for good, or unreachable for now (an HSM
    // or a KMS that is down: 503, retry).
    for (error, reason) in [
        (crate::model::signer::SignerError::Failed, "ca_backend"),
        (
            crate::model::signer::SignerError::Timeout,
            "ca_signer_unavailable",
        ),
    ] {
        let broken = World::new(Setup::default());
        let root =
            crate::ca::create::ephemeral_root(::time::OffsetDateTime::from(broken.clock.now()))
                .unwrap();
        let ca = CertificateAuthority::new(
            Arc::new(FailingSigner(root.signer, error)),
            vec![root.der],
            crate::ca::Backend::Ephemeral,
            broken.clock.now(),
        )
        .unwrap();
        broken.authority.replace_ca(ca);
        let result = broken
            .issue(broken.token(email, json!({}), ok_claims()), a())
            .await;
        check(reason, result);
    }

    // Every reason the authority reports has a row here.
    for reason in IssueError::REASONS {
        assert!(seen.contains(reason), "no row for {reason}");
    }
}

/// A leaf issued within ten minutes of the chain's end is clamped to it.
#[tokio::test]
async fn a_leaf_never_outlives_its_chain() {
    let w = World::new(Setup::default());
    let (_, end) = w.authority.ca().validity_window();
    w.clock
        .set(std::time::UNIX_EPOCH + Duration::from_secs(end as u64 - 60));
    let issued = w
        .issue(
            w.token(
                "https://email.example",
                json!({}),
                json!({"email": "alice@example.com", "email_verified": true}),
            ),
            p256("alice@example.com"),
        )
        .await
        .unwrap();
    let leaf = leaf_der(&issued);
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    assert_eq!(cert.validity().not_after.timestamp(), end);
}

/// Several logs: the quorum, the grace period, and which SCTs the certificate carries.
#[tokio::test]
async fn several_logs_need_a_quorum_and_embed_in_the_configured_order() {
    let email = "https://email.example";
    let claims = json!({"email": "alice@example.com", "email_verified": true});
    let run = |logs: Vec<FakeLog>, min_scts, embed, grace| {
        let mut w = World::new(Setup::default());
        let ids: Vec<[u8; 32]> = logs.iter().map(|l| *l.advertised.log_id()).collect();
        w.authority = w.authority.with_ct_plan(CtPlan {
            logs: logs
                .into_iter()
                .map(|l| Arc::new(l) as Arc<dyn Submitter>)
                .collect(),
            min_scts,
            embed,
            grace,
        });
        (w, ids)
    };
    let slow = Duration::from_secs(30);
    let ok = || FakeLog::new(false, Duration::ZERO);

    // The first log is slow: with a short grace it is not waited for, and the one SCT
    // embedded is the next log's in the configured order.
    let (w, ids) = run(
        vec![FakeLog::new(false, slow), ok(), ok()],
        2,
        EmbedScts::One,
        Duration::from_millis(1),
    );
    let issued = w
        .issue(
            w.token(email, json!({}), claims.clone()),
            p256("alice@example.com"),
        )
        .await
        .unwrap();
    assert_eq!(issued.sct.as_ref().unwrap().log_id, ids[1]);
    let leaf = leaf_der(&issued);
    let ca = w.authority.ca();
    assert_eq!(
        ct::embedded_scts(&leaf, &ca.chain_der()[0]).unwrap().len(),
        1
    );

    // A log that answers within the grace is waited for; `all` embeds every SCT in the
    // configured order, each verifying with its own log's key.
    let (w, ids) = run(
        vec![FakeLog::new(false, Duration::from_millis(20)), ok(), ok()],
        1,
        EmbedScts::All,
        Duration::from_secs(30),
    );
    let issued = w
        .issue(
            w.token(email, json!({}), claims.clone()),
            p256("alice@example.com"),
        )
        .await
        .unwrap();
    let leaf = leaf_der(&issued);
    let ca = w.authority.ca();
    let scts = ct::embedded_scts(&leaf, &ca.chain_der()[0]).unwrap();
    let got: Vec<[u8; 32]> = scts.iter().map(|s| s.sct.log_id).collect();
    assert_eq!(got, ids);

    // Fewer valid SCTs than required: no certificate, a transient (503) failure.
    let (w, _) = run(
        vec![ok(), FakeLog::new(true, Duration::ZERO), ok()],
        3,
        EmbedScts::One,
        Duration::from_millis(1),
    );
    match w
        .issue(
            w.token(email, json!({}), claims.clone()),
            p256("alice@example.com"),
        )
        .await
    {
        Err(IssueError::Ct(
            e @ CtError::TooFewScts {
                got: 2, want: 3, ..
            },
        )) => {
            assert!(e.is_transient());
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// The embedded log's path for the CA's own precertificates (no parse of the leaf).
mod own_precertificate {
    use crate::ca::CertificateAuthority;
    use crate::ct::log::validate::*;
    use crate::ct::merkle::Hash;
    use crate::ct::sha256;
    use crate::model::extensions::{Extensions, Field};
    use crate::model::keys::PublicKey;
    use crate::model::principal::{Principal, SubjectAltName};
    use crate::model::signer::{LocalSigner, Signer, SigningAlgorithm};

    /// The CA's chain (precertificate first) and the entry the CA holds for it.
    fn own_precertificate() -> (Vec<Vec<u8>>, Hash, Vec<u8>) {
        let now = std::time::SystemTime::now();
        let ca = CertificateAuthority::ephemeral(now).unwrap();
        let secs = now_secs();
        let client = LocalSigner::generate(SigningAlgorithm::EcdsaP256Sha256).unwrap();
        let key = PublicKey::from_spki_der(client.public_key_spki()).unwrap();
        let mut extensions = Extensions::default();
        extensions.set(Field::Issuer, "https://issuer.example.com");
        let principal = Principal {
            challenge: "alice@example.com".into(),
            san: SubjectAltName::email("alice@example.com").unwrap(),
            extensions,
        };
        let leaf = ca.prepare(&principal, &key, secs).unwrap();
        let precert = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(ca.sign_precertificate(&leaf))
            .unwrap();
        let mut chain = vec![precert.der.clone()];
        chain.extend(ca.chain_der().iter().cloned());
        (chain, sha256(ca.issuer_spki()), leaf.tbs(None))
    }

    fn now_secs() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn validator_for(chain: &[Vec<u8>]) -> Validator {
        let root = Root::new(chain.last().unwrap().clone()).unwrap();
        Validator::new(vec![root], true)
    }

    #[test]
    fn the_cas_own_entry_is_the_one_a_full_validation_derives() {
        let (chain, ikh, tbs) = own_precertificate();
        let v = validator_for(&chain);
        let fast = v.own_precertificate(&chain, &ikh, &tbs).unwrap().unwrap();
        let full = v
            .validate(&chain, Kind::Precert, now_secs(), Origin::OwnCa)
            .unwrap();
        assert_eq!(fast.signed_entry(), full.signed_entry());
        assert_eq!(fast.leaf, full.leaf);
        assert_eq!(fast.dedup, full.dedup);
        assert_eq!(fast.issuers, full.issuers);
        assert_eq!(fast.issuer_fingerprints, full.issuer_fingerprints);
        assert_eq!(fast.origin, Origin::OwnCa);
    }

    #[test]
    fn the_cas_own_entry_still_checks_its_issuer_chain() {
        let (chain, ikh, tbs) = own_precertificate();
        let v = validator_for(&chain);
        // Another issuer's key hash than the chain's intermediate.
        let other = [7u8; 32];
        assert!(matches!(
            v.own_precertificate(&chain, &other, &tbs),
            Some(Err(Rejection::WrongIssuer))
        ));
        // A chain under a root this log does not accept.
        let (foreign, foreign_ikh, foreign_tbs) = own_precertificate();
        assert!(
            v.own_precertificate(&foreign, &foreign_ikh, &foreign_tbs)
                .is_none(),
            "a chain not ending at an accepted root goes through the full validation"
        );
        assert!(matches!(
            v.validate(&foreign, Kind::Precert, now_secs(), Origin::OwnCa),
            Err(Rejection::UnknownRoot | Rejection::WrongIssuer | Rejection::BrokenChain(_))
        ));
        // The foreign CA's precertificate under this log's root.
        let mut spliced = foreign.clone();
        *spliced.last_mut().unwrap() = chain.last().unwrap().clone();
        let r = v.own_precertificate(&spliced, &foreign_ikh, &foreign_tbs);
        assert!(matches!(r, Some(Err(Rejection::WrongIssuer))), "{r:?}");
        // No issuer at all, or too long: the full validation answers.
        assert!(v.own_precertificate(&chain[..1], &ikh, &tbs).is_none());
        let long: Vec<Vec<u8>> = std::iter::repeat_n(chain[0].clone(), MAX_CHAIN)
            .chain(chain[1..].iter().cloned())
            .collect();
        assert!(v.own_precertificate(&long, &ikh, &tbs).is_none());
    }
}
