//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; never in a release
//! build). Each takes arbitrary bytes, feeds them to a parser that sees network or file
//! input, and panics only when an invariant breaks: a parser may refuse anything, but it
//! must not crash, hang or disagree with an independent implementation.

use crate::api::ctlog::{parse_chain_request, parse_tile_level};
use crate::api::json;
use crate::authority::ParsedCsr;
use crate::config::IdentityConfig;
use crate::ct::checkpoint::{GetSth, SignedTreeHead};
use crate::ct::log::{Kind, Origin, Root, TileHashes, TreeState, Validator};
use crate::ct::merkle::{self, Hash, InMemory};
use crate::ct::{LogPublicKey, entry, tiles};
use crate::identity::Identities;
use crate::identity::template::Template;
use crate::model::sct::DigitallySigned;
use crate::model::{PublicKey, der, pem};
use crate::oidc::keys::{Discovery, usable_keys};
use crate::oidc::token::UnverifiedToken;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::LazyLock;

static ALL_TYPES: LazyLock<(IdentityConfig, Identities)> = LazyLock::new(|| {
    let cfg = IdentityConfig::parse(crate::config::EVERY_ISSUER_TYPE)
        .expect("the fuzzing issuer set parses");
    let ids = Identities::new(&cfg).expect("and compiles");
    (cfg, ids)
});

static PUBLIC_GOOD: LazyLock<(IdentityConfig, Identities)> = LazyLock::new(|| {
    let cfg = IdentityConfig::parse(include_str!("../config/public-good.yaml"))
        .expect("the public-good config parses");
    let ids = Identities::new(&cfg).expect("and compiles");
    (cfg, ids)
});

/// A compact JWS and its claims: routing parse, then every principal builder (every
/// issuer type and every CI provider template of the public-good configuration).
pub fn jws(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(token) = UnverifiedToken::parse(text) else {
        return;
    };
    let _ = token.issuer();
    for (cfg, ids) in [&*ALL_TYPES, &*PUBLIC_GOOD] {
        for issuer in cfg.issuers.iter().chain(cfg.meta_issuers.iter()) {
            if let Ok(p) = ids.principal(issuer, &token.claims) {
                // Whatever a principal holds must encode.
                let _ = p.san.extension().to_der();
                let _ = p.extensions.render();
            }
        }
    }
}

/// A discovery document and a JWKS, as an issuer serves them.
pub fn jwks_and_discovery(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Map<String, Value>>(data) else {
        return;
    };
    for issuer in ["https://issuer.example", "http://127.0.0.1:1"] {
        if let Ok(d) = Discovery::parse(issuer, &doc) {
            assert!(!d.algorithms.is_empty(), "RS256 is the default");
            assert!(crate::oidc::fetch::document_url_allowed(
                issuer,
                &d.jwks_uri
            ));
        }
    }
    for key in usable_keys(&doc) {
        for (_, alg) in crate::oidc::keys::SUPPORTED {
            if key.fits(alg) {
                let _ = key.verify("e30.e30", "c2ln", alg);
            }
        }
    }
}

/// A client's public key (PEM or DER), a CSR (PEM, or DER wrapped into PEM), and a CA
/// key file.
pub fn keys_and_csr(data: &[u8]) {
    if let Ok(key) = PublicKey::from_content(data) {
        // A key that parsed re-encodes canonically and parses again to the same kind.
        let again = PublicKey::from_spki_der(key.spki_der()).expect("canonical SPKI parses");
        assert_eq!(again.kind(), key.kind());
        let _ = key.verify_proof(b"challenge", data);
    }
    if let Ok(csr) = ParsedCsr::parse(data) {
        let _ = csr.key.verify(csr.scheme, &csr.info, &csr.signature);
    }
    let wrapped = pem::encode("CERTIFICATE REQUEST", data);
    if let Ok(csr) = ParsedCsr::parse(wrapped.as_bytes()) {
        let _ = csr.key.verify(csr.scheme, &csr.info, &csr.signature);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pem::parse_all(text);
        let _ = crate::ca::keyfile::load(text, None);
        let _ = crate::ca::keyfile::load(text, Some("password"));
    }
}

