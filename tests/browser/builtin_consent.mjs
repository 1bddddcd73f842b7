// Drives the library's built-in consent page in headless Chromium: the login round trip
// and Allow by mouse; the same by keyboard only (Tab to Allow, Enter); a 375 px viewport
// (no horizontal scrolling, buttons stacked); Deny; and the styled error page.
//
//   node builtin_consent.mjs BASE_URL ARTIFACT_DIR
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

const authorizeUrl = (state) => `${base}/oauth2/authorize?` + new URLSearchParams({
  response_type: "code", client_id: "photo-app", redirect_uri: "http://127.0.0.1:9000/callback",
  scope: "photos print", state,
  code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256",
});

// Nothing listens on the client's port 9000: watch the request the redirect makes.
const landing = (page) => page.waitForRequest((r) => r.url().startsWith("http://127.0.0.1:9000/callback"));

async function checkConsentPage(page, label) {
  const html = await page.content();
  if (!html.includes("Photo Printer &lt;Beta&gt;")) fail(`${label}: client name missing or unescaped`);
  if (!html.includes("See and download your photos") || !html.includes("Order prints in your name")) fail(`${label}: scope descriptions missing`);
  if (!html.includes("Unverified application")) fail(`${label}: no unverified mark`);
  if (!html.includes("127.0.0.1:9000")) fail(`${label}: redirect host missing`);
  if ((await page.getAttribute("html", "lang")) !== "en") fail(`${label}: no lang`);
}

async function decideResult(req, state, label) {
  const url = new URL((await req).url());
  if (!url.searchParams.get("code")) fail(`${label}: no code in ${url}`);
  else if (url.searchParams.get("state") !== state) fail(`${label}: state mismatch`);
  else console.log(`${label}: landed on the client with a code`);
}

try {
  // 1. Mouse: authorize -> login -> back to the consent page -> Allow.
  {
    const ctx = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    const page = await ctx.newPage();
    const state = "m-" + Math.random().toString(36).slice(2);
    const res = await page.goto(authorizeUrl(state));
    if (!page.url().includes("/login?next=")) fail("mouse: not sent to the login page: " + page.url());
    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", "wonderland");
    await Promise.all([page.waitForURL(/\/oauth2\/consent\?request_id=/), page.click("button[type=submit]")]);
    await checkConsentPage(page, "mouse");
    const check = await page.request.get(page.url());
    const h = check.headers();
    if (h["x-frame-options"] !== "DENY") fail("mouse: no X-Frame-Options");
    if (!(h["content-security-policy"] || "").includes("frame-ancestors 'none'")) fail("mouse: no frame-ancestors");
    if (h["cache-control"] !== "no-store") fail("mouse: cache-control " + h["cache-control"]);
    await page.screenshot({ path: `${artifacts}/builtin-consent.png`, fullPage: true });
    const req = landing(page);
    await page.click("button[name=decision][value=allow]");
    await decideResult(req, state, "mouse");
    await ctx.close();
  }

  // 2. Keyboard only: type the login, Enter; on the consent page Tab until Allow, Enter.
  {
    const ctx = await browser.newContext({ viewport: { width: 1024, height: 800 } });
    const page = await ctx.newPage();
    const state = "k-" + Math.random().toString(36).slice(2);
    await page.goto(authorizeUrl(state));
    await page.keyboard.type("bob");          // the username field has autofocus
    await page.keyboard.press("Tab");
    await page.keyboard.type("wonderland");
    await Promise.all([page.waitForURL(/\/oauth2\/consent\?/), page.keyboard.press("Enter")]);
    await checkConsentPage(page, "keyboard");
    let reached = false;
    const order = [];
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press("Tab");
      const f = await page.evaluate(() => {
        const a = document.activeElement;
        const style = getComputedStyle(a);
        return { name: a.name, value: a.value, tag: a.tagName, outline: style.outlineStyle };
      });
      order.push(`${f.tag}:${f.value || ""}`);
      if (f.name === "decision" && f.value === "allow") {
        reached = true;
        if (f.outline === "none") fail("keyboard: no visible focus ring on Allow");
      }
    }
    if (!reached) fail("keyboard: Tab never reached Allow: " + order.join(" "));
    if (order[0] !== "BUTTON:allow") fail("keyboard: Allow is not the first stop: " + order.join(" "));
    await page.screenshot({ path: `${artifacts}/builtin-consent-keyboard.png` });
    const req = landing(page);
    await page.keyboard.press("Enter");
    await decideResult(req, state, "keyboard");
    await ctx.close();
  }

  // 3. A phone: 375 px wide, no horizontal scrolling, the buttons stacked and full width.
  {
    const ctx = await browser.newContext({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await ctx.newPage();
    const state = "n-" + Math.random().toString(36).slice(2);
    await page.goto(authorizeUrl(state));
    await page.fill("input[name=username]", "carol");
    await page.fill("input[name=password]", "wonderland");
    await Promise.all([page.waitForURL(/\/oauth2\/consent\?/), page.click("button[type=submit]")]);
    const m = await page.evaluate(() => {
      const allow = document.querySelector("button[value=allow]").getBoundingClientRect();
      const deny = document.querySelector("button[value=deny]").getBoundingClientRect();
      return { scroll: document.documentElement.scrollWidth, width: window.innerWidth, allow, deny };
    });
    if (m.scroll > m.width) fail(`narrow: page scrolls sideways (${m.scroll} > ${m.width})`);
    else console.log("narrow: no horizontal scrolling at 375 px");
    if (!(m.deny.top >= m.allow.bottom)) fail("narrow: buttons are not stacked");
    if (m.allow.height < 44) fail("narrow: Allow is smaller than a 44 px touch target");
    await page.screenshot({ path: `${artifacts}/builtin-consent-narrow.png`, fullPage: true });

    // 4. Deny from the phone.
    const consentUrl = page.url();
    const req = landing(page);
    await page.click("button[name=decision][value=deny]");
    const url = new URL((await req).url());
    if (url.searchParams.get("error") !== "access_denied") fail("deny: " + url);
    else console.log("deny: access_denied");

    // 5. The same consent page again: the request is spent, the error page is styled.
    const again = await ctx.newPage();
    await again.goto(consentUrl);
    const html = await again.content();
    await again.screenshot({ path: `${artifacts}/builtin-consent-error.png`, fullPage: true });
    if (!html.includes("no longer valid")) fail("error page: " + html.slice(0, 300));
    await ctx.close();
  }
} finally {
  await browser.close();
}
