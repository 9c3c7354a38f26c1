// Drive sigstore-js's own code against a brevis deployment.
//
// @sigstore/sign's FulcioSigner requests a certificate through the public-key +
// proof-of-possession path (token in the request body) and signs an artifact; then
// @sigstore/verify's Verifier, loaded with the TrustedRoot brevis wrote, verifies the
// certificate chain and the embedded SCT (ctlogThreshold 1), the artifact signature with
// the certified key, and the identity policy.
//
// usage: node js_sign.mjs FULCIO_URL TRUSTED_ROOT TOKEN_FILE EXPECTED_SAN EXPECTED_ISSUER
// prints JSON: {"ok": true, ...} or {"ok": false, "error": ..., "stage": ...}
import fs from 'node:fs';
import crypto from 'node:crypto';
import { FulcioSigner } from '@sigstore/sign';
import { Verifier, toTrustMaterial } from '@sigstore/verify';
import { X509Certificate } from '@sigstore/core';
import { TrustedRoot } from '@sigstore/protobuf-specs';

const [url, trustPath, tokenPath, san, issuer] = process.argv.slice(2);
const token = fs.readFileSync(tokenPath, 'utf8').trim();
let stage = 'request certificate';
try {
  const signer = new FulcioSigner({
    fulcioBaseURL: url,
    identityProvider: { getToken: async () => token },
    retry: 0,
    timeout: 20000,
  });
  const artifact = Buffer.from('signed by sigstore-js against brevis');
  const sig = await signer.sign(artifact);
  stage = 'load trusted root';
  const trust = toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(trustPath, 'utf8'))));
  const verifier = new Verifier(trust, { ctlogThreshold: 1, tlogThreshold: 0 });
  stage = 'verify chain and SCT';
  const leaf = X509Certificate.parse(sig.key.certificate);
  const signed = verifier.verifySigningKey({ key: { $case: 'certificate', certificate: leaf } }, [new Date()]);
  stage = 'verify signature';
  verifier.verifySignature({
    signature: {
      signature: sig.signature,
      verifySignature: (key) => crypto.verify('sha256', artifact, key, sig.signature),
    },
  }, signed);
  stage = 'verify identity';
  verifier.verifyPolicy({ subjectAlternativeName: san, extensions: { issuer } }, signed.identity);
  console.log(JSON.stringify({ ok: true, certificate: sig.key.certificate, san: signed.identity.subjectAlternativeName }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, stage, error: e.code || e.name, message: String(e.message) }));
}
