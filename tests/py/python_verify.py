"""Verify certificates brevis issued earlier with sigstore-python's own code: its Verifier
builds and checks each chain against the TrustedRoot (at the certificate's notBefore) and
its verify_sct checks the embedded SCT with the TrustedRoot's CT keyring, which may list
several logs (a log and its frozen predecessor) and several CAs (both sides of a rotation).

usage: python_verify.py TRUST_CONFIG [IDENTITY ISSUER] < leaves.pem
(with IDENTITY and ISSUER, its Identity policy checks each certificate too)
prints JSON: [{"ok": true, "serial": ...} or {"ok": false, "stage": ..., "error": ...}, ...]
"""
import json
import sys
from types import SimpleNamespace

from cryptography import x509
from sigstore._internal.sct import verify_sct
from sigstore._internal.trust import KeyringPurpose
from sigstore.models import ClientTrustConfig
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity


def main() -> None:
    with open(sys.argv[1]) as f:
        trust = ClientTrustConfig.from_json(f.read())
    verifier = Verifier(trusted_root=trust.trusted_root)
    keyring = trust.trusted_root.ct_keyring(KeyringPurpose.VERIFY)
    results = []
    for cert in x509.load_pem_x509_certificates(sys.stdin.read().encode()):
        stage = "verify chain"
        try:
            when = SimpleNamespace(time=cert.not_valid_before_utc)
            chain = verifier._verify_chain_at_time(cert, when)
            stage = "verify SCT"
            verify_sct(cert, chain, keyring)
            if len(sys.argv) > 3:
                stage = "verify identity"
                Identity(identity=sys.argv[2], issuer=sys.argv[3]).verify(cert)
            results.append({"ok": True, "serial": format(cert.serial_number, "x")})
        except Exception as e:  # noqa: BLE001 - reported to the test
            results.append({"ok": False, "stage": stage, "error": type(e).__name__, "message": str(e)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
