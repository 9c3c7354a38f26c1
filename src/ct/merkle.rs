//! RFC 6962 Merkle trees: hashing, proof generation over any source of complete-subtree
//! hashes, and proof verification (the iterative algorithms of RFC 9162 2.1.3.2/2.1.4.2).

use aws_lc_rs::digest::{Context, SHA256};
use thiserror::Error;

/// Bytes in a SHA-256 hash, as every node of the tree is.
pub(crate) const HASH_LEN: usize = 32;

pub(crate) type Hash = [u8; HASH_LEN];

/// Bytes that are not a whole number of hashes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{0} bytes is not a whole number of {HASH_LEN}-byte hashes")]
pub(crate) struct HashLenError(pub usize);

/// Splits concatenated hashes (a tile, a stored chain) into hashes; the length must be a
/// multiple of [`HASH_LEN`].
pub(crate) fn hashes_from(bytes: &[u8]) -> Result<Vec<Hash>, HashLenError> {
    if !bytes.len().is_multiple_of(HASH_LEN) {
        return Err(HashLenError(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(HASH_LEN)
        .map(|c| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// SHA-256 of the empty string: the root of the empty tree.
pub fn empty_root() -> Hash {
    finish(Context::new(&SHA256))
}

fn finish(c: Context) -> Hash {
    let d = c.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[0]);
    c.update(leaf);
    finish(c)
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[1]);
    c.update(left);
    c.update(right);
    finish(c)
}

/// The largest power of two strictly below `n` (n >= 2).
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Root of a complete tree over `hashes` (length a power of two), or of any list by RFC
/// 6962's split rule.
pub fn root_of(hashes: &[Hash]) -> Hash {
    match hashes.len() {
        0 => empty_root(),
        1 => hashes[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root_of(&hashes[..k]), &root_of(&hashes[k..]))
        }
    }
}

/// The right edge of a tree: the roots of its maximal complete subtrees, left to right.
/// Appending is amortised O(1) hashing; the root folds the edge from the right.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One hash per set bit of `size`, largest subtree first.
    hashes: Vec<Hash>,
}

impl Frontier {
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf by its hash ([`leaf_hash`]: `SHA-256(0x00 || leaf)`).
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut level = 0;
        while self.size >> level & 1 == 1 {
            // The rightmost complete subtree has the same size: merge.
            let left = self.hashes.pop().unwrap_or_default();
            h = node_hash(&left, &h);
            level += 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The Merkle tree hash of every leaf pushed so far; the empty-tree hash when there is none.
    pub fn root(&self) -> Hash {
        let mut iter = self.hashes.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        let mut h = *last;
        for left in iter {
            h = node_hash(left, &h);
        }
        h
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.size.to_be_bytes().to_vec();
        for h in &self.hashes {
            out.extend_from_slice(h);
        }
        out
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<Frontier> {
        let size = u64::from_be_bytes(b.get(..8)?.try_into().ok()?);
        let rest = &b[8..];
        if rest.len() != 32 * size.count_ones() as usize {
            return None;
        }
        let hashes = rest
            .chunks(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Some(Frontier { size, hashes })
    }
}

/// A source of hashes of complete, aligned subtrees: `hash(level, index)` is the root of
/// leaves `[index << level, (index + 1) << level)`.
pub trait SubtreeHashes {
    /// Why a subtree hash could not be had (e.g. a storage error).
    type Error;
    /// The root of the complete subtree of `2^level` leaves at position `index` on that level.
    fn hash(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// MTH of leaves `[start, start + size)`, using complete subtrees where possible.
pub(crate) fn range_hash<S: SubtreeHashes + ?Sized>(
    s: &S,
    start: u64,
    size: u64,
) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    if size.is_power_of_two() && start.is_multiple_of(size) {
        return s.hash(size.trailing_zeros() as u8, start / size);
    }
    let k = split(size);
    let l = range_hash(s, start, k)?;
    let r = range_hash(s, start + k, size - k)?;
    Ok(node_hash(&l, &r))
}

/// RFC 6962 PATH(index, D[size]): the audit path of leaf `index` in the tree of `size`.
pub fn inclusion_proof<S: SubtreeHashes + ?Sized>(
    s: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut out = Vec::new();
    path(s, index, 0, size, &mut out)?;
    Ok(out)
}

fn path<S: SubtreeHashes + ?Sized>(
    s: &S,
    m: u64,
    start: u64,
    n: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(s, m, start, k, out)?;
        out.push(range_hash(s, start + k, n - k)?);
    } else {
        path(s, m - k, start + k, n - k, out)?;
        out.push(range_hash(s, start, k)?);
    }
    Ok(())
}

/// RFC 6962 PROOF(first, D[second]).
pub fn consistency_proof<S: SubtreeHashes + ?Sized>(
    s: &S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut out = Vec::new();
    if first == 0 || first >= second {
        return Ok(out);
    }
    subproof(s, first, 0, second, true, &mut out)?;
    Ok(out)
}

fn subproof<S: SubtreeHashes + ?Sized>(
    s: &S,
    m: u64,
    start: u64,
    n: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if m == n {
        if !complete {
            out.push(range_hash(s, start, n)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(s, m, start, k, complete, out)?;
        out.push(range_hash(s, start + k, n - k)?);
    } else {
        subproof(s, m - k, start + k, n - k, false, out)?;
        out.push(range_hash(s, start, k)?);
    }
    Ok(())
}

/// Why a Merkle inclusion or consistency proof was rejected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProofError {
    /// The leaf index is not below the tree size (index, size).
    #[error("index {0} is not below tree size {1}")]
    IndexOutOfRange(u64, u64),
    /// A leaf hash, proof node or root is not 32 bytes.
    #[error("hash is not 32 bytes")]
    BadHash,
    /// The proof has too many or too few nodes for the tree sizes.
    #[error("proof has the wrong length")]
    WrongLength,
    /// The proof does not lead to the given root (or roots).
    #[error("computed root does not match")]
    RootMismatch,
    /// The first tree size is zero or larger than the second.
    #[error("invalid tree sizes")]
    BadSizes,
}

/// Verifies an inclusion proof (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[Vec<u8>],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange(index, size));
    }
    if leaf.len() != 32 || proof.iter().any(|p| p.len() != 32) {
        return Err(ProofError::BadHash);
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r: Hash = leaf.try_into().map_err(|_| ProofError::BadHash)?;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if r.as_slice() != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof (RFC 9162 2.1.4.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Vec<u8>],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::BadSizes);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    if proof.iter().any(|p| p.len() != 32) || root1.len() != 32 || root2.len() != 32 {
        return Err(ProofError::BadHash);
    }
    let mut path: Vec<&[u8]> = proof.iter().map(Vec::as_slice).collect();
    if size1.is_power_of_two() {
        path.insert(0, root1);
    }
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr: Hash = path[0].try_into().map_err(|_| ProofError::BadHash)?;
    let mut sr = fr;
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr.as_slice() != root1 || sr.as_slice() != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The frontier of the tree of `index + 1` leaves, from a verified inclusion proof of leaf
/// `index` in a larger tree: the proof's left-hand nodes are exactly the complete subtrees
/// covering `[0, index)`. Verifies the proof against `root` first.
pub fn frontier_from_inclusion(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[Vec<u8>],
    root: &[u8],
) -> Result<Frontier, ProofError> {
    verify_inclusion(index, size, leaf, proof, root)?;
    let (mut fn_, mut sn) = (index, size - 1);
    let mut lefts: Vec<&[u8]> = Vec::new();
    for p in proof {
        if fn_ & 1 == 1 || fn_ == sn {
            lefts.push(p);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut bytes = index.to_be_bytes().to_vec();
    for l in lefts.iter().rev() {
        bytes.extend_from_slice(l);
    }
    let mut f = Frontier::from_bytes(&bytes).ok_or(ProofError::WrongLength)?;
    f.push(leaf.try_into().map_err(|_| ProofError::BadHash)?);
    Ok(f)
}

/// Subtree hashes computed from a plain list of leaf hashes (tests, small trees).
pub struct InMemory(pub Vec<Hash>);

impl SubtreeHashes for InMemory {
    type Error = std::convert::Infallible;
    fn hash(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        let start = (index << level) as usize;
        Ok(root_of(&self.0[start..start + (1usize << level)]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_from_an_inclusion_proof_is_the_frontier() {
        let leaves: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let tree = InMemory(leaves.clone());
        for size in 1..=70u64 {
            let root = root_of(&leaves[..size as usize]);
            for index in 0..size {
                let proof: Vec<Vec<u8>> = inclusion_proof(&tree, index, size)
                    .unwrap()
                    .into_iter()
                    .map(|h| h.to_vec())
                    .collect();
                let f =
                    frontier_from_inclusion(index, size, &leaves[index as usize], &proof, &root)
                        .unwrap();
                let mut want = Frontier::default();
                for l in &leaves[..=index as usize] {
                    want.push(*l);
                }
                assert_eq!(f, want, "index {index} size {size}");
            }
            let bad = [0u8; 32];
            assert!(frontier_from_inclusion(0, size, &leaves[0], &[], &bad).is_err());
        }
    }

    #[test]
    fn frontier_matches_recursive_root_and_round_trips() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::default();
        for (n, l) in leaves.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.root(), root_of(&leaves[..=n]), "size {}", n + 1);
            assert_eq!(Frontier::from_bytes(&f.to_bytes()).unwrap(), f);
        }
    }

    #[test]
    fn generated_proofs_verify() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let t = InMemory(leaves.clone());
        for n in 1..=40u64 {
            let root = root_of(&leaves[..n as usize]);
            for m in 0..n {
                let p: Vec<Vec<u8>> = inclusion_proof(&t, m, n)
                    .unwrap()
                    .iter()
                    .map(|h| h.to_vec())
                    .collect();
                verify_inclusion(m, n, &leaves[m as usize], &p, &root).unwrap();
            }
            for m in 1..=n {
                let p: Vec<Vec<u8>> = consistency_proof(&t, m, n)
                    .unwrap()
                    .iter()
                    .map(|h| h.to_vec())
                    .collect();
                verify_consistency(m, n, &p, &root_of(&leaves[..m as usize]), &root).unwrap();
            }
        }
    }
}
