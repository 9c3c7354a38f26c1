"""Drive sigstore-python's own code against a brevis deployment.

sigstore-python's SigningContext (built from the ClientTrustConfig brevis wrote) asks its
own Fulcio client for a certificate (CSR path, token in the Authorization header), which
runs its own verify_sct on the embedded SCT; then its Verifier builds and checks the chain
against the TrustedRoot, verify_sct runs again for verification, and its Identity and
OIDCIssuerV2 policies read back the identity and issuer.

usage: python_sign.py TRUST_CONFIG TOKEN_FILE EXPECTED_IDENTITY EXPECTED_ISSUER
prints JSON: {"ok": true, ...} or {"ok": false, "error": ..., "stage": ...}
"""
import datetime
import json
import sys
from types import SimpleNamespace

from cryptography.hazmat.primitives import serialization
from sigstore._internal.sct import verify_sct
from sigstore._internal.trust import KeyringPurpose
from sigstore.models import ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity, OIDCIssuerV2


def main() -> None:
    trust_path, token_path, identity, issuer = sys.argv[1:5]
    stage = "load trust config"
    try:
        with open(trust_path) as f:
            trust = ClientTrustConfig.from_json(f.read())
        with open(token_path) as f:
            token = IdentityToken(f.read().strip())
        stage = "request certificate"
        ctx = SigningContext.from_trust_config(trust)
        with ctx.signer(token, cache=True) as signer:
            cert = signer._signing_cert()  # CSR to Fulcio + verify_sct(SIGN keyring)
        stage = "verify chain"
        verifier = Verifier(trusted_root=trust.trusted_root)
        when = SimpleNamespace(time=datetime.datetime.now(datetime.timezone.utc))
        chain = verifier._verify_chain_at_time(cert, when)
        stage = "verify SCT"
        verify_sct(cert, chain, trust.trusted_root.ct_keyring(KeyringPurpose.VERIFY))
        stage = "verify identity"
        Identity(identity=identity, issuer=issuer).verify(cert)
        OIDCIssuerV2(issuer).verify(cert)
    except Exception as e:  # noqa: BLE001 - reported to the test
        json.dump({"ok": False, "stage": stage, "error": type(e).__name__, "message": str(e)}, sys.stdout)
        return
    json.dump(
        {
            "ok": True,
            "chain_length": len(chain),
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
