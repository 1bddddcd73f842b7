// The official MCP TypeScript SDK client (@modelcontextprotocol/sdk, unmodified) against the
// demo's POST /mcp with no pre-registration: the 401 challenge leads the SDK to the protected
// resource metadata and the authorization server metadata, it registers itself (RFC 7591),
// starts the code flow with PKCE and `resource` (RFC 8707), and after the demo's login and
// consent (driven here over HTTP with a cookie jar) exchanges the code, lists and calls the
// clock tool; a revoked access token then makes it refresh and call again.
//
// With a client ID metadata document URL as second argument the client registers nothing: its
// client_id is that https URL, whose JSON document (served elsewhere) the demo fetches.
//
// Usage: node e2e.mjs http://127.0.0.1:PORT [https://CLIENT-METADATA-URL]
// (exit status 0 only if every step held)

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const base = process.argv[2];
if (!base) {
  console.error('usage: node e2e.mjs http://127.0.0.1:PORT [https://CLIENT-METADATA-URL]');
  process.exit(2);
}
const clientMetadataUrl = process.argv[3];
const mcpUrl = new URL('/mcp', base);
// The RFC 9728 `resource` of /mcp, which the SDK names in `resource` (RFC 8707).
const mcpResource = `${base}/mcp`;
// Nothing listens here: the flow stops at the redirect's Location and reads the code from it.
const REDIRECT_URI = 'http://127.0.0.1:53682/callback';
const CLIENT_NAME = 'twisted-oauth2 e2e (MCP TypeScript SDK)';
const USER = { username: 'alice', password: 'wonderland' };

