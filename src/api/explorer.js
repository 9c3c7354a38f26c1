// The CT log explorer's one script (src/api/explorer.rs): on a certificate's page it checks,
// with WebCrypto and nothing the server says about the result, that
//   1. the SCT signature verifies with the log's key (over the entry's MerkleTreeLeaf
//      bytes, which are exactly the SCT's signed data for v1),
//   2. the inclusion proof leads from the entry's leaf hash to the checkpoint's root
//      (RFC 9162 section 2.1.3.2),
//   3. the tree head signature over that root verifies with the log's key.
"use strict";

const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};
const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest("SHA-256", b));
const node = (l, r) => sha256(concat(Uint8Array.of(1), l, r));
const u64 = (n) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
};

// A TLS DigitallySigned: hash(1) signature(1) length(2) signature.
function digitallySigned(b) {
  const len = (b[2] << 8) | b[3];
  if (b.length !== 4 + len) throw new Error("malformed DigitallySigned");
  return { hash: b[0], sig: b[1], der: b.slice(4) };
}

// ECDSA DER (SEQUENCE of two INTEGERs) to WebCrypto's r||s.
function derToRaw(der, size) {
  let i = 2;
  if (der[0] !== 0x30) throw new Error("not a DER signature");
  if (der[1] & 0x80) i += der[1] & 0x7f;
  const out = new Uint8Array(size * 2);
  for (let k = 0; k < 2; k++) {
    if (der[i] !== 0x02) throw new Error("not a DER integer");
    const len = der[i + 1];
    let v = der.slice(i + 2, i + 2 + len);
    while (v.length > size && v[0] === 0) v = v.slice(1);
    if (v.length > size) throw new Error("integer too long");
    out.set(v, size * (k + 1) - v.length);
    i += 2 + len;
  }
  return out;
}

async function verifySignature(spki, signed, data) {
  const ds = digitallySigned(signed);
  if (ds.hash !== 4 || ds.sig !== 3) {
    return { ok: null, why: `signature algorithm ${ds.hash}/${ds.sig} is not checked here` };
  }
  const key = await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, derToRaw(ds.der, 32), data);
  return { ok };
}

// RFC 9162 2.1.3.2: the root an inclusion proof leads to.
async function rootFromProof(index, size, leafHash, proof) {
  if (index >= size) throw new Error("index beyond the tree");
  let fn = BigInt(index), sn = BigInt(size) - 1n, r = leafHash;
  for (const p of proof) {
    if (sn === 0n) throw new Error("proof too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await node(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = await node(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("proof too short");
  return r;
}

function show(id, state, text) {
  const el = document.getElementById(id);
  if (!el) return;
  el.textContent = text;
  el.classList.remove("ok", "bad");
  if (state === true) el.classList.add("ok");
  if (state === false) el.classList.add("bad");
  el.dataset.verified = state === true ? "true" : state === false ? "false" : "unknown";
}

async function checkEntry(d) {
  const spki = b64(d.log.public_key);
  const leaf = b64(d.leaf_input);
  try {
    const s = await verifySignature(spki, b64(d.sct.signature), leaf);
    show("sct-status", s.ok, s.ok === null ? `SCT signature: ${s.why}` :
      s.ok ? "SCT signature: verified with the log's key" : "SCT signature: DOES NOT VERIFY");
  } catch (e) {
    show("sct-status", false, `SCT signature: cannot be checked (${e.message})`);
  }
  const inc = d.inclusion;
  const root = b64(inc.root);
  try {
    const leafHash = await sha256(concat(Uint8Array.of(0), leaf));
    const got = await rootFromProof(d.index, inc.tree_size, leafHash, inc.proof.map(b64));
    const ok = hex(got) === hex(root);
    show("proof-status", ok, ok
      ? `Inclusion proof: verified, entry ${d.index} is in the tree of ${inc.tree_size} entries`
      : "Inclusion proof: DOES NOT LEAD TO THE CHECKPOINT'S ROOT");
  } catch (e) {
    show("proof-status", false, `Inclusion proof: invalid (${e.message})`);
  }
  try {
    // TreeHeadSignature: version 0, signature_type tree_hash (1), timestamp, size, root.
    const input = concat(Uint8Array.of(0, 1), u64(inc.tree_head_timestamp), u64(inc.tree_size), root);
    const s = await verifySignature(spki, b64(inc.tree_head_signature), input);
    show("sth-status", s.ok, s.ok === null ? `Checkpoint signature: ${s.why}` :
      s.ok ? "Checkpoint signature: verified with the log's key" : "Checkpoint signature: DOES NOT VERIFY");
  } catch (e) {
    show("sth-status", false, `Checkpoint signature: cannot be checked (${e.message})`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const data = document.getElementById("entry-data");
  if (!data) return;
  if (!globalThis.crypto || !crypto.subtle) {
    show("proof-status", null, "Inclusion proof: not checked (this page is not in a secure context; WebCrypto is unavailable)");
    return;
  }
  checkEntry(JSON.parse(data.textContent));
});
