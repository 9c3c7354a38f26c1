//! Domain types only: OIDs and extension encodings, validated keys, principals, PEM/DER,
//! time. No IO, no async, no HTTP.

pub mod clock;
pub mod der;
pub mod extensions;
pub mod keys;
pub mod oid;
pub mod pem;
pub mod principal;

pub use clock::{Clock, SystemClock};
pub use extensions::{Extension, Extensions, Field};
pub use keys::{HashAlg, KeyError, KeyKind, PublicKey, SignatureScheme};
pub use principal::{Principal, SubjectAltName};
pub mod sct;
pub mod signer;
pub mod x509;