/// The v2 and v1 request bodies.
pub fn signing_request(data: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<json::CreateSigningCertificateRequest>(data) {
        if let Some(csr) = &r.certificate_signing_request {
            let _ = pem::decode_proto_bytes(csr);
        }
        if let Some(pk) = &r.public_key_request {
            if let Some(p) = &pk.proof_of_possession {
                let _ = pem::decode_proto_bytes(p);
            }
            if let Some(c) = pk.public_key.as_ref().and_then(|k| k.content.as_ref()) {
                let _ = PublicKey::from_content(c.as_bytes());
            }
        }
    }
    if let Ok(r) = serde_json::from_slice::<json::LegacyRequest>(data) {
        for field in [&r.certificate_signing_request, &r.signed_email_address]
            .into_iter()
            .flatten()
        {
            let _ = pem::decode_proto_bytes(field);
        }
    }
}

/// A self-signed root the submission target validates against; seeds in
/// `fuzz/corpus/ctlog_submission` chain to it.
const FUZZ_ROOT: &str = include_str!("../fuzz/data/root.pem");

static VALIDATOR: LazyLock<Validator> = LazyLock::new(|| {
    let der = pem::parse_first(FUZZ_ROOT).expect("fuzz root PEM").der;
    Validator::new(vec![Root::new(der).expect("fuzz root parses")], true)
});

/// An `add-chain` / `add-pre-chain` body through chain validation, as both kinds.
pub fn ctlog_submission(data: &[u8]) {
    let Ok(chain) = parse_chain_request(data) else {
        return;
    };
    // 2026-01-01: inside the seeds' validity.
    let now = 1_767_225_600;
    for kind in [Kind::X509, Kind::Precert] {
        if let Ok(sub) = VALIDATOR.validate(&chain, kind, now, Origin::Network) {
            assert_eq!(sub.kind(), kind);
            assert_eq!(sub.dedup, crate::ct::sha256(&chain[0]));
            assert!(!sub.issuers.is_empty());
        }
    }
}

/// Tile paths and read parameters of the log's listener.
pub fn ctlog_read_params(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (level, rest) = text.split_once('/').unwrap_or((text, ""));
    if let Some(l) = parse_tile_level(level) {
        assert_eq!(l.to_string(), level);
    }
    if let Some((index, width)) = tiles::decode_path(rest) {
        assert!((1..=tiles::TILE_WIDTH).contains(&width));
        // Only canonical paths decode: encoding gives back the same text.
        assert_eq!(tiles::path(Some(0), index, width), format!("tile/0/{rest}"));
    }
    for part in text.split('&') {
        let _ = part.parse::<u64>();
    }
}

static FUZZ_LOG_KEY: LazyLock<LogPublicKey> = LazyLock::new(|| {
    LogPublicKey::from_pem(include_str!(
        "../tests/vectors/static-ct/argon2020-log-public-key.pem"
    ))
    .expect("vector key")
});

/// Signed notes (checkpoints) and `get-sth` answers.
pub fn checkpoint(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for origin in ["ct.googleapis.com/logs/argon2020", "localhost:6962"] {
            let _ = SignedTreeHead::from_checkpoint(text, origin, &FUZZ_LOG_KEY);
        }
    }
    if let Ok(j) = serde_json::from_slice::<GetSth>(data)
        && let Some(sth) = SignedTreeHead::from_json(&j)
    {
        let _ = sth.verify(&FUZZ_LOG_KEY);
        assert_eq!(SignedTreeHead::from_json(&sth.to_json()), Some(sth));
    }
    if let Ok(ds) = DigitallySigned::from_tls(data) {
        assert_eq!(DigitallySigned::from_tls(&ds.to_tls()).ok(), Some(ds));
    }
}