function check(cond, what, detail) {
  if (!cond) {
    throw new Error(`FAILED: ${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
  }
  console.log(`ok: ${what}`);
}

// Every HTTP exchange the SDK makes (method, path, status, and the token request's grant
// type and resource), recorded by the fetch handed to the transport. Never a token value.
const traffic = [];
async function recordingFetch(input, init) {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
  const entry = { method, path: url.pathname };
  if (url.pathname === '/oauth2/token' && init?.body) {
    const form = new URLSearchParams(String(init.body));
    entry.grant_type = form.get('grant_type');
    entry.resource = form.get('resource');
  }
  const response = await fetch(input, init);
  entry.status = response.status;
  traffic.push(entry);
  return response;
}
const saw = (method, path, status) =>
  traffic.some(e => e.method === method && e.path === path && (status === undefined || e.status === status));

// A browser stand-in for the user's part: a cookie jar, no automatic redirects.
class Browser {
  constructor() {
    this.cookies = new Map();
  }
  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    return response;
  }
  get(url) {
    return this.request(url);
  }
  post(url, fields) {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

function hiddenInput(html, name) {
  const m = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  return m && m[1].replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<').replaceAll('&gt;', '>');
}

// The user signs in and allows: returns the redirect to the client (its Location).
async function loginAndConsent(authorizationUrl) {
  const browser = new Browser();
  let r = await browser.get(authorizationUrl);
  check(r.status >= 300 && r.status < 400, 'the authorization request redirects to the login page', r.status);
  const loginUrl = new URL(r.headers.get('location'), base);
  check(loginUrl.pathname === '/login', 'the redirect leads to /login', loginUrl.pathname);
  const loginPage = await (await browser.get(loginUrl)).text();
  check(loginPage.includes('name="username"') && loginPage.includes('name="password"'), 'the login form asks for username and password');
  const next = hiddenInput(loginPage, 'next');
  check(next?.startsWith('/consent?request_id='), 'the login form leads back to the consent page', next);
  r = await browser.post(new URL('/login', base), { username: USER.username, password: USER.password, next });
  check(r.status === 303, 'signing in answers 303', r.status);
  const consentUrl = new URL(r.headers.get('location'), base);
  const consentPage = await (await browser.get(consentUrl)).text();
  // A client metadata document's client may be shown by its name or by its client_id's host.
  const names = clientMetadataUrl ? [CLIENT_NAME, new URL(clientMetadataUrl).host] : [CLIENT_NAME];
  check(names.some(n => consentPage.includes(n)), 'the consent page names the client', consentPage.slice(0, 300));
  check(consentPage.includes('name="decision" value="allow"'), 'the consent page offers Allow');
  const request_id = hiddenInput(consentPage, 'request_id');
  const csrf_token = hiddenInput(consentPage, 'csrf_token');
  check(request_id && csrf_token, 'the consent form carries request_id and csrf_token');
  r = await browser.post(new URL('/consent', base), { request_id, csrf_token, decision: 'allow' });
  check(r.status === 303, 'allowing answers 303 to the client', r.status);
  return new URL(r.headers.get('location'));
}

// The OAuthClientProvider: everything in memory, as a CLI client would keep it for a session.
class InMemoryProvider {
  constructor() {
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this.client = undefined;
    this.savedTokens = [];
    this.verifier = undefined;
    this.lastState = undefined;
    this.authorizationUrls = [];
    this.callback = undefined;
    this.invalidated = [];
  }
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata() {
    return {
      client_name: CLIENT_NAME,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this.lastState = crypto.randomUUID();
    return this.lastState;
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.savedTokens.at(-1);
  }
  saveTokens(tokens) {
    this.savedTokens.push(tokens);
  }
  async redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
    this.callback = await loginAndConsent(url);
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    if (!this.verifier) throw new Error('no code verifier saved');
    return this.verifier;
  }
  invalidateCredentials(scope) {
    this.invalidated.push(scope);
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.savedTokens = [];
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
  }
}

async function connect(provider) {
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: 'twisted-oauth2-e2e', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

function clockSeconds(result) {
  check(result.isError !== true, 'get_time is not an error', result);
  const text = result.content?.[0]?.type === 'text' ? result.content[0].text : undefined;
  const m = text?.match(/^The demo clock reads (\d+) \(Unix time\)\.$/);
  check(m, 'get_time answers the clock as text', result.content);
  const secs = Number(m[1]);
  const now = Math.floor(Date.now() / 1000);
  check(Math.abs(now - secs) <= 5, 'the clock reads the current time', { secs, now });
  return secs;
}

async function main() {
  const provider = new InMemoryProvider();

  // 1. No token: the SDK is challenged, discovers, registers and sends the user to authorize.
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: recordingFetch });
  let refused;
  try {
    await new Client({ name: 'twisted-oauth2-e2e', version: '1.0.0' }).connect(first);
  } catch (e) {
    refused = e;
  }
  check(refused instanceof UnauthorizedError, 'connecting without a token ends in UnauthorizedError (user authorization needed)', String(refused));
  check(saw('POST', '/mcp', 401), 'the first POST /mcp is answered 401');
  // /mcp is a resource of its own (route_resources): its document is path-inserted.
  check(saw('GET', '/.well-known/oauth-protected-resource/mcp', 200), 'the SDK read the protected resource metadata named by the challenge');
  check(saw('GET', '/.well-known/oauth-authorization-server', 200), 'the SDK read the authorization server metadata');
  if (clientMetadataUrl) {
    const asMetadata = await (await fetch(new URL('/.well-known/oauth-authorization-server', base))).json();
    check(asMetadata.client_id_metadata_document_supported === true, 'the demo advertises client_id_metadata_document_supported');
    check(!traffic.some(e => e.path === '/oauth2/register'), 'the SDK did not register: it uses its client metadata document');
    check(provider.client?.client_id === clientMetadataUrl, 'the client_id is the metadata document URL', provider.client);
  } else {
    check(saw('POST', '/oauth2/register', 201), 'the SDK registered itself (RFC 7591)');
    check(provider.client?.client_id, 'the registration gave a client_id');
  }
  check(provider.authorizationUrls.length === 1, 'the SDK asked for one authorization');

  const auth = provider.authorizationUrls[0];
  const q = auth.searchParams;
  check(auth.origin + auth.pathname === `${base}/oauth2/authorize`, 'the authorization URL is the demo\'s /oauth2/authorize', auth.href);
  check(q.get('response_type') === 'code', 'response_type=code');
  check(q.get('client_id') === provider.client.client_id, 'the authorization request names the registered client');
  check(q.get('code_challenge_method') === 'S256' && /^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge') ?? ''), 'PKCE with S256');
  check(q.get('redirect_uri') === REDIRECT_URI, 'the loopback redirect URI');
  check(q.get('scope') === 'VIEW_CLOCK', 'the scope of the challenge (VIEW_CLOCK)', q.get('scope'));
  check(q.get('resource') === mcpResource, 'resource is the protected resource metadata\'s resource (the MCP endpoint)', q.get('resource'));
  check(q.get('state') === provider.lastState, 'state is the provider\'s');

  const callback = provider.callback;
  check(callback?.origin + callback?.pathname === REDIRECT_URI, 'consent lands on the loopback redirect URI', callback?.href);
  check(callback.searchParams.get('state') === provider.lastState, 'the redirect carries the state');
  check(callback.searchParams.get('iss') === base, 'the redirect carries iss (RFC 9207)');
  const code = callback.searchParams.get('code');
  check(code, 'the redirect carries a code');

  // 2. The code for tokens (PKCE verifier, resource), then a fresh connection.
  await first.finishAuth(code);
  const exchange = traffic.find(e => e.path === '/oauth2/token' && e.grant_type === 'authorization_code');
  check(exchange?.status === 200, 'the code exchange succeeded', exchange);
  check(exchange.resource === mcpResource, 'the code exchange sent resource', exchange.resource);
  const firstTokens = provider.tokens();
  check(firstTokens?.access_token && firstTokens?.refresh_token, 'the SDK holds an access and a refresh token');
  check(firstTokens.token_type?.toLowerCase() === 'bearer' && firstTokens.scope === 'VIEW_CLOCK', 'Bearer tokens for VIEW_CLOCK', { token_type: firstTokens.token_type, scope: firstTokens.scope });

  const { client, transport } = await connect(provider);
  check(client.getServerCapabilities()?.tools, 'initialize: the server offers tools');
  check(client.getServerVersion()?.name === 'twisted-oauth2-demo', 'initialize: serverInfo names the demo');
  // SDK 1.32 speaks the handshake era; the demo serves it beside 2026-07-28.
  check(transport.protocolVersion === '2025-11-25', 'initialize negotiated 2025-11-25', transport.protocolVersion);
  const tools = await client.listTools();
  check(tools.tools.length === 1 && tools.tools[0].name === 'get_time', 'tools/list offers get_time', tools.tools.map(t => t.name));
  check(tools.tools[0].inputSchema?.type === 'object', 'get_time takes an object');
  clockSeconds(await client.callTool({ name: 'get_time', arguments: {} }));

  // 3. Revoke the access token (as the public client it was issued to): the next call is
  //    refused, and the SDK refreshes by itself and calls again.
  const revoke = await fetch(new URL('/oauth2/revoke', base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: firstTokens.access_token, token_type_hint: 'access_token', client_id: provider.client.client_id }).toString(),
  });
  check(revoke.status === 200, 'the access token is revoked', revoke.status);
  const refusedNow = await fetch(mcpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${firstTokens.access_token}` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  check(refusedNow.status === 401, 'the revoked token opens /mcp no more', refusedNow.status);
  const before = traffic.length;
  clockSeconds(await client.callTool({ name: 'get_time', arguments: {} }));
  const after = traffic.slice(before);
  check(after.some(e => e.method === 'POST' && e.path === '/mcp' && e.status === 401), 'the call with the revoked token got 401');
  const refresh = after.find(e => e.path === '/oauth2/token' && e.grant_type === 'refresh_token');
  check(refresh?.status === 200, 'the SDK refreshed its tokens', refresh);
  check(refresh.resource === mcpResource, 'the refresh sent resource', refresh.resource);
  const refreshed = provider.tokens();
  check(refreshed.access_token !== firstTokens.access_token, 'a new access token');
  check(refreshed.refresh_token && refreshed.refresh_token !== firstTokens.refresh_token, 'a rotated refresh token');
  check(provider.authorizationUrls.length === 1, 'no second authorization was needed');
  check(!after.some(e => e.path === '/oauth2/register'), 'no second registration');
  check(after.at(-1).method === 'POST' && after.at(-1).path === '/mcp' && after.at(-1).status === 200, 'the retried call succeeded');

  await client.ping();
  console.log('ok: ping');
  await transport.close();
  console.log(`mcp typescript sdk: all steps passed${clientMetadataUrl ? ' (client metadata document)' : ''}`);
}

main().catch(e => {
  console.error(e?.stack ?? String(e));
  console.error('traffic:', JSON.stringify(traffic));
  process.exit(1);
});
