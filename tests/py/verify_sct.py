"""Verify the SCTs embedded in a certificate with pyca/cryptography, independently of
brevis: rebuild the RFC 6962 precertificate entry (issuer key hash + TBS without the SCT
list) and check each ECDSA signature against the log's key.

stdin: PEM chain, leaf first, its issuer second. argv[1]: the CT log's public key (PEM).
stdout: JSON {"scts": [{"log_id_matches", "verified", "timestamp_ms", "extensions_hex"}]}.
"""
import datetime
import hashlib
import json
import struct
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def millis(ts: datetime.datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=datetime.timezone.utc)
    return int(ts.timestamp() * 1000 + 0.5)


def main() -> None:
    chain = x509.load_pem_x509_certificates(sys.stdin.read().encode())
    leaf, issuer = chain[0], chain[1]
    with open(sys.argv[1], "rb") as f:
        log_key = serialization.load_pem_public_key(f.read())
    spki = log_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    log_id = hashlib.sha256(spki).digest()
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).digest()
    tbs = leaf.tbs_precertificate_bytes
    scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    out = []
    for sct in scts:
        ts = millis(sct.timestamp)
        ext = sct.extension_bytes
        signed = (
            struct.pack(">BBQH", 0, 0, ts, 1)
            + issuer_key_hash
            + struct.pack(">I", len(tbs))[1:]
            + tbs
            + struct.pack(">H", len(ext))
            + ext
        )
        try:
            log_key.verify(sct.signature, signed, ec.ECDSA(hashes.SHA256()))
            ok = True
        except InvalidSignature:
            ok = False
        out.append({
            "log_id_matches": sct.log_id == log_id,
            "verified": ok,
            "timestamp_ms": ts,
            "extensions_hex": ext.hex(),
            "entry_type": sct.entry_type.name,
        })
    json.dump({"scts": out}, sys.stdout)


if __name__ == "__main__":
    main()
