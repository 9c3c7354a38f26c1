//! The SQLite backend's lookups by hash, kept out of the batch commit.
//!
//! Two questions need an entry found by hash: "was this certificate logged before?"
//! (a resubmission gets its original SCT back) and `get-proof-by-hash`. Both hashes are
//! random, so a B-tree index on them dirties about one page per entry in every batch; on
//! the issuance load benchmark, taking the two indexes out of the batch transaction cut
//! the bytes written per certificate from 21-22 KiB to about 9 KiB (docs/benchmarks.md).
//! Instead:
//!
//! - entries committed by recent batches are found in memory ([`Recent`]), rebuilt from
//!   the entries table at start-up, since the entries themselves are durable;
//! - every [`DEFAULT_INDEX_EVERY`] entries the store writes them to the `lookup` table in
//!   one transaction (after the batch's SCTs went out), sorted, and only then drops them
//!   from memory;
//! - `lookup` rows are keyed by (kind, epoch, 8-byte hash prefix, index), where the epoch
//!   is the entry index divided by 2^[`EPOCH_BITS`], so each flush lands in the small
//!   region of the current epoch instead of all over the table. A lookup probes every
//!   epoch, newest first, and checks the full hash on the entry itself (prefixes may
//!   collide).

use super::LookupKind;
use crate::ct::merkle::Hash;
use std::collections::HashMap;

/// Entries per epoch: 2^16. A flush touches at most the few hundred pages that one epoch
/// of one kind occupies; a lookup in a log of 10 million entries probes 153 epochs.
pub(crate) const EPOCH_BITS: u32 = 16;

/// Entries kept in memory before they are written to the lookup table.
pub(crate) const DEFAULT_INDEX_EVERY: u64 = 4096;

/// One row of the lookup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LookupRow {
    pub kind: u8,
    pub epoch: i64,
    pub prefix: i64,
    pub index: u64,
}

/// The first 8 bytes of a hash as the signed integer SQLite stores.
pub(crate) fn prefix(h: &Hash) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    i64::from_be_bytes(b)
}

pub(crate) fn epoch(index: u64) -> i64 {
    (index >> EPOCH_BITS) as i64
}

/// The epochs to probe for a tree of `tree_size` entries, newest first (resubmissions
/// and proof requests are mostly about recent entries).
pub(crate) fn epochs(tree_size: u64) -> impl Iterator<Item = i64> {
    let last = if tree_size == 0 {
        -1
    } else {
        epoch(tree_size - 1)
    };
    (0..=last).rev()
}

/// Committed entries not yet in the lookup table, by each kind of hash.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    /// Entries below this index are in the lookup table.
    pub indexed_upto: u64,
    /// One past the highest index held (`indexed_upto` when none is).
    end: u64,
    dedup: HashMap<Hash, u64>,
    leaf: HashMap<Hash, u64>,
}

impl Recent {
    pub(crate) fn new(indexed_upto: u64) -> Recent {
        Recent {
            indexed_upto,
            end: indexed_upto,
            ..Recent::default()
        }
    }

    pub(crate) fn insert(&mut self, index: u64, dedup: Hash, leaf_hash: Hash) {
        self.dedup.insert(dedup, index);
        self.leaf.insert(leaf_hash, index);
        self.end = self.end.max(index + 1);
    }

    /// The index of the entry whose hash of `kind` is `h`, if it is held here.
    pub(crate) fn get(&self, kind: LookupKind, h: &Hash) -> Option<u64> {
        match kind {
            LookupKind::Dedup => self.dedup.get(h),
            LookupKind::LeafHash => self.leaf.get(h),
        }
        .copied()
    }

    /// Entries held (each has one hash of each kind, and no two entries share one).
    pub(crate) fn len(&self) -> usize {
        self.leaf.len()
    }

    /// The rows that write every entry held here to the lookup table, sorted, and the
    /// `indexed_upto` they reach.
    pub(crate) fn rows(&self) -> (Vec<LookupRow>, u64) {
        let mut rows: Vec<LookupRow> = [
            (LookupKind::Dedup, &self.dedup),
            (LookupKind::LeafHash, &self.leaf),
        ]
        .into_iter()
        .flat_map(|(kind, map)| map.iter().map(move |(h, &i)| row(kind, h, i)))
        .collect();
        rows.sort_unstable();
        (rows, self.end)
    }

    /// After the rows up to `upto` are durably in the lookup table.
    pub(crate) fn flushed(&mut self, upto: u64) {
        self.dedup.retain(|_, i| *i >= upto);
        self.leaf.retain(|_, i| *i >= upto);
        self.indexed_upto = self.indexed_upto.max(upto);
        self.end = self.end.max(self.indexed_upto);
    }
}

fn row(kind: LookupKind, h: &Hash, index: u64) -> LookupRow {
    LookupRow {
        kind: kind as u8,
        epoch: epoch(index),
        prefix: prefix(h),
        index,
    }
}

/// Sorted lookup rows for `(index, dedup, leaf hash)` entries.
pub(crate) fn rows_for(entries: &[(u64, Hash, Hash)]) -> Vec<LookupRow> {
    let mut rows: Vec<LookupRow> = entries
        .iter()
        .flat_map(|(i, d, l)| {
            [
                row(LookupKind::Dedup, d, *i),
                row(LookupKind::LeafHash, l, *i),
            ]
        })
        .collect();
    rows.sort_unstable();
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_cover_the_tree_newest_first() {
        assert_eq!(epochs(0).count(), 0);
        assert_eq!(epochs(1).collect::<Vec<_>>(), vec![0]);
        assert_eq!(epochs(1 << EPOCH_BITS).collect::<Vec<_>>(), vec![0]);
        assert_eq!(
            epochs((1 << EPOCH_BITS) + 1).collect::<Vec<_>>(),
            vec![1, 0]
        );
    }

    #[test]
    fn recent_entries_are_found_until_flushed() {
        let mut r = Recent::new(10);
        r.insert(10, [1; 32], [2; 32]);
        r.insert(11, [3; 32], [4; 32]);
        assert_eq!(r.get(LookupKind::Dedup, &[3; 32]), Some(11));
        assert_eq!(r.get(LookupKind::LeafHash, &[2; 32]), Some(10));
        let (rows, upto) = r.rows();
        assert_eq!(upto, 12);
        assert_eq!(rows.len(), 4);
        assert!(rows.windows(2).all(|w| w[0] <= w[1]), "sorted");
        r.insert(12, [5; 32], [6; 32]);
        r.flushed(upto);
        assert_eq!(r.indexed_upto, 12);
        assert_eq!(r.get(LookupKind::Dedup, &[3; 32]), None);
        assert_eq!(
            r.get(LookupKind::LeafHash, &[6; 32]),
            Some(12),
            "kept: not in that flush"
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r.rows().1, 13);
        assert_eq!(Recent::new(7).rows(), (vec![], 7), "nothing held");
    }

    #[test]
    fn prefixes_keep_the_byte_order_of_the_hash() {
        let mut a = [0u8; 32];
        a[0] = 0x80;
        assert!(prefix(&a) < 0);
        a[7] = 1;
        assert_eq!(prefix(&a), i64::from_be_bytes([0x80, 0, 0, 0, 0, 0, 0, 1]));
    }
}
