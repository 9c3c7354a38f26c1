//! A deliberately small DER writer and reader.
//!
//! brevis builds its leaf `TBSCertificate` by hand so that the extension order is exactly
//! Fulcio's and the precertificate and final certificate share their bytes by construction.
//! This module holds the only encoding primitives that work needs; nothing here allocates
//! more than the output.

use thiserror::Error;

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_IA5_STRING: u8 = 0x16;
pub(crate) const TAG_UTC_TIME: u8 = 0x17;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// Context-specific, constructed tag `[n]`.
pub const fn context_constructed(n: u8) -> u8 {
    0xa0 | n
}

/// Context-specific, primitive tag `[n]`.
pub(crate) const fn context_primitive(n: u8) -> u8 {
    0x80 | n
}

/// Appends a DER length.
pub fn write_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends one TLV.
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    write_len(out, content.len());
    out.extend_from_slice(content);
}

/// One TLV as a new vector.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    write_tlv(&mut out, tag, content);
    out
}

/// A constructed TLV whose content is the concatenation of `parts`.
pub(crate) fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    write_len(&mut out, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// SEQUENCE TLV around `parts`, each an already-encoded element, in order.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    constructed(TAG_SEQUENCE, parts)
}

pub(crate) fn octet_string(content: &[u8]) -> Vec<u8> {
    tlv(TAG_OCTET_STRING, content)
}

/// UTF8String TLV holding `s`.
pub fn utf8_string(s: &str) -> Vec<u8> {
    tlv(TAG_UTF8_STRING, s.as_bytes())
}

/// BIT STRING with zero unused bits.
pub fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 7);
    out.push(TAG_BIT_STRING);
    write_len(&mut out, content.len() + 1);
    out.push(0);
    out.extend_from_slice(content);
    out
}

/// INTEGER from big-endian unsigned magnitude bytes (minimal, non-negative encoding).
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let m = &magnitude[skip..];
    if m.is_empty() {
        return vec![TAG_INTEGER, 1, 0];
    }
    let pad = m[0] & 0x80 != 0;
    let mut out = Vec::with_capacity(m.len() + 4);
    out.push(TAG_INTEGER);
    write_len(&mut out, m.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(m);
    out
}

/// Encodes an OBJECT IDENTIFIER TLV from its arcs (tests build OIDs brevis never emits).
#[cfg(test)]
pub(crate) fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::with_capacity(arcs.len() * 2);
    // The first two arcs share one sub-identifier; every OID used here has at least two.
    let first = arcs[0] * 40 + arcs.get(1).copied().unwrap_or(0);
    push_base128(&mut body, first);
    for arc in arcs.iter().skip(2) {
        push_base128(&mut body, *arc);
    }
    tlv(TAG_OID, &body)
}

#[cfg(test)]
fn push_base128(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    let n = tmp.len();
    for (k, b) in tmp[i..].iter().enumerate() {
        out.push(if i + k + 1 < n { b | 0x80 } else { *b });
    }
}

/// Decodes the content of an OID TLV into dotted text.
pub fn oid_to_string(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut v: u64 = 0;
    for b in content {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        }
    }
    arcs.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// DER that could not be read; the message says what was wrong (e.g. `"truncated header"`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("malformed DER: {0}")]
pub struct DerError(pub &'static str);

/// One parsed TLV borrowed from its input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    /// Content bytes.
    pub content: &'a [u8],
    /// The whole encoding, header included.
    pub raw: &'a [u8],
}

