// Loads Portico's dashboard in Debian's headless Chromium, sends traffic through the proxy and
// waits for the page's request counter of one route to move. Prints one JSON line for the
// e2e test (test/e2e/test_dashboard.py) to assert on; takes a screenshot.
//   node check.mjs '{"admin": URL, "proxy": URL, "route": NAME, "path": "/x", "requests": N,
//                    "screenshot": FILE}'
import { launch, watchedPage } from './browser.mjs';

const opts = JSON.parse(process.argv[2]);
const problems = [];
const browser = await launch();
try {
  const page = await watchedPage(browser, { width: 1400, height: 1000 }, problems);

  await page.goto(`${opts.admin}/dashboard/`);
  const row = `tr[data-route="${opts.route}"]`;
  await page.waitForSelector(row, { timeout: 10000 });
  const routes = await page.$$eval('tr[data-route]', (rows) => rows.map((r) => r.dataset.route));
  const counter = async () => Number((await page.textContent(`${row} .requests`)).replace(/,/g, ''));
  const before = await counter();

  for (let i = 0; i < opts.requests; i++) {
    const res = await fetch(`${opts.proxy}${opts.path}`);
    await res.arrayBuffer();
  }
  let after = before;
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline && after < before + opts.requests) {
    await page.waitForTimeout(250);
    after = await counter();
  }
  // Chart the route: its whole history is fetched, the title names it.
  await page.click(`${row} td.name`);
  await page.waitForFunction((name) =>
    document.getElementById('selection').textContent === `route ${name}`, opts.route);
  const selectedRow = await page.getAttribute(row, 'class');
  // The charts are drawn from the same poll: let one more land so they show the traffic.
  await page.waitForTimeout(2500);
  await page.screenshot({ path: opts.screenshot, fullPage: true });
  const cards = {
    requests: await page.textContent('#card-requests'),
    configVersion: await page.textContent('#config-version'),
  };
  const upstreams = await page.$$eval('tr[data-upstream]', (rows) => rows.map((r) => r.dataset.upstream));
  const errorRows = await page.$$eval('#errors tbody tr', (rows) => rows.map((r) => r.textContent));
  console.log(JSON.stringify({ routes, upstreams, before, after, cards, errorRows, selectedRow,
    problems }));
} finally {
  await browser.close();
}
