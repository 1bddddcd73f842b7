"""The Python MCP SDK client (PyPI `mcp`, unmodified) against the demo's POST /mcp with no
pre-registration: the 401 challenge leads the SDK's OAuthClientProvider (an httpx2 auth flow)
to the protected resource metadata and the authorization server metadata, it registers itself
(RFC 7591) and runs the code flow with PKCE and `resource` (RFC 8707); the demo's login and
consent are driven here over HTTP with a cookie jar. The SDK opens with its `server/discover`
probe at MCP 2026-07-28 (the stateless revision) and must stay there: the probe succeeds, no
`initialize` fallback is sent, and every POST carries the 2026-07-28 headers matching its body.
Then tools/list and tools/call of the clock; once the (short-lived) access token has expired,
the SDK refreshes it by itself and the next call succeeds.

With a client ID metadata document URL as third argument the client registers nothing: its
client_id is that https URL, whose JSON document (served elsewhere) the demo fetches.

Usage: python e2e.py http://127.0.0.1:PORT ACCESS_TOKEN_LIFETIME_SECONDS [https://CLIENT-METADATA-URL]
(the demo must run with that access-token lifetime; exit status 0 only if every step held)
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
from urllib.parse import parse_qs, urljoin, urlparse

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

MODERN = "2026-07-28"  # the stateless MCP revision the SDK must settle on
PROTOCOL_VERSION_META = "io.modelcontextprotocol/protocolVersion"
REDIRECT_URI = "http://127.0.0.1:53683/callback"  # nothing listens: the code is read from Location
CLIENT_NAME = "twisted-oauth2 e2e (MCP Python SDK)"
USER = {"username": "alice", "password": "wonderland"}


def check(cond: object, what: str, detail: object = None) -> None:
    if not cond:
        raise AssertionError(f"FAILED: {what}" + ("" if detail is None else f": {detail!r}"))
    print(f"ok: {what}", flush=True)


class InMemoryStorage(TokenStorage):
    """Client information and tokens for one session, in memory."""

    def __init__(self) -> None:
        self.client_info: OAuthClientInformationFull | None = None
        self.saved_tokens: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.saved_tokens[-1] if self.saved_tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.saved_tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def hidden_input(html: str, name: str) -> str | None:
    m = re.search(f'name="{name}" value="([^"]*)"', html)
    if not m:
        return None
    v = m.group(1)
    for a, b in (("&quot;", '"'), ("&#39;", "'"), ("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&")):
        v = v.replace(a, b)
    return v


class User:
    """The person at the browser: signs in as alice and allows. The SDK's redirect handler
    hands it the authorization URL; its callback handler reads the code it brought back."""

    def __init__(self, base: str, client_metadata_url: str | None) -> None:
        self.base = base
        # A client metadata document's client may be shown by its name or its client_id's host.
        self.names = [CLIENT_NAME] + ([urlparse(client_metadata_url).netloc] if client_metadata_url else [])
        self.authorization_urls: list[str] = []
        self.callback: str | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        # A fresh cookie jar for the browser, and no automatic redirects.
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10) as browser:
            r = await browser.get(authorization_url)
            check(300 <= r.status_code < 400, "the authorization request redirects to the login page", r.status_code)
            login_url = urljoin(self.base, r.headers["location"])
            check(urlparse(login_url).path == "/login", "the redirect leads to /login", login_url)
            page = (await browser.get(login_url)).text
            check('name="username"' in page and 'name="password"' in page, "the login form asks for username and password")
            next_ = hidden_input(page, "next")
            check(next_ and next_.startswith("/consent?request_id="), "the login form leads back to the consent page", next_)
            r = await browser.post(f"{self.base}/login", data={**USER, "next": next_})
            check(r.status_code == 303, "signing in answers 303", r.status_code)
            page = (await browser.get(urljoin(self.base, r.headers["location"]))).text
            check(any(n in page for n in self.names), "the consent page names the client")
            check('name="decision" value="allow"' in page, "the consent page offers Allow")
            request_id = hidden_input(page, "request_id")
            csrf_token = hidden_input(page, "csrf_token")
            check(request_id and csrf_token, "the consent form carries request_id and csrf_token")
            r = await browser.post(
                f"{self.base}/consent",
                data={"request_id": request_id, "csrf_token": csrf_token, "decision": "allow"},
            )
            check(r.status_code == 303, "allowing answers 303 to the client", r.status_code)
            self.callback = r.headers["location"]

    async def callback_handler(self) -> AuthorizationCodeResult:
        check(self.callback and self.callback.startswith(REDIRECT_URI + "?"), "consent lands on the loopback redirect URI", self.callback)
        q = parse_qs(urlparse(self.callback).query)
        check("code" in q, "the redirect carries a code")
        return AuthorizationCodeResult(code=q["code"][0], state=q.get("state", [None])[0], iss=q.get("iss", [None])[0])


def clock_seconds(result: object) -> int:
    check(not result.is_error, "get_time is not an error", result)
    first = result.content[0] if result.content else None
    text = getattr(first, "text", None) if getattr(first, "type", None) == "text" else None
    m = re.fullmatch(r"The demo clock reads (\d+) \(Unix time\)\.", text or "")
    check(m, "get_time answers the clock as text", result.content)
    secs = int(m.group(1))
    check(abs(time.time() - secs) <= 5, "the clock reads the current time", secs)
    return secs


async def main(base: str, lifetime: int, client_metadata_url: str | None) -> None:
    mcp_url = f"{base}/mcp"
    traffic: list[dict] = []

    async def record(response: httpx2.Response) -> None:
        # Method, path, status, and the token request's grant type and resource; never a token.
        req = response.request
        entry = {"method": req.method, "path": req.url.path, "status": response.status_code}
        if req.url.path == "/oauth2/token":
            form = parse_qs(req.content.decode())
            entry["grant_type"] = form.get("grant_type", [None])[0]
            entry["resource"] = form.get("resource", [None])[0]
        if req.method == "POST" and req.url.path == "/mcp":
            # The JSON-RPC method and the MCP headers (no token is in them).
            try:
                body = json.loads(req.content)
            except ValueError:
                body = {}
            entry["rpc"] = body.get("method") if isinstance(body, dict) else None
            entry["body_name"] = (body.get("params") or {}).get("name") if isinstance(body, dict) else None
            entry["body_version"] = (((body.get("params") or {}).get("_meta") or {}).get(PROTOCOL_VERSION_META)) if isinstance(body, dict) else None
            entry["version"] = req.headers.get("mcp-protocol-version")
            entry["mcp_method"] = req.headers.get("mcp-method")
            entry["mcp_name"] = req.headers.get("mcp-name")
            entry["session"] = response.headers.get("mcp-session-id")
        traffic.append(entry)

    def saw(method: str, path: str, status: int) -> bool:
        return any(e["method"] == method and e["path"] == path and e["status"] == status for e in traffic)

    storage = InMemoryStorage()
    user = User(base, client_metadata_url)
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name=CLIENT_NAME,
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=user.redirect_handler,
        callback_handler=user.callback_handler,
        client_metadata_url=client_metadata_url,
    )
    http = httpx2.AsyncClient(auth=provider, timeout=10, event_hooks={"response": [record]})
    try:
        async with http, Client(streamable_http_client(mcp_url, http_client=http)) as client:
            check(saw("POST", "/mcp", 401), "the first POST /mcp is answered 401")
            # /mcp is a resource of its own (route_resources): its document is path-inserted.
            check(saw("GET", "/.well-known/oauth-protected-resource/mcp", 200), "the SDK read the protected resource metadata")
            check(saw("GET", "/.well-known/oauth-authorization-server", 200), "the SDK read the authorization server metadata")
            if client_metadata_url:
                check(
                    provider.context.oauth_metadata.client_id_metadata_document_supported is True,
                    "the demo advertises client_id_metadata_document_supported",
                )
                check(not any(e["path"] == "/oauth2/register" for e in traffic), "the SDK did not register: it uses its client metadata document")
                check(storage.client_info and storage.client_info.client_id == client_metadata_url, "the client_id is the metadata document URL", storage.client_info)
            else:
                check(saw("POST", "/oauth2/register", 201), "the SDK registered itself (RFC 7591)")
                check(storage.client_info and storage.client_info.client_id, "the registration gave a client_id")
            check(len(user.authorization_urls) == 1, "the SDK asked for one authorization")
            auth = urlparse(user.authorization_urls[0])
            q = {k: v[0] for k, v in parse_qs(auth.query).items()}
            check(f"{auth.scheme}://{auth.netloc}{auth.path}" == f"{base}/oauth2/authorize", "the authorization URL is the demo's /oauth2/authorize")
            check(q.get("response_type") == "code", "response_type=code")
            check(q.get("client_id") == storage.client_info.client_id, "the authorization request names the registered client")
            check(q.get("code_challenge_method") == "S256" and len(q.get("code_challenge", "")) == 43, "PKCE with S256")
            check(q.get("redirect_uri") == REDIRECT_URI, "the loopback redirect URI")
            check(q.get("scope") == "VIEW_CLOCK", "the scope of the challenge (VIEW_CLOCK)", q.get("scope"))
            check(q.get("resource", "").rstrip("/") == base + "/mcp", "resource names the protected resource (the MCP endpoint)", q.get("resource"))
            exchange = next((e for e in traffic if e.get("grant_type") == "authorization_code"), None)
            check(exchange and exchange["status"] == 200, "the code exchange succeeded", exchange)
            check(exchange["resource"] == q.get("resource"), "the code exchange sent the same resource", exchange)
            first = storage.saved_tokens[-1]
            check(first.access_token and first.refresh_token, "the SDK holds an access and a refresh token")
            check(first.scope == "VIEW_CLOCK" and first.expires_in == lifetime, "VIEW_CLOCK tokens with the demo's lifetime", (first.scope, first.expires_in))
            # MCP 2026-07-28: the SDK's server/discover probe succeeded and it did not fall back.
            mcp_posts = [e for e in traffic if e["method"] == "POST" and e["path"] == "/mcp"]
            check(
                any(e["rpc"] == "server/discover" and e["status"] == 200 for e in mcp_posts),
                "the server/discover probe was answered 200",
                mcp_posts,
            )
            check(not any(e["rpc"] == "initialize" for e in mcp_posts), "no initialize was sent (no fallback to the handshake era)", mcp_posts)
            check(client.protocol_version == MODERN, "the client stayed on 2026-07-28", client.protocol_version)
            check(
                client.session.discover_result is not None and client.session.initialize_result is None,
                "the client adopted the discover result, not an initialize result",
            )
            check(MODERN in client.session.discover_result.supported_versions, "discover lists 2026-07-28", client.session.discover_result.supported_versions)
            check(client.server_capabilities.tools is not None, "discover: the server offers tools")
            check(client.server_info and client.server_info.name == "twisted-oauth2-demo", "discover: _meta serverInfo names the demo")
            print(f"ok: negotiated protocol version {client.protocol_version}", flush=True)

            tools = await client.list_tools()
            check([t.name for t in tools.tools] == ["get_time"], "tools/list offers get_time", [t.name for t in tools.tools])
            check(tools.tools[0].input_schema.get("type") == "object", "get_time takes an object")
            clock_seconds(await client.call_tool("get_time", {}))

            # Let the access token expire: the demo refuses it, and the SDK refreshes by itself.
            issued = len(storage.saved_tokens)
            await anyio.sleep(lifetime + 1)
            async with httpx2.AsyncClient(timeout=10) as plain:
                r = await plain.post(
                    mcp_url,
                    headers={"Authorization": f"Bearer {first.access_token}", "Accept": "application/json, text/event-stream"},
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                )
            check(r.status_code == 401, "the expired access token opens /mcp no more", r.status_code)
            before = len(traffic)
            clock_seconds(await client.call_tool("get_time", {}))
            after = traffic[before:]
            refresh = next((e for e in after if e.get("grant_type") == "refresh_token"), None)
            check(refresh and refresh["status"] == 200, "the SDK refreshed its tokens", after)
            check(refresh["resource"] == q.get("resource"), "the refresh sent resource", refresh)
            check(len(storage.saved_tokens) > issued, "the refreshed tokens were stored")
            refreshed = storage.saved_tokens[-1]
            check(refreshed.access_token != first.access_token, "a new access token")
            check(refreshed.refresh_token and refreshed.refresh_token != first.refresh_token, "a rotated refresh token")
            check(len(user.authorization_urls) == 1, "no second authorization was needed")
            check(not any(e["path"] == "/oauth2/register" for e in after), "no second registration")
            check(after[-1]["path"] == "/mcp" and after[-1]["status"] == 200, "the call after the refresh succeeded", after[-1])

            # Every request to /mcp was a 2026-07-28 one with headers matching its body; no session.
            mcp_posts = [e for e in traffic if e["method"] == "POST" and e["path"] == "/mcp"]
            rpcs = {e["rpc"] for e in mcp_posts}
            check({"server/discover", "tools/list", "tools/call"} <= rpcs, "discover, tools/list and tools/call went to /mcp", rpcs)
            for e in mcp_posts:
                check(
                    e["version"] == MODERN and e["body_version"] == MODERN and e["mcp_method"] == e["rpc"],
                    f"{e['rpc']}: MCP-Protocol-Version, _meta and Mcp-Method say 2026-07-28 and the method",
                    e,
                )
                if e["rpc"] == "tools/call":
                    check(e["mcp_name"] == e["body_name"] == "get_time", "tools/call: Mcp-Name names the tool", e)
                check(e["session"] is None, f"{e['rpc']}: no Mcp-Session-Id was minted", e)
    except BaseException:
        print(f"traffic: {traffic}", file=sys.stderr)
        raise
    print("mcp python sdk: all steps passed" + (" (client metadata document)" if client_metadata_url else ""), flush=True)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        print(
            "usage: python e2e.py http://127.0.0.1:PORT ACCESS_TOKEN_LIFETIME_SECONDS [https://CLIENT-METADATA-URL]",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        anyio.run(main, sys.argv[1].rstrip("/"), int(sys.argv[2]), sys.argv[3] if len(sys.argv) == 4 else None)
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
