// Verify certificates brevis issued earlier (over gRPC, say) with sigstore-js's own
// Verifier loaded with the TrustedRoot: chain, embedded SCT (ctlogThreshold 1) and the
// identity policy, at the certificate's notBefore.
//
// usage: node js_verify.mjs TRUSTED_ROOT CERT_PEM EXPECTED_SAN EXPECTED_ISSUER
// prints JSON: {"ok": true, "san": ...} or {"ok": false, "error": ..., "stage": ...}
import fs from 'node:fs';
import { Verifier, toTrustMaterial } from '@sigstore/verify';
import { X509Certificate } from '@sigstore/core';
import { TrustedRoot } from '@sigstore/protobuf-specs';

const [trustPath, certPath, san, issuer] = process.argv.slice(2);
let stage = 'load trusted root';
try {
  const trust = toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(trustPath, 'utf8'))));
  const verifier = new Verifier(trust, { ctlogThreshold: 1, tlogThreshold: 0 });
  stage = 'verify chain and SCT';
  const leaf = X509Certificate.parse(fs.readFileSync(certPath, 'utf8'));
  const signed = verifier.verifySigningKey({ key: { $case: 'certificate', certificate: leaf } }, [leaf.notBefore]);
  stage = 'verify identity';
  verifier.verifyPolicy({ subjectAlternativeName: san, extensions: { issuer } }, signed.identity);
  console.log(JSON.stringify({ ok: true, san: signed.identity.subjectAlternativeName }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, stage, error: e.code || e.name, message: String(e.message) }));
}
