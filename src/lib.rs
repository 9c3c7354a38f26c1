//! brevis: a Fulcio-compatible, short-lived code-signing certificate authority with an
//! embedded Certificate Transparency log.
//!
//! Layout (dependencies point inward only):
//! `server -> {api, reload} -> authority -> {oidc, identity, ca, ct} -> model`; `config`,
//! `metrics`, `errors`, `files` and `ratelimit` are leaves. [`server::Server`] is the
//! composition root of `brevis serve`, built from [`server::ServeOptions`] and run with a
//! shutdown future. Everything not needed by the binary, the tests, the benches or the
//! fuzz targets is `pub(crate)`. See ARCHITECTURE.md for the code map and invariants.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod authority;
pub mod ca;
pub mod client;
pub mod config;
pub mod ct;
pub mod errors;
pub mod files;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod grpc;
pub mod identity;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod oidc;
pub mod ratelimit;
pub mod reload;
mod runtime;
pub mod server;
pub mod signers;
pub mod tls;
pub mod trust;
