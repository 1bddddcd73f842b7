// The device authorization grant (RFC 8628) against the demo, with the user's step done in
// headless Chromium on the demo's own pages: the verification URI, the login form and the
// /device confirmation.
//
//   node device_flow.mjs BASE_URL ARTIFACT_DIR
//       The whole flow with the unmodified `oauth4webapi` client as the device: discovery,
//       device authorization, polling the token endpoint while Chromium approves, then
//       GET /clock with the access token.
//   node device_flow.mjs BASE_URL ARTIFACT_DIR --approve VERIFICATION_URI_COMPLETE
//       Only the browser step, for a device client driven by someone else (the Rust test).
//
// Exit status 0 when every check holds. Chromium: $CHROMIUM or /usr/bin/chromium.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import * as oauth from "oauth4webapi";

const [base, artifacts, mode, approveUri] = process.argv.slice(2);
if (!base || !artifacts || (mode !== undefined && (mode !== "--approve" || !approveUri))) {
  console.error("usage: node device_flow.mjs BASE_URL ARTIFACT_DIR [--approve VERIFICATION_URI_COMPLETE]");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const fail = (msg) => { console.error("FAIL: " + msg); process.exitCode = 1; };

// The user's side: open the complete verification URI, sign in, confirm, allow.
async function approveInChromium(uri) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage();
    await page.goto(uri);
    if (!page.url().includes("/login")) return fail("not sent to the login page: " + page.url());
    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", "wonderland");
    const [confirm] = await Promise.all([
      page.waitForNavigation({ url: /\/device\?/ }),
      page.click("button[type=submit]"),
    ]);
    if (confirm.status() !== 200) return fail("device page status " + confirm.status());
    if (confirm.headers()["x-frame-options"] !== "DENY") fail("device page can be framed");
    const html = await page.content();
    if (!html.includes("Demo command-line client")) return fail("device page does not name the client");
    const shown = await page.inputValue("input[name=user_code]").catch(() => null);
    const wanted = new URL(uri).searchParams.get("user_code");
    if (shown === null || shown.replace(/-/g, "") !== wanted.replace(/-/g, "")) fail(`device page carries user code ${shown}, not ${wanted}`);
    await page.screenshot({ path: `${artifacts}/device-confirm.png`, fullPage: true });
    await Promise.all([page.waitForLoadState("load"), page.click("button[name=decision][value=allow]")]);
    await page.waitForFunction(() => document.body.textContent.includes("Device connected"), null, { timeout: 10000 });
    await page.screenshot({ path: `${artifacts}/device-connected.png`, fullPage: true });
    console.log("device page: signed in and allowed in Chromium");
  } finally {
    await browser.close();
  }
}

if (mode === "--approve") {
  await approveInChromium(approveUri);
} else {
  // The device's side: oauth4webapi, unmodified, over plain HTTP to the loopback demo.
  const insecure = { [oauth.allowInsecureRequests]: true };
  const issuer = new URL(base);
  const as = await oauth.processDiscoveryResponse(
    issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
  if (!as.device_authorization_endpoint) throw new Error("no device_authorization_endpoint in metadata");
  const client = { client_id: "demo-cli" };
  const auth = oauth.None();
  const details = await oauth.processDeviceAuthorizationResponse(as, client,
    await oauth.deviceAuthorizationRequest(as, client, auth, { scope: "VIEW_CLOCK" }, insecure));
  if (details.verification_uri !== `${base}/device`) fail("verification_uri " + details.verification_uri);
  if (!details.verification_uri_complete) throw new Error("no verification_uri_complete");
  console.log("oauth4webapi: device authorization, user code issued");

  // Poll as RFC 8628 §3.5 says: once before the user has done anything (so the answer must
  // be authorization_pending), then on the interval while Chromium approves.
  let interval = details.interval ?? 5;
  const pollOnce = async () => {
    try {
      return await oauth.processDeviceCodeResponse(as, client,
        await oauth.deviceCodeGrantRequest(as, client, auth, details.device_code, insecure));
    } catch (err) {
      if (!(err instanceof oauth.ResponseBodyError)) throw err;
      if (err.error === "slow_down") interval += 5;
      else if (err.error !== "authorization_pending") throw err;
      return err.error;
    }
  };
  const first = await pollOnce();
  if (first !== "authorization_pending") fail("before approval the token endpoint answered " + JSON.stringify(first));
  const poll = (async () => {
    for (let attempt = 0; attempt < 60; attempt++) {
      await sleep(interval * 1000);
      const got = await pollOnce();
      if (typeof got !== "string") return got;
    }
    throw new Error("no tokens after 60 polls");
  })();
  await approveInChromium(details.verification_uri_complete);
  if (process.exitCode) process.exit(); // the user step failed: do not wait out the polls
  const tokens = await poll;
  if (tokens.token_type?.toLowerCase() !== "bearer") fail("token_type " + tokens.token_type);
  if (!tokens.refresh_token) fail("no refresh token for demo-cli");
  if (!String(tokens.scope ?? "VIEW_CLOCK").split(" ").includes("VIEW_CLOCK")) fail("scope " + tokens.scope);
  console.log("oauth4webapi: tokens after the user allowed on /device");

  const clock = await oauth.protectedResourceRequest(
    tokens.access_token, "GET", new URL(`${base}/clock`), undefined, undefined, insecure);
  console.log(`oauth4webapi: GET /clock -> ${clock.status}`);
  if (clock.status !== 200) fail("clock refused the access token");
}
