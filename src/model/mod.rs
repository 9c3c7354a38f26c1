//! Domain types only: OIDs and extension encodings, validated keys, principals, PEM/DER,
//! time. No IO, no async, no HTTP.

pub(crate) mod clock;
pub mod count;
pub mod der;
pub mod extensions;
pub mod keys;
pub mod oid;
pub mod pem;
pub mod principal;

pub use clock::{Clock, FixedClock, ManualClock, SystemClock};
pub use extensions::{Extension, Extensions, Field};
pub(crate) use keys::{HashAlg, KeyError, KeyKind, PublicKey, SignatureScheme};
pub(crate) use principal::{Principal, SubjectAltName};
pub mod sct;
pub mod signer;
pub mod x509;

/// A boxed, sendable future: the return type of the async methods on object-safe traits
/// (log stores, submitters, OIDC fetchers, signers).
pub(crate) type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
