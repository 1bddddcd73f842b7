// Connect the official MCP TypeScript SDK client (@modelcontextprotocol/sdk, unmodified) to
// your own MCP server, as an MCP host would: no token and no registration to start with. The
// SDK follows the 401 challenge to the protected resource and authorization server metadata,
// registers itself (RFC 7591) or uses a client ID metadata document, and runs the code flow
// with PKCE and `resource`. The user's part (sign in, allow) is played over HTTP: each page's
// forms are found by what they hold, not by their URLs: the form with a password field is
// the sign-in (filled with --user and --password, posted to its `action`), the form with a
// `decision` = `allow` button is the consent. Then it lists the tools and calls those named
// with --call; a tool needing a wider scope makes the SDK authorize again (step-up).
//
// Usage (from tests/mcp/node, after `npm ci`):
//   node connect.mjs --url http://127.0.0.1:8080/mcp --user alice --password wonderland \
//     [--scope "mcp:tools"] [--call greet --args '{"name":"Ada"}'] [--call server_stats] \
//     [--client-metadata-url https://…] [--expect-step-up]
// Exit status 0 only if every step held.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

function usage(why) {
  console.error(`${why}\nusage: node connect.mjs --url URL --user NAME --password PASSWORD [--scope SCOPES] [--call TOOL [--args JSON]]... [--client-metadata-url URL] [--expect-step-up]`);
  process.exit(2);
}

// --call may repeat; --args belongs to the --call before it.
const opts = { calls: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const key = argv[i];
  const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${key} needs a value`));
  switch (key) {
    case '--url': opts.url = value(); break;
    case '--user': opts.user = value(); break;
    case '--password': opts.password = value(); break;
    case '--scope': opts.scope = value(); break;
    case '--client-metadata-url': opts.clientMetadataUrl = value(); break;
    case '--expect-step-up': opts.expectStepUp = true; break;
    case '--call': opts.calls.push({ name: value(), args: {} }); break;
    case '--args': {
      const last = opts.calls.at(-1) ?? usage('--args must follow a --call');
      try { last.args = JSON.parse(value()); } catch (e) { usage(`--args is not JSON: ${e.message}`); }
      break;
    }
    default: usage(`unknown argument ${key}`);
  }
}
if (!opts.url || !opts.user || opts.password === undefined) usage('--url, --user and --password are required');

const mcpUrl = new URL(opts.url);
// Nothing listens here: the flow stops at the redirect's Location and reads the code from it.
const REDIRECT_URI = 'http://127.0.0.1:53684/callback';
const CLIENT_NAME = 'twisted-oauth2 connect check (MCP TypeScript SDK)';

function check(cond, what, detail) {
  if (!cond) {
    throw new Error(`FAILED: ${what}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
  console.log(`ok: ${what}`);
}

// Every exchange the SDK makes (method, URL path, status); never a token.
const traffic = [];
async function recordingFetch(input, init) {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
  const response = await fetch(input, init);
  traffic.push({ method, path: url.pathname, status: response.status });
  if (response.status === 403 && /error="insufficient_scope"/.test(response.headers.get('www-authenticate') ?? '')) {
    // Step-up: SDK 1.32 would first refresh, which cannot widen the scope (RFC 6749
    // section 6), then give up; without the refresh token it authorizes for the scope.
    stepUp.pending = true;
  }
  return response;
}
const stepUp = { pending: false };

const unescape = s => s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<')
  .replaceAll('&gt;', '>').replaceAll('&amp;', '&');
