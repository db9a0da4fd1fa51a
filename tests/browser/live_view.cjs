// Drives the lab's live view and the class view in headless Chromium (Debian's chromium with
// playwright-core). Run by tests/labs_live_view.rs; prints one JSON line, exits non-zero on
// the first failed expectation.
"use strict";
const { execFileSync } = require("child_process");
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const LIVE = process.env.LIVE_URL;
const CLASS = process.env.CLASS_URL;
const ADMIN = process.env.ADMIN;
const KGATE = process.env.KGATE_EXE;

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run"],
  });
  try {
    const page = await browser.newPage();
    // Offline: the page may load nothing but itself.
    const foreign = [];
    page.on("request", r => { if (!r.url().startsWith(LIVE)) foreign.push(r.url()); });
    await page.goto(LIVE);
    await page.waitForFunction(() => document.querySelectorAll("[data-broker]").length === 3,
                               null, { timeout: 10000 });
    const brokers = await page.$$eval("[data-broker]", els => els.map(e => e.dataset.broker));
    const faultsBefore = await page.textContent("#faults");
    if (!faultsBefore.includes("hidden fault")) throw new Error("no hidden fault line: " + faultsBefore);
    if (/round.trip|slow-broker|400/.test(faultsBefore)) throw new Error("the hidden fault shows: " + faultsBefore);
    // A web page can send requests to loopback, but not read the token file: refused.
    const forged = await page.evaluate(() => fetch("/faults", { method: "POST", body: "disconnect" }).then(r => r.status));
    if (forged !== 401) throw new Error("a page added a fault without the token: " + forged);
    const t0 = Date.now();
    execFileSync(KGATE, ["fault", "add", "--admin", ADMIN, "latency=300ms", "topic=vehicle-telemetry"]);
    await page.waitForFunction(() => document.getElementById("faults").textContent.includes("latency=300ms"),
                               null, { timeout: 2000 });
    const faultMs = Date.now() - t0;
    if (faultMs > 2000) throw new Error("the fault took " + faultMs + " ms to appear");
    const fontPx = await page.$eval("body", b => parseFloat(getComputedStyle(b).fontSize));
    const columns = await page.$$eval("thead th", ths => ths.map(th => th.textContent.trim()));
    if (foreign.length) throw new Error("requests beyond the view: " + foreign.join(", "));

    const cls = await browser.newPage();
    await cls.goto(CLASS);
    await cls.waitForFunction(() => document.querySelector("[data-student=alice]") && document.querySelector("[data-student=bob]"),
                              null, { timeout: 10000 });
    const states = await cls.$$eval("[data-student]", rows => Object.fromEntries(rows.map(r =>
      [r.dataset.student, [...r.querySelectorAll("[data-state]")].map(c => c.dataset.state)])));
    console.log(JSON.stringify({ ok: true, brokers, faultMs, fontPx, states, forged, columns }));
  } finally {
    await browser.close();
  }
}
main().catch(e => { console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e) })); process.exit(1); });
