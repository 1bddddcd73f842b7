// Verifies an access token with npm `jose` against a remote JWKS, as a third-party resource
// server would: `node verify.mjs <jwks_uri> <issuer> <audience> <token>`.
// Prints one JSON line: {"ok":true,"header":{...},"payload":{...}} or {"ok":false,"code":"..."}.
import { createRemoteJWKSet, jwtVerify } from "jose";

const [jwksUri, issuer, audience, token] = process.argv.slice(2);
if (!token) {
  console.error("usage: node verify.mjs <jwks_uri> <issuer> <audience> <token>");
  process.exit(2);
}
const jwks = createRemoteJWKSet(new URL(jwksUri));
try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    typ: "at+jwt",
    issuer,
    audience,
    requiredClaims: ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"],
  });
  console.log(JSON.stringify({ ok: true, header: protectedHeader, payload }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, code: e.code ?? String(e) }));
}
