// Drives brevis's CT log explorer in headless Chromium for tests/explorer.rs:
//   node explorer.mjs BASE_URL '{"identity": ..., "prefix": ..., "repository": ..., "screenshots": DIR}'
// Uses the system Chromium (/usr/bin/chromium, the Debian package), never a downloaded
// browser. Prints one JSON line with what the pages showed; screenshots go to DIR.
import { chromium } from "playwright-core";

const [base, specText] = process.argv.slice(2);
const spec = JSON.parse(specText);
const shot = (page, name) => page.screenshot({ path: `${spec.screenshots}/${name}.png`, fullPage: true });
const text = async (page, sel) => ((await page.locator(sel).first().textContent()) ?? "").trim();
const checks = ["sct-status", "proof-status", "sth-status"];

async function verdicts(page) {
  await page.waitForFunction(
    (ids) => ids.every((id) => document.getElementById(id)?.dataset.verified),
    checks,
    { timeout: 30000 },
  );
  const v = {};
  for (const [key, id] of [["sct", "sct-status"], ["proof", "proof-status"], ["sth", "sth-status"]]) {
    v[key] = await page.locator(`#${id}`).getAttribute("data-verified");
  }
  v.proof_text = await text(page, "#proof-status");
  return v;
}

async function search(page, q, by) {
  await page.goto(`${base}/ui/`);
  await page.fill("#q", q);
  if (by) await page.selectOption("#by", by);
  await page.click("button[type=submit]");
  await page.waitForSelector("#results, #no-results");
  return page.locator("#results tbody tr").count();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu"],
});
const out = {};
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on("pageerror", (e) => { out.page_errors = [...(out.page_errors ?? []), String(e)]; });

  await page.goto(`${base}/ui/`);
  out.health = {
    tree_size: await text(page, "#tree-size"),
    bars: await page.locator("#hourly rect").count(),
    day: await text(page, "#entries-day"),
  };
  await shot(page, "search");

  out.identity_rows = await search(page, spec.identity);
  await shot(page, "results");
  await page.locator("#results tbody tr a").first().click();
  await page.waitForSelector("#entry-data", { state: "attached" });
  const entryUrl = page.url();
  out.entry = {
    identity: await text(page, "#identity"),
    issuer: await text(page, "#issuer"),
    sans: await text(page, "#sans"),
    ...(await verdicts(page)),
  };
  await shot(page, "entry");

  await page.goto(`${base}/ui/?q=${encodeURIComponent(spec.prefix)}&prefix=true`);
  out.prefix_rows = await page.locator("#results tbody tr").count();

  out.repository_rows = await search(page, spec.repository, "repository");
  await page.locator("#results tbody tr a").first().click();
  await page.waitForSelector("#entry-data", { state: "attached" });
  out.repo_entry = { extensions: await text(page, "#extensions"), ...(await verdicts(page)) };
  await shot(page, "repository-entry");

  // Without JavaScript: server-rendered results.
  const nojs = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1100, height: 700 } });
  const p2 = await nojs.newPage();
  await p2.goto(`${base}/ui/?q=${encodeURIComponent(spec.identity)}`);
  out.nojs_rows = await p2.locator("#results tbody tr").count();
  await shot(p2, "nojs-results");
  await nojs.close();

  // The same entry with one proof hash altered on the way: the page must say so.
  await page.route("**/ui/entry/*", async (route) => {
    const resp = await route.fetch();
    const body = (await resp.text()).replace(/("proof":\[")(.)/, (_, a, c) => a + (c === "A" ? "B" : "A"));
    await route.fulfill({ response: resp, body });
  });
  await page.goto(entryUrl);
  out.tampered = await verdicts(page);
  await shot(page, "tampered");
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
