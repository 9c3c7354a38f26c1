//! Configuration: the Fulcio-format identity config and the client algorithm allow-list.
//! The only module that knows the YAML/JSON shapes of brevis's files.

pub mod algorithms;
pub mod identity;
pub mod load;

pub use algorithms::AlgorithmRegistry;
pub use identity::{ConfigError, IdentityConfig, IssuerConfig, IssuerType};
pub use load::{LoadError, load_identity_config};

/// The identity configuration Fulcio falls back to when no file exists: the public
/// Sigstore OAuth proxy, Google and GitHub Actions.
pub const BUILTIN_IDENTITY_CONFIG: &str = r#"
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
