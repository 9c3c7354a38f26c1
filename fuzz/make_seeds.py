#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/) from the project's
known-answer vectors (tests/vectors) and a few generated inputs, and the fixed root the
ctlog_submission target validates against (fuzz/data/root.pem; its key is thrown away).

Run with the test environment's Python (it has `cryptography`):
    .venv-test/bin/python fuzz/make_seeds.py
The output is committed; rerunning replaces the generated seeds."""
import base64
import datetime
import hashlib
import json
import os
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = pathlib.Path(__file__).resolve().parent.parent
VEC = ROOT / "tests" / "vectors"
CORPUS = ROOT / "fuzz" / "corpus"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def pem_bytes(path):
    return (VEC / path).read_bytes()


def der_of(pem):
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


# ---- a fixed root for ctlog_submission, and chains under it ---------------------------
start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
end = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
root_key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "brevis fuzz root")])
root = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(root_key.public_key())
    .serial_number(1)
    .not_valid_before(start)
    .not_valid_after(end)
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .add_extension(
        x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
    )
    .sign(root_key, hashes.SHA256())
)
(ROOT / "fuzz" / "data" / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
root_der = root.public_bytes(serialization.Encoding.DER)


def leaf(serial, precert):
    k = ec.generate_private_key(ec.SECP256R1())
    b = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(name)
        .public_key(k.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(f"user{serial}@example.com")]),
            critical=True,
        )
    )
    if precert:
        b = b.add_extension(x509.PrecertPoison(), critical=True)
    return b.sign(root_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def chain_body(certs):
    return json.dumps({"chain": [base64.b64encode(c).decode() for c in certs]})


put("ctlog_submission", "x509-with-root", chain_body([leaf(10, False), root_der]))
put("ctlog_submission", "x509-leaf-only", chain_body([leaf(11, False)]))
put("ctlog_submission", "precert-with-root", chain_body([leaf(12, True), root_der]))
put("ctlog_submission", "precert-leaf-only", chain_body([leaf(13, True)]))
put("ctlog_submission", "empty", '{"chain": []}')
put("ctlog_submission", "ctgo", chain_body([der_of(pem_bytes("ct/ctgo-test-cert.pem")),
                                             der_of(pem_bytes("ct/ctgo-ca-cert.pem"))]))

# ---- der_differential: certificates of every shape --------------------------------------
for p in ["ct/ctgo-test-cert.pem", "ct/ctgo-test-precert.pem", "ct/ctgo-test-embedded-cert.pem",
          "ct/ctgo-ca-cert.pem", "fulcio/fileca/ecdsa-cert.pem", "fulcio/fileca/ed25519-cert.pem",
          "fulcio/fileca/rsa4096-cert.pem", "fulcio/fileca/intermediate-2-cert.pem",
          "fulcio/fileca/openssl-cert.pem"]:
    put("der_differential", p.replace("/", "_"), der_of(pem_bytes(p)))
put("der_differential", "fuzz-root", root_der)
put("der_differential", "fuzz-precert", leaf(20, True))

# ---- keys_and_csr: public keys (PEM and DER), CSRs, CA key files ------------------------
keys = {
    "p256": ec.generate_private_key(ec.SECP256R1()),
    "p384": ec.generate_private_key(ec.SECP384R1()),
    "p521": ec.generate_private_key(ec.SECP521R1()),
    "rsa2048": rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
}
for n, k in keys.items():
    pub = k.public_key()
    put("keys_and_csr", f"{n}.pub.pem", pub.public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    put("keys_and_csr", f"{n}.pub.der", pub.public_bytes(serialization.Encoding.DER,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    algo = None if n == "ed25519" else hashes.SHA256()
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(k, algo)
    put("keys_and_csr", f"{n}.csr.pem", csr.public_bytes(serialization.Encoding.PEM))
    put("keys_and_csr", f"{n}.csr.der", csr.public_bytes(serialization.Encoding.DER))
    put("keys_and_csr", f"{n}.key.pem", k.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
put("keys_and_csr", "rsa.pkcs1.pem", keys["rsa2048"].public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.PKCS1))
put("keys_and_csr", "p256.sec1.pem", keys["p256"].private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption()))
put("keys_and_csr", "p256.encrypted.pem", keys["p256"].private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.BestAvailableEncryption(b"password")))
for p in ["fulcio/fileca/ecdsa-key.pem", "fulcio/fileca/openssl-key.pem"]:
    put("keys_and_csr", p.replace("/", "_"), pem_bytes(p))

# ---- jws: tokens with the claims of every issuer type ----------------------------------
gh = json.loads((VEC / "fulcio/github-actions-full-token.json").read_text())["token_claims"]
claim_sets = {
    "github": gh,
    "email": {"iss": "https://email.example", "aud": "sigstore", "sub": "alice",
              "email": "alice@example.com", "email_verified": True, "exp": 2000000000},
    "k8s": {"iss": "https://k8s.example", "aud": "sigstore", "sub": "system:serviceaccount:ns:sa",
            "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "1"}}},
    "spiffe": {"iss": "https://spiffe.example", "sub": "spiffe://example.org/ns/web"},
    "uri": {"iss": "https://uri.example", "sub": "https://uri.example/users/alice"},
    "gitlab": {"iss": "https://gitlab.example", "sub": "project_path:g/p:ref_type:branch:ref:main",
               "ci_config_ref_uri": "gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main",
               "project_path": "g/p", "namespace_path": "g", "ref": "main", "ref_type": "branch",
               "sha": "a" * 40, "ci_config_sha": "b" * 40, "runner_environment": "gitlab-hosted",
               "project_id": "1", "namespace_id": "2", "pipeline_source": "push", "job_id": "3",
               "project_visibility": "public"},
}
for n, c in claim_sets.items():
    for alg in ["RS256", "ES256"]:
        h = {"alg": alg, "kid": "k1", "typ": "JWT"}
        tok = f"{b64u(json.dumps(h).encode())}.{b64u(json.dumps(c).encode())}.{b64u(b'sig')}"
        put("jws", f"{n}-{alg}", tok)

# ---- jwks_and_discovery -------------------------------------------------------------------
put("jwks_and_discovery", "discovery", json.dumps({
    "issuer": "https://issuer.example", "jwks_uri": "https://issuer.example/jwks",
    "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA", "none", "HS256"]}))
put("jwks_and_discovery", "discovery-http", json.dumps({
    "issuer": "http://127.0.0.1:1", "jwks_uri": "http://127.0.0.1:1/jwks"}))


def jwk_of(k, kid):
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
    pub = k.public_key()
    if isinstance(pub, EllipticCurvePublicKey):
        n = pub.public_numbers()
        size = (pub.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[pub.curve.key_size]
        return {"kty": "EC", "crv": crv, "kid": kid, "use": "sig",
                "x": b64u(n.x.to_bytes(size, "big")), "y": b64u(n.y.to_bytes(size, "big"))}
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(raw)}
    n = pub.public_numbers()
    return {"kty": "RSA", "kid": kid, "alg": "RS256",
            "n": b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
            "e": b64u(n.e.to_bytes(3, "big"))}


put("jwks_and_discovery", "jwks", json.dumps({"keys": [
    jwk_of(keys["p256"], "ec"), jwk_of(keys["p384"], "ec384"), jwk_of(keys["rsa2048"], "rsa"),
    jwk_of(keys["ed25519"], "ed"), {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]}))

# ---- signing_request --------------------------------------------------------------------
csr_b64 = base64.b64encode((CORPUS / "keys_and_csr" / "p256.csr.pem").read_bytes()).decode()
pub_pem = (CORPUS / "keys_and_csr" / "p256.pub.pem").read_text()
put("signing_request", "v2-csr", json.dumps({"credentials": {"oidcIdentityToken": "a.b.c"},
                                              "certificateSigningRequest": csr_b64}))
put("signing_request", "v2-key", json.dumps({"credentials": {"oidcIdentityToken": "a.b.c"},
    "publicKeyRequest": {"publicKey": {"algorithm": "ECDSA", "content": pub_pem},
                         "proofOfPossession": "MEUCIQ=="}}))
put("signing_request", "v2-snake", json.dumps({"public_key_request": {"public_key": {"content": pub_pem},
                                                                     "proof_of_possession": "AA-_"}}))
put("signing_request", "v1", json.dumps({"publicKey": {"content": base64.b64encode(pub_pem.encode()).decode(),
                                                       "algorithm": "ecdsa"},
                                         "signedEmailAddress": "MEUCIQ=="}))

# ---- checkpoint ---------------------------------------------------------------------------
put("checkpoint", "skylight", pem_bytes("static-ct/skylight-rome2026h1-checkpoint"))
put("checkpoint", "argon2020-sth", pem_bytes("static-ct/argon2020-get-sth.json"))
put("checkpoint", "local", "localhost:6962\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n\u2014 localhost:6962 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")

# ---- ct_entry -----------------------------------------------------------------------------
entries = json.loads((VEC / "ct/argon2018-get-entries.json").read_text())
def walk(v, out):
    if isinstance(v, dict):
        li, ed = v.get("leaf_input"), v.get("extra_data")
        if isinstance(li, str):
            out.append((li, ed))
        for x in v.values():
            walk(x, out)
    elif isinstance(v, list):
        for x in v:
            walk(x, out)
found = []
walk(entries, found)
walk(json.loads((VEC / "static-ct/argon2020-get-entries-10000.json").read_text()), found)
written = 0
for li, ed in found:
    try:
        leaf_input = base64.b64decode(li, validate=True)
        extra = base64.b64decode(ed, validate=True) if isinstance(ed, str) else b""
    except Exception:
        continue
    put("ct_entry", f"entry-{written}", leaf_input + extra)
    put("ct_entry", f"leaf-{written}", leaf_input)
    written += 1
    if written == 12:
        break
put("ct_entry", "data-tile", pem_bytes("static-ct/navigli2025h2-tile-data-003.p-10.bin"))

# ---- ctlog_read_params --------------------------------------------------------------------
for i, p in enumerate(["0/000", "1/x001/234", "0/003.p/10", "data/x123/456.p/255", "00/000",
                        "5/x999/x999/x999/x999/x999/x999/999", "0/000.p/0", "start=0&end=255"]):
    put("ctlog_read_params", f"p{i}", p)

# ---- identity_config and ci_template ------------------------------------------------------
put("identity_config", "public-good.yaml", (ROOT / "config/public-good.yaml").read_bytes())
put("identity_config", "identity.yaml", (ROOT / "config/identity.yaml").read_bytes())
put("identity_config", "vectors.yaml", pem_bytes("fulcio/identity-config.yaml"))
cv = json.loads((VEC / "fulcio/config-validation.json").read_text())
n = 0
def configs(v):
    global n
    if isinstance(v, dict):
        for key in ("config", "yaml", "json"):
            if isinstance(v.get(key), str) and "issuer" in v[key]:
                put("identity_config", f"case-{n}", v[key]); n += 1
        for x in v.values():
            configs(x)
    elif isinstance(v, list):
        for x in v:
            configs(x)
configs(cv)
tv = json.loads((VEC / "fulcio/ciprovider-templates.json").read_text())
templates = set()
def tmpl(v):
    if isinstance(v, str) and "{{" in v:
        templates.add(v)
    elif isinstance(v, dict):
        for x in v.values():
            tmpl(x)
    elif isinstance(v, list):
        for x in v:
            tmpl(x)
tmpl(tv)
tmpl(json.loads((ROOT / "tests/vectors/fulcio/public-good-issuers.json").read_text()))
for i, t in enumerate(sorted(templates)[:40]):
    put("ci_template", f"t{i}", t.encode() + b"\0" + json.dumps(gh).encode())

# ---- merkle_differential ------------------------------------------------------------------
for i, b in enumerate([b"\x00\x01\x00\x00", b"\x00\x07\x03\x05", b"\x01\x00\xff\x10", b"\x02\xbb\x80\x40\x01\x02"]):
    put("merkle_differential", f"m{i}", b)

print("seeds written to", CORPUS)
