//! brevis: a Fulcio-compatible, short-lived code-signing certificate authority with an
//! embedded Certificate Transparency log.
//!
//! Layout (dependencies point inward only):
//! `api -> authority -> {oidc, identity, ca, ct} -> model`; `config` and `metrics` are
//! leaves used by all; `serve` wires everything together for `brevis serve`.
//! See ARCHITECTURE.md for the code map and invariants.

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
pub mod identity;
pub mod metrics;
pub mod model;
pub mod oidc;
pub mod ratelimit;
pub mod reload;
pub mod server;
pub mod tls;
pub mod trust;
