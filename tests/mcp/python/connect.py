"""Connect the Python MCP SDK client (PyPI `mcp`, unmodified) to your own MCP server, as an
MCP host would: no token and no registration to start with. The SDK's OAuthClientProvider
follows the 401 challenge to the metadata, registers itself (RFC 7591) or uses a client ID
metadata document, and runs the code flow with PKCE and `resource`. The user's part is played
over HTTP: the form with a password field is the sign-in (posted to its `action` with --user
and --password), the form with a `decision` = `allow` button is the consent. Then it lists the
tools and calls those named with --call; a tool needing a wider scope makes the SDK authorize
again by itself (step-up).

Usage (with the venv of tests/mcp/python/requirements.txt):
  python connect.py --url http://127.0.0.1:8080/mcp --user alice --password wonderland \
    [--scope "mcp:tools"] [--call greet --args '{"name": "Ada"}'] [--call server_stats] \
    [--client-metadata-url https://...] [--expect-step-up]
Exit status 0 only if every step held.
"""

from __future__ import annotations

import argparse
import html as htmllib
import json
import re
import sys
import traceback
from urllib.parse import parse_qs, urljoin, urlparse

import anyio
import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://127.0.0.1:53685/callback"  # nothing listens: the code is read from Location
CLIENT_NAME = "twisted-oauth2 connect check (MCP Python SDK)"


def check(cond: object, what: str, detail: object = None) -> None:
    if not cond:
        raise AssertionError(f"FAILED: {what}" + ("" if detail is None else f": {detail!r}"))
    print(f"ok: {what}", flush=True)


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.client_info: OAuthClientInformationFull | None = None
        self.tokens: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens[-1] if self.tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def attrs(tag: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(r"""([a-zA-Z_:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""", tag):
        out[m.group(1).lower()] = htmllib.unescape(m.group(2) or m.group(3) or m.group(4) or "")
    return out


def forms(page: str) -> list[dict]:
    found = []
    for m in re.finditer(r"<form\b([^>]*)>(.*?)</form>", page, re.S | re.I):
        a = attrs(m.group(1))
        found.append({
            "action": a.get("action", ""),
            "inputs": [attrs(i.group(1)) for i in re.finditer(r"<input\b([^>]*)>", m.group(2), re.I)],
            "buttons": [attrs(b.group(1)) for b in re.finditer(r"<button\b([^>]*)>", m.group(2), re.I)],
        })
    return found


class User:
    """The person at the browser: signs in and allows, whatever the pages' URLs."""

    def __init__(self, origin: str, user: str, password: str) -> None:
        self.origin, self.user, self.password = origin, user, password
        self.authorizations: list[str] = []
        self.callback: str | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorizations.append(authorization_url)
        q = parse_qs(urlparse(authorization_url).query)
        print(f"ok: authorization requested for scope {q.get('scope', [''])[0]!r} and resource {q.get('resource', ['(none)'])[0]}", flush=True)
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10) as browser:
            url = authorization_url
            r = await browser.get(url)
            for _ in range(12):
                if 300 <= r.status_code < 400:
                    nxt = urljoin(url, r.headers["location"])
                    if nxt.startswith(REDIRECT_URI):
                        self.callback = nxt
                        return
                    check(nxt.startswith(self.origin + "/"), "the browser stays on the server until it is sent back", nxt)
                    url = nxt
                    r = await browser.get(url)
                    continue
                check(r.status_code == 200, f"{urlparse(url).path} answers a page", (r.status_code, r.text[:300]))
                page = forms(r.text)
                hidden = lambda f: {i["name"]: i.get("value", "") for i in f["inputs"] if i.get("type") == "hidden" and i.get("name")}
                login = next((f for f in page if any(i.get("type") == "password" for i in f["inputs"])), None)
                consent = next((f for f in page if any(b.get("name") == "decision" and b.get("value") == "allow" for b in f["buttons"])), None)
                if login:
                    pw = next(i for i in login["inputs"] if i.get("type") == "password")
                    user = next((i for i in login["inputs"] if i.get("autocomplete") == "username"), None) or next(
                        (i for i in login["inputs"] if i.get("name") in ("username", "user", "email", "login")), None)
                    check(user and user.get("name"), "the sign-in form has a user name field", login["inputs"])
                    target = urljoin(url, login["action"] or url)
                    r = await browser.post(target, data={**hidden(login), user["name"]: self.user, pw["name"]: self.password})
                    check(r.status_code not in (401, 403), "signed in (user name and password accepted)", r.status_code)
                elif consent:
                    target = urljoin(url, consent["action"] or url)
                    r = await browser.post(target, data={**hidden(consent), "decision": "allow"})
                    print("ok: allowed on the consent page", flush=True)
                else:
                    check(False, f"the page at {urlparse(url).path} has a sign-in or consent form", r.text[:300])
                url = target
            raise AssertionError("FAILED: too many steps before being sent back to the client")

    async def callback_handler(self) -> AuthorizationCodeResult:
        check(self.callback and self.callback.startswith(REDIRECT_URI + "?"), "the server sent the browser back to the client", self.callback)
        q = parse_qs(urlparse(self.callback).query)
        check("code" in q, "the redirect back carries a code", q.get("error_description", q.get("error")))
        return AuthorizationCodeResult(code=q["code"][0], state=q.get("state", [None])[0], iss=q.get("iss", [None])[0])


