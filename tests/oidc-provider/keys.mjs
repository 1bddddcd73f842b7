// Keys for the node-oidc-provider end-to-end test, made with npm `jose`.
//
//   node keys.mjs generate KID ALG
//       prints a JWKS of one new private key (ALG: ES256, RS256, EdDSA) for provider.mjs
//   node keys.mjs forge ISSUER AUDIENCE SCOPE
//       prints an RFC 9068 access token (typ at+jwt, ES256) for ISSUER and AUDIENCE with SCOPE,
//       valid 10 minutes, signed by a new key nobody publishes (kid "forged-key")
import * as jose from 'jose';

const [cmd, ...args] = process.argv.slice(2);

if (cmd === 'generate' && args.length === 2) {
  const [kid, alg] = args;
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const jwk = await jose.exportJWK(privateKey);
  console.log(JSON.stringify({ keys: [{ ...jwk, kid, alg, use: 'sig' }] }));
} else if (cmd === 'forge' && args.length === 3) {
  const [issuer, audience, scope] = args;
  const { privateKey } = await jose.generateKeyPair('ES256');
  const token = await new jose.SignJWT({ scope, client_id: 'cli' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'forged-key' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject('cli')
    .setJti(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(privateKey);
  console.log(token);
} else {
  console.error('usage: node keys.mjs generate KID ALG | forge ISSUER AUDIENCE SCOPE');
  process.exit(2);
}
