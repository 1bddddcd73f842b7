// Drives the demo in headless Chromium: the authorization URL, the login form, the consent
// form, and the redirect back to the client with a code and the right state; then the
// demo's own browser client (/client) end to end, up to its call of /clock.
//
//   node consent_flow.mjs BASE_URL ARTIFACT_DIR
//
// Exit status 0 when every check holds. Chromium: $CHROMIUM or /usr/bin/chromium.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const fail = (msg) => { console.error("FAIL: " + msg); process.exitCode = 1; };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const state = "st-" + Math.random().toString(36).slice(2);
  const auth = `${base}/oauth2/authorize?` + new URLSearchParams({
    response_type: "code", client_id: "demo-web", redirect_uri: "http://127.0.0.1:9000/callback",
    scope: "VIEW_CLOCK", state,
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256",
  });
  await page.goto(auth);
  if (!page.url().includes("/login")) fail("not sent to the login page: " + page.url());
  await page.fill("input[name=username]", "alice");
  await page.fill("input[name=password]", "wonderland");
  await Promise.all([page.waitForURL(/\/consent\?/), page.click("button[type=submit]")]);
  const html = await page.content();
  if (!html.includes("Demo web client") || !html.includes("VIEW_CLOCK")) fail("consent page lacks client or scope");
  await page.screenshot({ path: `${artifacts}/consent-page.png`, fullPage: true });

  // Nothing listens on the client's port 9000: watch the request the redirect makes.
  const landing = page.waitForRequest((r) => r.url().startsWith("http://127.0.0.1:9000/callback"));
  await page.click("button[name=decision][value=allow]");
  const url = new URL((await landing).url());
  const code = url.searchParams.get("code");
  if (!code) fail("no code in " + url);
  if (url.searchParams.get("state") !== state) fail("state mismatch: " + url.searchParams.get("state"));
  if (url.searchParams.get("iss") !== base) fail("iss mismatch: " + url.searchParams.get("iss"));
  console.log("consent flow: landed on the client with a code and state " + state);

  // The demo's browser client: PKCE in JavaScript, then GET /clock with the token.
  const spa = await browser.newPage();
  await spa.goto(`${base}/client`);
  await Promise.all([spa.waitForURL(/\/login|\/consent/), spa.click("#go")]);
  if (spa.url().includes("/login")) {
    await spa.fill("input[name=username]", "alice");
    await spa.fill("input[name=password]", "wonderland");
    await Promise.all([spa.waitForURL(/\/consent\?/), spa.click("button[type=submit]")]);
  }
  await Promise.all([spa.waitForURL(/\/client/), spa.click("button[name=decision][value=allow]")]);
  await spa.waitForFunction(() => document.getElementById("out").textContent.includes("/clock"), null, { timeout: 10000 });
  const out = await spa.textContent("#out");
  await spa.screenshot({ path: `${artifacts}/browser-client-clock.png`, fullPage: true });
  if (!out.includes("GET /clock -> 200")) fail("browser client did not read the clock: " + out);
  else console.log("browser client: " + out.split("\n")[0]);

  // The demo's pages by keyboard only: the login names the client; Tab from the username
  // field to the password, Enter; on the consent page Tab to Allow, Enter.
  {
    const kb = await browser.newPage();
    const kstate = "kb-" + Math.random().toString(36).slice(2);
    await kb.goto(`${base}/oauth2/authorize?` + new URLSearchParams({
      response_type: "code", client_id: "demo-web", redirect_uri: "http://127.0.0.1:9000/callback",
      scope: "VIEW_CLOCK profile", state: kstate,
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256",
    }));
    if (!(await kb.content()).includes("Sign in to continue to <strong>Demo web client</strong>")) fail("demo login does not name the client");
    await kb.screenshot({ path: `${artifacts}/demo-login.png`, fullPage: true });
    await kb.keyboard.press("Tab");
    const first = await kb.evaluate(() => document.activeElement.name);
    if (first !== "username") fail("demo login: first Tab stop is " + first);
    await kb.keyboard.type("bob");
    await kb.keyboard.press("Tab");
    await kb.keyboard.type("builder");
    await Promise.all([kb.waitForURL(/\/consent\?/), kb.keyboard.press("Enter")]);
    const consent = await kb.content();
    if (!consent.includes("Read the time on your clock")) fail("demo consent lacks scope descriptions");
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await kb.keyboard.press("Tab");
      reached = await kb.evaluate(() => document.activeElement.name === "decision" && document.activeElement.value === "allow");
    }
    if (!reached) fail("demo consent: Tab never reached Allow");
    const req = kb.waitForRequest((r) => r.url().startsWith("http://127.0.0.1:9000/callback"));
    await kb.keyboard.press("Enter");
    const kurl = new URL((await req).url());
    if (!kurl.searchParams.get("code") || kurl.searchParams.get("state") !== kstate) fail("demo keyboard flow: " + kurl);
    else console.log("demo keyboard: landed on the client with a code");
    await kb.close();
  }

  // The demo's pages on a phone: 375 px, no sideways scrolling on login, consent, /client.
  {
    const ctx = await browser.newContext({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const phone = await ctx.newPage();
    const noSideways = async (label) => {
      const w = await phone.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      if (w[0] > w[1]) fail(`demo ${label}: scrolls sideways at 375 px (${w[0]} > ${w[1]})`);
    };
    await phone.goto(`${base}/client`);
    await Promise.all([phone.waitForURL(/\/login/), phone.click("#go")]);
    await noSideways("login");
    await phone.fill("input[name=username]", "alice");
    await phone.fill("input[name=password]", "wonderland");
    await Promise.all([phone.waitForURL(/\/consent\?/), phone.click("button[type=submit]")]);
    await noSideways("consent");
    await phone.screenshot({ path: `${artifacts}/demo-consent-narrow.png`, fullPage: true });
    await Promise.all([phone.waitForURL(/\/client/), phone.click("button[name=decision][value=allow]")]);
    await phone.waitForFunction(() => document.getElementById("out").textContent.includes("/clock"), null, { timeout: 10000 });
    await noSideways("client");
    const shown = await phone.textContent("#out");
    if (!shown.includes("Signed in as") || !shown.includes("VIEW_CLOCK")) fail("demo client: results not formatted: " + shown);
    await phone.screenshot({ path: `${artifacts}/demo-client-narrow.png`, fullPage: true });
    console.log("demo narrow: login, consent and client fit 375 px");
    await ctx.close();
  }
} finally {
  await browser.close();
}
