#!/usr/bin/env python3
"""Soak driver for bench/soak.sh: mixes token issuance, validation, refresh rotation and
revocation against a running bench server for a fixed time, then stops.

    python3 bench/soak.py BASE_URL SECONDS [THREADS]

Each worker repeats: one authorization-code flow (the bench server consents at once:
authorize, approve, code exchange with PKCE) giving an access and a refresh token, then
rounds of validation (`GET /protected`), `client_credentials` issuance and refresh
rotation; every fourth family is revoked (`POST /oauth2/revoke` of its refresh token) and
the revoked refresh token must then be refused. An answer other than the expected one is
an error. Prints `sample` lines (`GET /bench/stats`: RSS, rows or keys) at the start,
every SAMPLE_SECS (30) and at the end, and a final `result` line with the counts and the
p50/p99 latency of the first and the last WINDOW_SECS (30) of the run.
"""
import base64
import hashlib
import http.client
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse

BASIC = "Basic " + base64.b64encode(b"bench:bench-secret").decode()
REDIRECT = "http://127.0.0.1:9/cb"
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": BASIC}


class Worker(threading.Thread):
    def __init__(self, host, port, deadline, stats):
        super().__init__(daemon=True)
        self.host, self.port, self.deadline, self.stats = host, port, deadline, stats
        self.conn = None
        self.families = 0

    def request(self, op, method, path, body=None, headers=None):
        """One request; returns (status, headers dict lower-cased, body bytes)."""
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            t0 = time.monotonic()
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    self.stats.error(op, "connection")
                    return None, {}, b""
                continue
            self.stats.latency(t0, time.monotonic() - t0)
            self.stats.count(op)
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        return None, {}, b""

    def expect(self, op, status, want):
        if status != want:
            self.stats.error(op, f"status {status}")
            return False
        return True

    def token(self, op, fields):
        status, _, data = self.request(op, "POST", "/oauth2/token",
                                       urllib.parse.urlencode(fields), FORM)
        if not self.expect(op, status, 200):
            return None
        try:
            return json.loads(data)
        except ValueError:
            self.stats.error(op, "body")
            return None

    def code_flow(self):
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        q = urllib.parse.urlencode({
            "response_type": "code", "client_id": "bench", "redirect_uri": REDIRECT,
            "scope": "read", "state": "s", "code_challenge": challenge,
            "code_challenge_method": "S256"})
        status, h, _ = self.request("authorize", "GET", "/oauth2/authorize?" + q)
        if status not in (302, 303) or "location" not in h:
            self.stats.error("authorize", f"status {status}")
            return None
        cookie = h.get("set-cookie", "").split(";", 1)[0]
        status, h, _ = self.request("approve", "GET", h["location"], headers={"Cookie": cookie})
        loc = h.get("location", "")
        if status not in (302, 303) or not loc.startswith(REDIRECT):
            self.stats.error("approve", f"status {status}")
            return None
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query).get("code", [None])[0]
        if not code:
            self.stats.error("approve", "no code")
            return None
        return self.token("code_exchange", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier})

    def run(self):
        while time.monotonic() < self.deadline:
            t = self.code_flow()
            if not t or "refresh_token" not in t:
                time.sleep(0.05)
                continue
            self.families += 1
            access, refresh = t["access_token"], t["refresh_token"]
            for _ in range(4):
                if time.monotonic() >= self.deadline:
                    break
                for _ in range(5):
                    status, _, _ = self.request("validate", "GET", "/protected",
                                                headers={"Authorization": "Bearer " + access})
                    self.expect("validate", status, 200)
                self.token("client_credentials", {"grant_type": "client_credentials", "scope": "read"})
                r = self.token("refresh", {"grant_type": "refresh_token", "refresh_token": refresh})
                if not r:
                    break
                access, refresh = r["access_token"], r.get("refresh_token", refresh)
            if self.families % 4 == 0:
                status, _, _ = self.request("revoke", "POST", "/oauth2/revoke",
                                            urllib.parse.urlencode({"token": refresh, "token_type_hint": "refresh_token"}),
                                            FORM)
                if self.expect("revoke", status, 200):
                    status, _, _ = self.request(
                        "refresh_after_revoke", "POST", "/oauth2/token",
                        urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": refresh}), FORM)
                    self.expect("refresh_after_revoke", status, 400)


class Stats:
    def __init__(self, start, seconds, window):
        self.lock = threading.Lock()
        self.start, self.seconds, self.window = start, seconds, window
        self.first, self.last = [], []
        self.counts, self.errors = {}, {}

    def latency(self, t0, dt):
        with self.lock:
            if t0 - self.start < self.window:
                self.first.append(dt)
            if t0 - self.start >= self.seconds - self.window:
                self.last.append(dt)

    def count(self, op):
        with self.lock:
            self.counts[op] = self.counts.get(op, 0) + 1

    def error(self, op, what):
        with self.lock:
            key = f"{op}:{what}"
            self.errors[key] = self.errors.get(key, 0) + 1


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] * 1000


def sample(host, port, label, t0):
    try:
        c = http.client.HTTPConnection(host, port, timeout=30)
        c.request("GET", "/bench/stats")
        line = c.getresponse().read().decode().strip()
        c.close()
    except (OSError, http.client.HTTPException) as e:
        line = f"unavailable ({type(e).__name__})"
    print(f"sample {label} t={time.monotonic() - t0:.0f}s {line}", flush=True)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: soak.py BASE_URL SECONDS [THREADS]")
    u = urllib.parse.urlsplit(sys.argv[1])
    seconds = float(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    window = min(float(os.environ.get("WINDOW_SECS", 30)), seconds / 2)
    every = float(os.environ.get("SAMPLE_SECS", 30))
    t0 = time.monotonic()
    sample(u.hostname, u.port, "start", t0)
    stats = Stats(t0, seconds, window)
    workers = [Worker(u.hostname, u.port, t0 + seconds, stats) for _ in range(threads)]
    for w in workers:
        w.start()
    nxt = t0 + every
    while any(w.is_alive() for w in workers):
        time.sleep(0.5)
        if time.monotonic() >= nxt and time.monotonic() < t0 + seconds:
            sample(u.hostname, u.port, "mid", t0)
            nxt += every
    sample(u.hostname, u.port, "end", t0)
    total = sum(stats.counts.values())
    errors = sum(stats.errors.values())
    ops = " ".join(f"{k}={v}" for k, v in sorted(stats.counts.items()))
    errs = " ".join(f"{k}={v}" for k, v in sorted(stats.errors.items())) or "none"
    print(f"result seconds={seconds:.0f} threads={threads} requests={total} "
          f"rps={total / seconds:.0f} errors={errors} "
          f"p50_first_ms={pct(stats.first, 50):.2f} p99_first_ms={pct(stats.first, 99):.2f} "
          f"p50_last_ms={pct(stats.last, 50):.2f} p99_last_ms={pct(stats.last, 99):.2f}", flush=True)
    print(f"ops {ops}", flush=True)
    print(f"errors {errs}", flush=True)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
