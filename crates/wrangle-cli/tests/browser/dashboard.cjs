// Drives the dashboard in Debian's Chromium, headless, through playwright-core (found in
// $WRANGLE_PLAYWRIGHT/node_modules):
//   node dashboard.cjs BASE_URL SCREENSHOT_DIR DEAD_TASK_ID WORKER GROUP
// While a range job runs, its progress bar must advance on the page; clicking Retry on a
// dead task must make it complete; scaling the worker's pool group from the page must be
// acknowledged and shown. Screenshots of each page go to SCREENSHOT_DIR. Exits non-zero
// with one line saying what did not happen.
"use strict";
const { chromium } = require(require.resolve("playwright-core", {
  paths: [process.env.WRANGLE_PLAYWRIGHT || process.cwd()],
}));

const [base, shots, deadId, worker, group] = process.argv.slice(2);
const fail = (what) => { console.error(`dashboard: ${what}`); process.exit(1); };

(async () => {
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
const errors = [];
page.on("pageerror", (err) => errors.push(err.message));
page.on("console", (msg) => { if (msg.type() === "error") errors.push(msg.text()); });

try {
  // The job's progress bar advances while the job runs.
  await page.goto(`${base}/#/jobs`);
  const bar = page.locator('tr[data-job="scan"] [role="progressbar"]');
  await bar.waitFor({ timeout: 15000 });
  const first = Number(await bar.getAttribute("aria-valuenow"));
  await page.waitForFunction(
    (before) => {
      const el = document.querySelector('tr[data-job="scan"] [role="progressbar"]');
      return el && Number(el.getAttribute("aria-valuenow")) > before;
    },
    first,
    { timeout: 30000 },
  ).catch(() => fail(`the progress bar stayed at ${first}%`));
  await page.screenshot({ path: `${shots}/jobs.png`, fullPage: true });

  // Retry on a dead task makes it complete.
  await page.goto(`${base}/#/dead`);
  const retry = page.locator(`tr[data-task="${deadId}"] button[data-action="retry"]`);
  await retry.waitFor({ timeout: 15000 }).catch(() => fail(`dead task ${deadId} is not listed`));
  await page.screenshot({ path: `${shots}/dead.png`, fullPage: true });
  await retry.click();
  await page.goto(`${base}/#/task/${deadId}`);
  await page.locator("h1 .state.completed").waitFor({ timeout: 30000 })
    .catch(() => fail(`task ${deadId} did not complete after Retry`));
  await page.screenshot({ path: `${shots}/task.png`, fullPage: true });

  // Scaling from the page is acknowledged and shown.
  await page.goto(`${base}/#/workers`);
  const row = page.locator(`section[data-worker="${worker}"] tr[data-group="${group}"]`);
  await row.waitFor({ timeout: 15000 }).catch(() => fail(`worker ${worker} group ${group} not shown`));
  const runners = Number(await row.locator("td.runners").textContent());
  await row.locator('button[data-action="scale"]').first().click();
  await page.locator("#toast.show:not(.bad)").waitFor({ timeout: 15000 })
    .catch(async () => fail(`no acknowledgement: ${await page.locator("#toast").textContent()}`));
  const ack = await page.locator("#toast").textContent();
  await page.waitForFunction(
    ([w, g, n]) => {
      const cell = document.querySelector(`section[data-worker="${w}"] tr[data-group="${g}"] td.runners`);
      return cell && Number(cell.textContent) === n;
    },
    [worker, group, runners + 1],
    { timeout: 20000 },
  ).catch(() => fail(`the group still shows ${runners} runners after "${ack}"`));
  await page.screenshot({ path: `${shots}/workers.png`, fullPage: true });

  // The overview, with its charts.
  await page.goto(`${base}/#/`);
  await page.locator(".chart svg").first().waitFor({ timeout: 15000 });
  await page.waitForTimeout(500);
  await page.screenshot({ path: `${shots}/overview.png`, fullPage: false });
  if (errors.length) fail(`the page logged errors: ${errors.join(" | ")}`);
  console.log(`dashboard: progress advanced from ${first}%, task ${deadId} completed, scale acknowledged: ${ack}`);
} finally {
  await browser.close();
}
})().catch((err) => fail(err.message.split("\n")[0]));