/// Log entries as a monitor parses them: `leaf_input` + `extra_data`, and data tiles.
pub fn ct_entry(data: &[u8]) {
    if let Ok(e) = entry::parse_leaf_input(data) {
        let _ = e.leaf_hash();
        // What the monitor and the explorer read from it.
        let _ = crate::ct::facts::of_entry(&e);
    }
    for cut in [data.len() / 2, data.len() / 3] {
        let (leaf, extra) = data.split_at(cut);
        if let Ok(e) = entry::parse_leaf_input(leaf) {
            let _ = entry::parse_extra_data(&e.entry, extra);
        }
    }
    let whole = entry::parse_data_tile(data);
    // The monitor's per-leaf split agrees with the strict parse wherever that succeeds.
    if let Ok(leaves) = &whole {
        let split = entry::split_data_tile(data).expect("a tile that parses also splits");
        assert_eq!(split.len(), leaves.len());
        for (a, b) in split.iter().zip(leaves) {
            assert_eq!(a.as_ref().ok(), Some(b));
        }
    } else {
        let _ = entry::split_data_tile(data);
    }
}

/// The identity configuration (YAML or JSON), compiled as `brevis serve` does.
pub fn identity_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = IdentityConfig::parse(text) else {
        return;
    };
    if let Ok(ids) = Identities::new(&cfg) {
        for i in cfg.issuers.iter().chain(cfg.meta_issuers.iter()) {
            let _ = crate::identity::describe(&ids, i);
            if let Some(m) = cfg.meta_issuers.first() {
                let _ = crate::oidc::meta_regex(&m.key);
            }
        }
    }
}

/// A CI-provider template and the claims it renders (split at the first NUL byte).
pub fn ci_template(data: &[u8]) {
    let (source, claims) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    let Ok(template) = Template::parse(source) else {
        return;
    };
    let claims: Map<String, Value> = serde_json::from_slice(claims).unwrap_or_default();
    let vars = claims
        .iter()
        .map(|(k, v)| (k.clone(), crate::identity::claims::stringify(v)))
        .collect();
    let _ = template.render(&vars);
}

/// RFC 6962's recursive definitions, written out as the RFC states them: the reference
/// the tile-backed proofs are compared with.
mod reference {
    use crate::ct::merkle::{Hash, node_hash, root_of, split};

    pub(crate) fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
        if d.len() <= 1 {
            return Vec::new();
        }
        let k = split(d.len() as u64) as usize;
        if m < k {
            let mut p = path(m, &d[..k]);
            p.push(root_of(&d[k..]));
            p
        } else {
            let mut p = path(m - k, &d[k..]);
            p.push(root_of(&d[..k]));
            p
        }
    }

    pub(crate) fn proof(m: usize, d: &[Hash]) -> Vec<Hash> {
        subproof(m, d, true)
    }

    fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        if m == d.len() {
            return if b { Vec::new() } else { vec![root_of(d)] };
        }
        let k = split(d.len() as u64) as usize;
        if m <= k {
            let mut p = subproof(m, &d[..k], b);
            p.push(root_of(&d[k..]));
            p
        } else {
            let mut p = subproof(m - k, &d[k..], false);
            p.push(root_of(&d[..k]));
            p
        }
    }

    /// Keeps `node_hash` in the reference's vocabulary (root_of uses it).
    pub(crate) fn _node(a: &Hash, b: &Hash) -> Hash {
        node_hash(a, b)
    }
}

