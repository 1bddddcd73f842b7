// node-oidc-provider as the external authorization server of examples/resource-server
// (tests/tests/e2e_oidc_provider.rs).
//
// Usage: node provider.mjs PORT JWKS_FILE [JWKS_FILE ...]
//
// Binds 127.0.0.1:PORT with the issuer `http://127.0.0.1:PORT`. Its signing keys are the
// private JWKs of the files, in order: the first key signs (with its `alg`), every key is
// published at the JWKS endpoint. A rotation is a restart on the same port with the new key
// file first (`B.json A.json`: B signs, A still published), then `B.json` alone.
// Keys come from `node keys.mjs generate KID ALG`. Tokens live in the default in-memory
// adapter: a restart forgets them (a JWT stays verifiable, an opaque token does not).
//
// Resource indicators (RFC 8707; `resource` on the token request, one per request):
// - https://api.example.com/notes   JWT access tokens (RFC 9068), audience that resource
// - https://other.example.com       JWT access tokens for another audience
// - https://api.example.com/opaque  opaque access tokens, audience that resource (RFC 7662
//                                   introspection tells it)
// each with the scopes `notes:read notes:write`.
//
// Clients (client_secret_basic):
// - cli / cli-secret      client_credentials, tokens valid 10 minutes
// - short / short-secret  client_credentials, tokens valid 1 second (to mint an expired token)
// - rs / rs-secret        no grant: introspection only (the resource server)
// Endpoints: /.well-known/openid-configuration, /jwks, /token, /token/introspection,
// /token/revocation.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [portArg, ...files] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port <= 0 || files.length === 0) {
  console.error('usage: node provider.mjs PORT JWKS_FILE [JWKS_FILE ...]');
  process.exit(2);
}
const keys = files.flatMap((f) => JSON.parse(readFileSync(f, 'utf8')).keys);
const signingAlg = keys[0].alg;
if (!signingAlg) {
  console.error(`the first key (${keys[0].kid}) has no alg`);
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const SCOPE = 'notes:read notes:write';
const jwtFor = (audience) => ({
  scope: SCOPE,
  audience,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: signingAlg } },
});
const resources = new Map([
  ['https://api.example.com/notes', jwtFor('https://api.example.com/notes')],
  ['https://other.example.com', jwtFor('https://other.example.com')],
  ['https://api.example.com/opaque', {
    scope: SCOPE,
    audience: 'https://api.example.com/opaque',
    accessTokenFormat: 'opaque',
  }],
]);

const ccClient = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: SCOPE,
});

const provider = new Provider(issuer, {
  clients: [
    ccClient('cli', 'cli-secret'),
    ccClient('short', 'short-secret'),
    {
      client_id: 'rs',
      client_secret: 'rs-secret',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys },
  // The clients' ID token algorithm must be one the key set can sign (the default is RS256).
  clientDefaults: { id_token_signed_response_alg: signingAlg },
  scopes: SCOPE.split(' '),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Only the resource server introspects; a client revokes only its own tokens.
    introspection: { enabled: true, allowedPolicy: async (_ctx, client) => client.clientId === 'rs' },
    revocation: {
      enabled: true,
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
    resourceIndicators: {
      enabled: true,
      // No `resource` parameter: no resource server (an opaque token without audience).
      defaultResource: async () => undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        const info = resources.get(resourceIndicator);
        if (!info) throw new Provider.errors.InvalidTarget();
        return info;
      },
    },
  },
  ttl: {
    ClientCredentials: (_ctx, _token, client) => (client.clientId === 'short' ? 1 : 600),
  },
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1');
server.on('listening', () => {
  console.log(`node-oidc-provider on ${issuer}, signing with ${keys[0].kid} (${signingAlg}), publishing ${keys.map((k) => k.kid).join(' ')}`);
});
server.on('error', (e) => {
  console.error(`listen: ${e.message}`);
  process.exit(1);
});
