//! Configuration: the Fulcio-format identity config and the client algorithm allow-list.
//! The only module that knows the YAML/JSON shapes of brevis's files.

pub mod algorithms;
pub mod identity;
pub(crate) mod load;
pub mod policy;

pub use algorithms::AlgorithmRegistry;
pub use identity::{ConfigError, IdentityConfig, IssuerConfig, IssuerType};
pub use load::{LoadError, load_identity_config, load_issuance_policy};
pub use policy::IssuancePolicy;

/// The identity configuration Fulcio falls back to when no file exists: the public
/// Sigstore OAuth proxy, Google and GitHub Actions.
pub(crate) const BUILTIN_IDENTITY_CONFIG: &str = r#"
oidc-issuers:
  https://oauth2.sigstore.dev/auth:
    issuer-url: https://oauth2.sigstore.dev/auth
    client-id: sigstore
    type: email
    issuer-claim: $.federated_claims.connector_id
  https://accounts.google.com:
    issuer-url: https://accounts.google.com
    client-id: sigstore
    type: email
  https://token.actions.githubusercontent.com:
    issuer-url: https://token.actions.githubusercontent.com
    client-id: sigstore
    type: github-workflow
"#;

/// An identity configuration with one issuer of every built-in type (`email`, `uri`,
/// `username`, `spiffe`, `kubernetes` and the legacy CI types): what the authority's
/// tests and the fuzz targets run tokens through.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) const EVERY_ISSUER_TYPE: &str = r#"
oidc-issuers:
  https://email.example:
    issuer-url: https://email.example
    client-id: sigstore
    type: email
  https://uri.example:
    issuer-url: https://uri.example
    client-id: sigstore
    type: uri
    subject-domain: https://uri.example
  https://username.example:
    issuer-url: https://username.example
    client-id: sigstore
    type: username
    subject-domain: username.example
  https://spiffe.example:
    issuer-url: https://spiffe.example
    client-id: sigstore
    type: spiffe
    spiffe-trust-domain: example.org
  https://k8s.example:
    issuer-url: https://k8s.example
    client-id: sigstore
    type: kubernetes
  https://github.example:
    issuer-url: https://github.example
    client-id: sigstore
    type: github-workflow
  https://gitlab.example:
    issuer-url: https://gitlab.example
    client-id: sigstore
    type: gitlab-pipeline
  https://buildkite.example:
    issuer-url: https://buildkite.example
    client-id: sigstore
    type: buildkite-job
  https://codefresh.example:
    issuer-url: https://codefresh.example
    client-id: sigstore
    type: codefresh-workflow
  https://chainguard.example:
    issuer-url: https://chainguard.example
    client-id: sigstore
    type: chainguard-identity
"#;