/// Reads one TLV from the front of `input`, returning it and the remaining bytes.
/// Only single-byte tags and definite lengths are accepted, as DER requires.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), DerError> {
    if input.len() < 2 {
        return Err(DerError("truncated header"));
    }
    let tag = input[0];
    if tag & 0x1f == 0x1f {
        return Err(DerError("multi-byte tags are not supported"));
    }
    let (len, header) = match input[1] {
        l if l < 0x80 => (usize::from(l), 2),
        0x80 => return Err(DerError("indefinite length")),
        l => {
            let n = usize::from(l & 0x7f);
            if n > 4 || input.len() < 2 + n {
                return Err(DerError("bad length"));
            }
            let mut len = 0usize;
            for b in &input[2..2 + n] {
                len = (len << 8) | usize::from(*b);
            }
            if len < 0x80 || input[2] == 0 {
                return Err(DerError("non-minimal length"));
            }
            (len, 2 + n)
        }
    };
    let end = header
        .checked_add(len)
        .filter(|e| *e <= input.len())
        .ok_or(DerError("content runs past the end"))?;
    Ok((
        Tlv {
            tag,
            content: &input[header..end],
            raw: &input[..end],
        },
        &input[end..],
    ))
}

/// Reads exactly one TLV with the expected tag and nothing after it.
pub(crate) fn read_single(input: &[u8], tag: u8) -> Result<Tlv<'_>, DerError> {
    let (t, rest) = read_tlv(input)?;
    if t.tag != tag {
        return Err(DerError("unexpected tag"));
    }
    if !rest.is_empty() {
        return Err(DerError("trailing bytes"));
    }
    Ok(t)
}

/// Splits a constructed value's content into its child TLVs.
pub(crate) fn children(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, DerError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (t, rest) = read_tlv(content)?;
        out.push(t);
        content = rest;
    }
    Ok(out)
}

/// Returns `tbs` with the extension identified by `oid_tlv` removed, re-encoding every length.
/// Returns `None` when the TBS has no such extension. This is how RFC 6962 verifiers rebuild
/// a precertificate's TBS from a final certificate, and how brevis checks its own output.
pub(crate) fn tbs_without_extension(
    tbs: &[u8],
    oid_tlv: &[u8],
) -> Result<Option<Vec<u8>>, DerError> {
    let seq = read_single(tbs, TAG_SEQUENCE)?;
    let fields = children(seq.content)?;
    let mut found = false;
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(fields.len());
    for f in fields {
        if f.tag != context_constructed(3) {
            parts.push(f.raw.to_vec());
            continue;
        }
        let exts = read_single(f.content, TAG_SEQUENCE)?;
        let mut kept: Vec<&[u8]> = Vec::new();
        for ext in children(exts.content)? {
            let inner = children(ext.content)?;
            if inner.first().map(|o| o.raw) == Some(oid_tlv) {
                found = true;
            } else {
                kept.push(ext.raw);
            }
        }
        if !kept.is_empty() {
            let list = sequence(&kept);
            parts.push(tlv(context_constructed(3), &list));
        }
    }
    if !found {
        return Ok(None);
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    Ok(Some(sequence(&refs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        let mut v = Vec::new();
        write_len(&mut v, 0x7f);
        write_len(&mut v, 0x80);
        write_len(&mut v, 0x1234);
        assert_eq!(v, [0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(unsigned_integer(&[0, 0, 1]), [2, 1, 1]);
        assert_eq!(unsigned_integer(&[0x80]), [2, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[]), [2, 1, 0]);
    }

    #[test]
    fn oids_round_trip() {
        let o = oid(&[1, 3, 6, 1, 4, 1, 57264, 1, 8]);
        assert_eq!(hex::encode(&o), "060a2b0601040183bf300108");
        let t = read_single(&o, TAG_OID).unwrap();
        assert_eq!(oid_to_string(t.content), "1.3.6.1.4.1.57264.1.8");
        assert_eq!(
            hex::encode(oid(&[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3])),
            "060a2b06010401d679020403"
        );
    }

    #[test]
    fn reader_rejects_bad_input() {
        assert!(read_tlv(&[0x30]).is_err());
        assert!(read_tlv(&[0x30, 0x80, 0, 0]).is_err());
        assert!(read_tlv(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).is_err());
        assert!(read_tlv(&[0x30, 0x05, 0]).is_err());
        assert!(read_single(&[0x05, 0x00, 0x00], TAG_NULL).is_err());
    }
}