/// Merkle proofs: the log's tile-backed proofs and in-memory proofs must equal the RFC's
/// recursive definitions, and verify.
pub fn merkle_differential(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let n = 1 + (u16::from_be_bytes([data[0], data[1]]) as usize % 700);
    let leaves: Vec<Hash> = (0..n as u32)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    // Tiles exactly as the sequencer stores them.
    let mut state = TreeState::unsigned_empty();
    let mut tiles: HashMap<(u8, u64), Vec<u8>> = HashMap::new();
    // Append in batches whose sizes come from the input, as batches of a real log do.
    let mut at = 0;
    let mut sizes = data[2..].iter().cycle();
    while at < n {
        let step = (1 + *sizes.next().unwrap_or(&1) as usize).min(n - at);
        for (level, index, bytes) in state.append_leaves(&leaves[at..at + step]) {
            tiles.insert((level, index), bytes);
        }
        at += step;
    }
    let root = merkle::root_of(&leaves);
    assert_eq!(state.frontier.root(), root);
    let from_tiles = TileHashes::new(&tiles);
    let memory = InMemory(leaves.clone());
    let m = data[2] as usize % n;
    let size = m + 1 + data[3] as usize % (n - m);
    let want = reference::path(m, &leaves[..size]);
    let got = merkle::inclusion_proof(&from_tiles, m as u64, size as u64).expect("tiles");
    assert_eq!(got, want, "inclusion {m} in {size} from tiles");
    let Ok(got) = merkle::inclusion_proof(&memory, m as u64, size as u64);
    assert_eq!(got, want, "inclusion {m} in {size} in memory");
    let size_root = merkle::root_of(&leaves[..size]);
    let as_vecs: Vec<Vec<u8>> = want.iter().map(|h| h.to_vec()).collect();
    merkle::verify_inclusion(m as u64, size as u64, &leaves[m], &as_vecs, &size_root)
        .expect("a correct inclusion proof verifies");
    let first = 1 + m % size;
    let want = reference::proof(first, &leaves[..size]);
    let got = merkle::consistency_proof(&from_tiles, first as u64, size as u64).expect("tiles");
    assert_eq!(got, want, "consistency {first} -> {size}");
    let as_vecs: Vec<Vec<u8>> = want.iter().map(|h| h.to_vec()).collect();
    merkle::verify_consistency(
        first as u64,
        size as u64,
        &as_vecs,
        &merkle::root_of(&leaves[..first]),
        &size_root,
    )
    .expect("a correct consistency proof verifies");
    // A tampered proof never verifies.
    if let Some(h) = as_vecs.first() {
        let mut bad = as_vecs.clone();
        let mut h = h.clone();
        h[0] ^= 1;
        bad[0] = h;
        assert!(
            merkle::verify_consistency(
                first as u64,
                size as u64,
                &bad,
                &merkle::root_of(&leaves[..first]),
                &size_root
            )
            .is_err()
        );
    }
}

/// The hand-written DER reader against x509-parser: for a certificate x509-parser
/// accepts (with nothing after it: x509-parser returns trailing bytes, brevis refuses
/// them), the TBS brevis cuts out is x509-parser's, and removing any one extension
/// leaves a TBS x509-parser still parses, with that extension gone.
pub fn der_differential(data: &[u8]) {
    use x509_parser::prelude::*;
    let cert = match parse_x509_certificate(data) {
        Ok(([], cert)) => cert,
        Ok(_) => {
            // Trailing bytes: x509-parser hands them back, brevis's reader refuses them.
            assert!(crate::model::x509::tbs_of(data).is_err());
            return;
        }
        Err(_) => {
            let _ = der::read_tlv(data);
            let _ = der::children(data);
            return;
        }
    };
    let tbs = match crate::model::x509::tbs_of(data) {
        Ok(tbs) => tbs,
        Err(_) => {
            // x509-parser also accepts a SEQUENCE whose tag lacks the constructed bit
            // (0x10 for 0x30), which is not DER; brevis's reader refuses it (the log then
            // refuses the submission). Any other disagreement is a finding.
            let tbs_tag = cert.tbs_certificate.as_ref().first().copied();
            assert!(
                data.first() != Some(&0x30) || tbs_tag != Some(0x30),
                "brevis refused a DER certificate x509-parser accepted"
            );
            return;
        }
    };
    assert_eq!(tbs, cert.tbs_certificate.as_ref());
    for ext in cert.extensions() {
        let oid_tlv = der::tlv(der::TAG_OID, ext.oid.as_bytes());
        let unique = cert
            .extensions()
            .iter()
            .filter(|e| e.oid == ext.oid)
            .count()
            == 1;
        let Ok(Some(without)) = der::tbs_without_extension(tbs, &oid_tlv) else {
            continue;
        };
        if !unique {
            continue;
        }
        if let Ok((_, t)) = TbsCertificate::from_der(&without) {
            assert!(t.extensions().iter().all(|e| e.oid != ext.oid));
            assert_eq!(t.extensions().len() + 1, cert.extensions().len());
        }
    }
}
