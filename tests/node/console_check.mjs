// Drives the moat console in real headless Chromium (Debian's, through playwright-core): log in
// with an admin key, create a key, use it through the API, see its spend in the chart, revoke it.
// Fails on any script error or Content-Security-Policy violation. Takes screenshots of the main
// pages at 1280x800 and at phone width into SCREENSHOT_DIR.
// Run by crates/moatd/tests/console.rs with MOAT_URL, ADMIN_KEY, SCREENSHOT_DIR.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.env.MOAT_URL;
const adminKey = process.env.ADMIN_KEY;
const shots = process.env.SCREENSHOT_DIR;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function chat(key) {
  const resp = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "emu/tiny", max_tokens: 20, messages: [{ role: "user", content: "say something" }] }),
  });
  await resp.text();
  return resp.status;
}

const profile = mkdtempSync(join(tmpdir(), "moat-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const problems = [];
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 40[13]/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on("dialog", (d) => d.accept());
  const shot = async (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });

  // Log in with the admin key.
  await page.goto(`${base}/ui/`);
  await page.waitForSelector("#login-form");
  await shot("login");
  await page.fill("#key", "not-an-admin-key");
  await page.click("#login-form button[type=submit]");
  await page.waitForFunction(() => document.getElementById("login-message").textContent.includes("not an admin key"));
  await page.fill("#key", adminKey);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#app:not([hidden]) nav");
  check((await page.textContent("#who")).includes("admin"), "signed in as an admin");

  // Create a key in the research team.
  await page.click("nav a[href='#keys']");
  await page.waitForSelector("#create-key");
  await page.fill("#create-key input[name=name]", "browser-key");
  await page.selectOption("#create-key select[name=team]", "research");
  await page.fill("#create-key input[name=budget]", "5/day");
  await page.click("#create-key button[type=submit]");
  await page.waitForSelector("#new-key");
  const key = (await page.textContent("#new-key")).trim();
  check(key.startsWith("moat-"), `a new key is shown once (${key.slice(0, 5)})`);
  await page.waitForSelector("tr[data-key='browser-key']");

  // Use it through the API; its spend shows in the usage chart.
  for (let i = 0; i < 3; i++) check((await chat(key)) === 200, "the new key works");
  await page.click("nav a[href='#usage']");
  await page.waitForSelector("#spend-chart svg");
  await page.waitForSelector("#spend-chart rect[data-group='research']", { timeout: 10000 });
  const spend = await page.textContent("#total-spend");
  check(spend !== "$0", `spend appears (${spend})`);
  await shot("usage");
  await page.selectOption("#usage-controls select[name=by]", "model");
  await page.waitForSelector("#spend-chart rect[data-group='emu/tiny']");

  // The other pages draw.
  await page.click("nav a[href='#teams']");
  await page.waitForSelector("tr[data-team='research']");
  // A team's own provider key: stored, shown as present, never shown back, removed.
  await page.selectOption("#team-key select[name=team]", "research");
  await page.selectOption("#team-key select[name=provider]", "emu");
  await page.fill("#team-key input[name=key]", "sk-team-own-key-7731");
  await page.click("#team-key button[type=submit]");
  await page.waitForFunction(() => document.querySelector("tr[data-team='research']")?.textContent.includes("emu ✓"));
  check(!(await page.content()).includes("sk-team-own-key-7731"), "a provider key is never shown back");
  await shot("teams");
  await page.selectOption("#team-key select[name=team]", "research");
  await page.selectOption("#team-key select[name=provider]", "emu");
  await page.click("#team-key button.danger");
  await page.waitForFunction(() => !document.querySelector("tr[data-team='research']")?.textContent.includes("emu ✓"));
  await page.click("nav a[href='#providers']");
  await page.waitForSelector(".card.provider");
  await shot("providers");
  await page.click("nav a[href='#requests']");
  await page.waitForSelector("table tbody tr");
  check((await page.textContent("table")).includes("/v1/chat/completions"), "requests listed");
  await shot("requests");
  await page.click("nav a[href='#audit']");
  await page.click("#verify-now");
  await page.waitForSelector("#verify-result.ok-box");
  await shot("audit");

  // Revoke the key: the next request with it is refused.
  await page.click("nav a[href='#keys']");
  await page.click("button[data-revoke='browser-key']");
  await page.waitForFunction(() => document.querySelector("tr[data-key='browser-key'] .badge")?.textContent === "revoked");
  await shot("keys");
  check((await chat(key)) === 401, "the revoked key is refused");

  // Phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("nav a[href='#usage']");
  await page.waitForSelector("#spend-chart rect");
  await shot("usage-phone");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `no sideways scrolling on a phone (${overflow}px)`);
  await page.click("nav a[href='#keys']");
  await page.waitForSelector("tr[data-key='browser-key']");
  await shot("keys-phone");

  // Sign out: the session is gone.
  await page.click("#logout");
  await page.waitForSelector("#login:not([hidden])");
  const after = await page.evaluate(async () => (await fetch("/admin/keys")).status);
  check(after === 401, `signed out (${after})`);

  check(problems.length === 0, `no script errors or CSP violations:\n${problems.join("\n")}`);
  console.log("console checks passed");
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
