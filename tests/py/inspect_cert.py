"""Decode certificates with pyca/cryptography, independently of brevis's own code.

stdin: a PEM chain (leaf first). argv[1] (optional): a file with the issuer PEM of the leaf.
stdout: JSON describing the leaf, field by field.
"""
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtensionOID


def describe(cert: x509.Certificate) -> dict:
    pub = cert.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        key = {"type": "EC", "curve": pub.curve.name, "size": pub.key_size}
    elif isinstance(pub, rsa.RSAPublicKey):
        key = {"type": "RSA", "size": pub.key_size, "e": pub.public_numbers().e}
    elif isinstance(pub, ed25519.Ed25519PublicKey):
        key = {"type": "Ed25519"}
    else:
        key = {"type": type(pub).__name__}
    exts = [
        {"oid": e.oid.dotted_string, "critical": e.critical, "value_hex": e.value.public_bytes().hex()
         if hasattr(e.value, "public_bytes") else None}
        for e in cert.extensions
    ]
    out = {
        "version": cert.version.name,
        "serial": str(cert.serial_number),
        "serial_bits": cert.serial_number.bit_length(),
        "not_before": int(cert.not_valid_before_utc.timestamp()),
        "not_after": int(cert.not_valid_after_utc.timestamp()),
        "subject_der_hex": cert.subject.public_bytes().hex(),
        "issuer_der_hex": cert.issuer.public_bytes().hex(),
        "signature_algorithm_oid": cert.signature_algorithm_oid.dotted_string,
        "public_key": key,
        "spki_der_hex": pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex(),
        "extensions": exts,
    }
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        out["san"] = {
            "emails": san.get_values_for_type(x509.RFC822Name),
            "uris": san.get_values_for_type(x509.UniformResourceIdentifier),
            "other_names": [
                {"type_id": o.type_id.dotted_string, "value_hex": o.value.hex()}
                for o in san.get_values_for_type(x509.OtherName)
            ],
        }
    except x509.ExtensionNotFound:
        out["san"] = None
    try:
        ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
        out["key_usage"] = {
            "digital_signature": ku.digital_signature,
            "key_cert_sign": ku.key_cert_sign,
            "content_commitment": ku.content_commitment,
            "key_encipherment": ku.key_encipherment,
        }
    except x509.ExtensionNotFound:
        out["key_usage"] = None
    try:
        eku = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
        out["eku"] = [o.dotted_string for o in eku]
    except x509.ExtensionNotFound:
        out["eku"] = None
    try:
        out["ski_hex"] = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value.digest.hex()
    except x509.ExtensionNotFound:
        out["ski_hex"] = None
    try:
        out["aki_hex"] = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value.key_identifier.hex()
    except x509.ExtensionNotFound:
        out["aki_hex"] = None
    try:
        bc = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)
        out["basic_constraints"] = {"ca": bc.value.ca, "critical": bc.critical}
    except x509.ExtensionNotFound:
        out["basic_constraints"] = None
    return out


def main() -> None:
    chain = x509.load_pem_x509_certificates(sys.stdin.read().encode())
    leaf = chain[0]
    out = describe(leaf)
    issuer = None
    if len(sys.argv) > 1:
        with open(sys.argv[1], "rb") as f:
            issuer = x509.load_pem_x509_certificate(f.read())
    elif len(chain) > 1:
        issuer = chain[1]
    if issuer is not None:
        try:
            leaf.verify_directly_issued_by(issuer)
            out["signed_by_issuer"] = True
        except Exception as e:  # noqa: BLE001 - reported to the test
            out["signed_by_issuer"] = False
            out["verify_error"] = str(e)
        out["issuer_ski_hex"] = describe(issuer)["ski_hex"]
        out["issuer_subject_der_hex"] = issuer.subject.public_bytes().hex()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