function attrs(tag) {
  const out = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    out[m[1].toLowerCase()] = unescape(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}
// The page's forms: action, method, inputs and submit buttons.
function forms(html) {
  return [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].map(([, open, body]) => {
    const a = attrs(open);
    return {
      action: a.action ?? '',
      method: (a.method ?? 'get').toLowerCase(),
      inputs: [...body.matchAll(/<input\b([^>]*)>/gi)].map(m => attrs(m[1])),
      buttons: [...body.matchAll(/<button\b([^>]*)>/gi)].map(m => attrs(m[1])),
    };
  });
}

// A browser stand-in: a cookie jar, no automatic redirects.
class Browser {
  constructor() { this.cookies = new Map(); }
  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    return response;
  }
  submit(pageUrl, form, fields) {
    const target = new URL(form.action || pageUrl, pageUrl);
    check(target.origin === mcpUrl.origin, `the form posts to this server (${target.pathname})`, target.href);
    return this.request(target, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

// The user: follows redirects on the server, signs in, allows; returns the redirect back.
async function signInAndAllow(authorizationUrl) {
  const browser = new Browser();
  let url = new URL(authorizationUrl);
  let response = await browser.request(url);
  for (let step = 0; step < 12; step++) {
    if (response.status >= 300 && response.status < 400) {
      const next = new URL(response.headers.get('location'), url);
      if (next.href.startsWith(REDIRECT_URI)) return next;
      check(next.origin === mcpUrl.origin, 'the browser stays on the server until it is sent back', next.href);
      url = next;
      response = await browser.request(url);
      continue;
    }
    const html = await response.text();
    check(response.ok, `${url.pathname} answers a page`, `${response.status}: ${html.slice(0, 300)}`);
    const page = forms(html);
    const hidden = f => Object.fromEntries(f.inputs.filter(i => i.type === 'hidden' && i.name).map(i => [i.name, i.value ?? '']));
    const login = page.find(f => f.inputs.some(i => i.type === 'password'));
    const consent = page.find(f => f.buttons.some(b => b.name === 'decision' && b.value === 'allow'));
    if (login) {
      const password = login.inputs.find(i => i.type === 'password');
      const user = login.inputs.find(i => i.autocomplete === 'username')
        ?? login.inputs.find(i => ['username', 'user', 'email', 'login'].includes(i.name))
        ?? login.inputs.find(i => (i.type ?? 'text') === 'text' || i.type === 'email');
      check(user?.name, 'the sign-in form has a user name field', login.inputs);
      response = await browser.submit(url, login, { ...hidden(login), [user.name]: opts.user, [password.name]: opts.password });
      check(response.status !== 401 && response.status !== 403, 'signed in (user name and password accepted)', response.status);
    } else if (consent) {
      console.log(`ok: the consent page asks for: ${[...html.matchAll(/class="scope-name">([^<]*)</g)].map(m => unescape(m[1])).join(' ') || '(no scope listed)'}`);
      response = await browser.submit(url, consent, { ...hidden(consent), decision: 'allow' });
    } else {
      check(false, `the page at ${url.pathname} has a sign-in or consent form`, html.slice(0, 300));
    }
  }
  throw new Error('FAILED: too many steps before being sent back to the client');
}

class Provider {
  constructor() {
    if (opts.clientMetadataUrl) this.clientMetadataUrl = opts.clientMetadataUrl;
    this.client = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.authorizations = [];
    this.code = undefined;
  }
  get redirectUrl() { return REDIRECT_URI; }
  get clientMetadata() {
    return {
      client_name: CLIENT_NAME,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...(opts.scope ? { scope: opts.scope } : {}),
    };
  }
  state() { return crypto.randomUUID(); }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() {
    if (stepUp.pending && this.saved) {
      const { refresh_token, ...rest } = this.saved;
      return rest;
    }
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
    stepUp.pending = false;
  }
  async redirectToAuthorization(url) {
    const u = new URL(url);
    this.authorizations.push(u);
    console.log(`ok: authorization requested for scope "${u.searchParams.get('scope') ?? ''}" and resource ${u.searchParams.get('resource') ?? '(none)'}`);
    const back = await signInAndAllow(u);
    check(!back.searchParams.get('error'), 'the server sent back a code, not an error', back.searchParams.get('error_description') ?? back.searchParams.get('error'));
    this.code = back.searchParams.get('code');
    check(this.code, 'the redirect back carries a code');
  }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.saved = undefined;
  }
}

async function main() {
  const provider = new Provider();
  const newTransport = () => new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: recordingFetch });
  const newClient = () => new Client({ name: 'twisted-oauth2-connect', version: '1.0.0' });
  let transport = newTransport();
  let client = newClient();
  // The SDK stops at UnauthorizedError once the user has been sent to authorize; the host
  // then finishes with the code and tries again.
  async function finish(what) {
    check(provider.code, `the SDK sent the user to authorize (${what})`);
    const code = provider.code;
    provider.code = undefined;
    await transport.finishAuth(code);
    console.log(`ok: tokens for scope "${provider.tokens()?.scope ?? ''}" (${what})`);
  }
  try {
    await client.connect(transport);
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    await finish('connect');
    // A fresh connection with the tokens.
    transport = newTransport();
    client = newClient();
    await client.connect(transport);
  }
  async function authorized(what, fn) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
      await finish(what);
      return await fn();
    }
  }
  check(traffic.some(e => e.path === mcpUrl.pathname && e.status === 401), 'the server challenged the first request (401)');
  check(traffic.some(e => e.path.startsWith('/.well-known/oauth-protected-resource') && e.status === 200), 'the SDK read the protected resource metadata');
  check(traffic.some(e => e.path.startsWith('/.well-known/oauth-authorization-server') && e.status === 200), 'the SDK read the authorization server metadata');
  if (opts.clientMetadataUrl) {
    check(provider.client?.client_id === opts.clientMetadataUrl, 'the client_id is the client metadata document URL', provider.client);
  } else {
    check(traffic.some(e => e.method === 'POST' && e.path.endsWith('/register') && e.status === 201), 'the SDK registered itself (RFC 7591)');
  }
  const server = client.getServerVersion();
  console.log(`ok: connected to ${server?.name ?? '?'} ${server?.version ?? ''} (protocol ${transport.protocolVersion ?? '?'})`);

  const tools = await client.listTools();
  console.log(`ok: tools/list offers ${tools.tools.map(t => t.name).join(', ')}`);
  for (const call of opts.calls) {
    check(tools.tools.some(t => t.name === call.name), `the server offers ${call.name}`);
    const before = provider.authorizations.length;
    const result = await authorized(`step-up for ${call.name}`, () => client.callTool({ name: call.name, arguments: call.args }));
    check(result.isError !== true, `${call.name} answered without error`, result);
    const text = result.content?.filter(c => c.type === 'text').map(c => c.text).join(' ');
    console.log(`ok: ${call.name}: ${text}`);
    if (provider.authorizations.length > before) console.log(`ok: ${call.name} needed a wider scope: the SDK authorized again (step-up)`);
  }
  if (opts.expectStepUp) check(provider.authorizations.length > 1, 'a step-up authorization happened');
  await transport.close();
  console.log('connect check: all steps passed');
}

main().catch(e => {
  console.error(e?.stack ?? String(e));
  console.error('traffic:', JSON.stringify(traffic));
  process.exit(1);
});
