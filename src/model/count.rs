//! Counts of the cryptographic operations brevis performs, so a test can pin one issuance
//! to the crypto floor (`tests/crypto_ops.rs`): a future change that adds a signature, a
//! verification or a key parse to the hot path fails a test instead of a benchmark.
//! Without the `test-support` feature `record` compiles to nothing.

/// A kind of cryptographic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoOp {
    /// A signature made with a key held in memory (CA, CT log), tree heads included.
    Sign,
    /// Of those, a CT log tree head (one per committed batch, shared by its entries).
    SignTreeHead,
    /// An OIDC token signature verified.
    VerifyToken,
    /// A client's proof of possession or CSR self-signature verified.
    VerifyProof,
    /// A CT log signature verified (an SCT or a tree head).
    VerifyLogSignature,
    /// A certificate's signature verified against its issuer (chain validation).
    VerifyCertificate,
    /// A public key parsed from its SubjectPublicKeyInfo.
    ParsePublicKey,
}

impl CryptoOp {
    /// Every kind, in the order [`snapshot`] reports them.
    pub const ALL: [CryptoOp; 7] = [
        CryptoOp::Sign,
        CryptoOp::SignTreeHead,
        CryptoOp::VerifyToken,
        CryptoOp::VerifyProof,
        CryptoOp::VerifyLogSignature,
        CryptoOp::VerifyCertificate,
        CryptoOp::ParsePublicKey,
    ];
}

#[cfg(feature = "test-support")]
static COUNTS: [std::sync::atomic::AtomicU64; 7] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 7];

/// Counts one operation (a no-op without the `test-support` feature).
#[inline(always)]
pub(crate) fn record(op: CryptoOp) {
    #[cfg(feature = "test-support")]
    COUNTS[op as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "test-support"))]
    let _ = op;
}

/// The operations counted so far in this process, in [`CryptoOp::ALL`] order.
#[cfg(feature = "test-support")]
pub fn snapshot() -> [u64; 7] {
    std::array::from_fn(|i| COUNTS[i].load(std::sync::atomic::Ordering::Relaxed))
}