async def main(opts: argparse.Namespace) -> None:
    url = urlparse(opts.url)
    origin = f"{url.scheme}://{url.netloc}"
    traffic: list[tuple[str, str, int]] = []

    async def record(response: httpx2.Response) -> None:
        traffic.append((response.request.method, response.request.url.path, response.status_code))

    storage = Memory()
    user = User(origin, opts.user, opts.password)
    provider = OAuthClientProvider(
        server_url=opts.url,
        client_metadata=OAuthClientMetadata(
            client_name=CLIENT_NAME,
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
            scope=opts.scope,
        ),
        storage=storage,
        redirect_handler=user.redirect_handler,
        callback_handler=user.callback_handler,
        client_metadata_url=opts.client_metadata_url,
    )
    http = httpx2.AsyncClient(auth=provider, timeout=30, event_hooks={"response": [record]})
    try:
        async with http, Client(streamable_http_client(opts.url, http_client=http)) as client:
            check(any(p == url.path and s == 401 for _, p, s in traffic), "the server challenged the first request (401)")
            check(any(p.startswith("/.well-known/oauth-protected-resource") and s == 200 for _, p, s in traffic), "the SDK read the protected resource metadata")
            check(any(p.startswith("/.well-known/oauth-authorization-server") and s == 200 for _, p, s in traffic), "the SDK read the authorization server metadata")
            if opts.client_metadata_url:
                check(storage.client_info and storage.client_info.client_id == opts.client_metadata_url, "the client_id is the client metadata document URL")
            else:
                check(any(m == "POST" and p.endswith("/register") and s == 201 for m, p, s in traffic), "the SDK registered itself (RFC 7591)")
            info = client.server_info
            print(f"ok: connected to {info.name if info else '?'} (protocol {client.protocol_version})", flush=True)
            tools = await client.list_tools()
            names = [t.name for t in tools.tools]
            print(f"ok: tools/list offers {', '.join(names)}", flush=True)
            for name, args in opts.calls:
                check(name in names, f"the server offers {name}")
                before = len(user.authorizations)
                result = await client.call_tool(name, args)
                check(not result.is_error, f"{name} answered without error", result)
                text = " ".join(getattr(c, "text", "") for c in result.content if getattr(c, "type", None) == "text")
                print(f"ok: {name}: {text}", flush=True)
                if len(user.authorizations) > before:
                    print(f"ok: {name} needed a wider scope: the SDK authorized again (step-up)", flush=True)
            if opts.expect_step_up:
                check(len(user.authorizations) > 1, "a step-up authorization happened")
    except BaseException:
        print(f"traffic: {traffic}", file=sys.stderr)
        raise
    print("connect check: all steps passed", flush=True)


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Connect the Python MCP SDK to an MCP server.")
    p.add_argument("--url", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:8080/mcp")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--scope", default=None, help="scopes to ask for (default: what the server says)")
    p.add_argument("--client-metadata-url", default=None)
    p.add_argument("--expect-step-up", action="store_true")
    p.add_argument("--call", action="append", default=[], help="a tool to call (repeatable)")
    p.add_argument("--args", action="append", default=[], help="JSON arguments of the --call before it")
    # Pair each --args with the --call it follows.
    calls: list[tuple[str, dict]] = []
    argv = sys.argv[1:]
    opts = p.parse_args(argv)
    i = 0
    while i < len(argv):
        if argv[i] == "--call":
            calls.append((argv[i + 1], {}))
            i += 2
        elif argv[i] == "--args":
            if not calls:
                p.error("--args must follow a --call")
            calls[-1] = (calls[-1][0], json.loads(argv[i + 1]))
            i += 2
        else:
            i += 1
    opts.calls = calls
    return opts


if __name__ == "__main__":
    options = parse()
    try:
        anyio.run(main, options)
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
