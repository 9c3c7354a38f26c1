"""A gRPC client of brevis generated from brevis's own proto/fulcio.proto with grpcio-tools
(at run time, into a temporary directory), as any client generated from Fulcio's proto is.

usage: grpc_client.py TARGET  (host:port), with a JSON request on stdin:
  {"call": "create" | "bundle" | "config" | "unknown" (a service nobody serves),
   "token": "...", "token_in": "field" | "metadata",
   "key": "public" | "csr" | "none", "challenge": "alice@example.com",
   "tls_ca": "/path/ca.pem" or null, "timeout": 30}
prints JSON: {"ok": true, ...} or {"ok": false, "code": "INVALID_ARGUMENT", "message": ...}
"""
import importlib
import json
import os
import sys
import tempfile

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_tools import protoc

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def stubs():
    out = tempfile.mkdtemp()
    proto_dir = os.path.join(ROOT, "proto")
    rc = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}", f"--grpc_python_out={out}", "fulcio.proto"])
    if rc != 0:
        raise SystemExit(f"protoc failed: {rc}")
    sys.path.insert(0, out)
    return importlib.import_module("fulcio_pb2"), importlib.import_module("fulcio_pb2_grpc")


def main() -> None:
    target = sys.argv[1]
    spec = json.load(sys.stdin)
    pb, rpc = stubs()
    if spec.get("tls_ca"):
        with open(spec["tls_ca"], "rb") as f:
            channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=f.read()))
    else:
        channel = grpc.insecure_channel(target)
    stub = rpc.CAStub(channel)
    timeout = spec.get("timeout", 30)
    try:
        if spec["call"] == "unknown":
            call = channel.unary_unary(
                "/no.such.Service/Method", request_serializer=lambda b: b, response_deserializer=lambda b: b
            )
            call(b"", timeout=timeout)
            json.dump({"ok": True}, sys.stdout)
            return
        if spec["call"] == "bundle":
            r = stub.GetTrustBundle(pb.GetTrustBundleRequest(), timeout=timeout)
            json.dump({"ok": True, "chains": [list(c.certificates) for c in r.chains]}, sys.stdout)
            return
        if spec["call"] == "config":
            r = stub.GetConfiguration(pb.GetConfigurationRequest(), timeout=timeout)
            issuers = [
                {
                    "issuer_url": i.issuer_url,
                    "wildcard_issuer_url": i.wildcard_issuer_url,
                    "audience": i.audience,
                    "issuer_type": i.issuer_type,
                    "challenge_claim": i.challenge_claim,
                }
                for i in r.issuers
            ]
            json.dump({"ok": True, "issuers": issuers}, sys.stdout)
            return
        key = ec.generate_private_key(ec.SECP256R1())
        req = pb.CreateSigningCertificateRequest()
        metadata = []
        if spec.get("token_in", "field") == "field":
            req.credentials.oidc_identity_token = spec["token"]
        else:
            metadata.append(("oidcidentitytoken", spec["token"]))
        if spec.get("key") == "csr":
            csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
            req.certificate_signing_request = csr.public_bytes(serialization.Encoding.PEM)
        elif spec.get("key", "public") == "public":
            pem = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            req.public_key_request.public_key.algorithm = pb.ECDSA
            req.public_key_request.public_key.content = pem.decode()
            req.public_key_request.proof_of_possession = key.sign(
                spec["challenge"].encode(), ec.ECDSA(hashes.SHA256())
            )
        r = stub.CreateSigningCertificate(req, metadata=metadata, timeout=timeout)
        which = r.WhichOneof("certificate")
        chain = list(getattr(r, which).chain.certificates)
        json.dump({"ok": True, "kind": which, "chain": chain}, sys.stdout)
    except grpc.RpcError as e:
        json.dump({"ok": False, "code": e.code().name, "message": e.details()}, sys.stdout)


if __name__ == "__main__":
    main()
