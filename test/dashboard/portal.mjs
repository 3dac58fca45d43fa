// Drives the developer portal's pages in Debian's headless Chromium: the catalogue, an API's
// page from its OpenAPI spec, then sign-up, sign-in, an application named like markup, a
// subscription and a key. Prints one JSON line for test/e2e/test_portal.py; takes a screenshot.
//   node portal.mjs '{"portal": URL, "api": NAME, "screenshot": FILE}'
import { launch, watchedPage } from './browser.mjs';

const opts = JSON.parse(process.argv[2]);
const problems = [];
const browser = await launch();
try {
  const page = await watchedPage(browser, { width: 420, height: 900 }, problems);
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); d.dismiss(); });

  await page.goto(`${opts.portal}/portal/`);
  const apis = await page.$$eval('li[data-api]', (items) => items.map((i) => i.dataset.api));
  await page.click(`li[data-api="${opts.api}"] a`);
  await page.waitForSelector('section.op');
  const operations = await page.$$eval('section.op', (s) => s.map((x) => x.dataset.op));
  const plans = await page.$$eval('li[data-plan]', (s) => s.map((x) => x.dataset.plan));
  const curl = await page.textContent('section.op pre');

  await page.goto(`${opts.portal}/portal/account`);
  await page.fill('#signup input[name=email]', 'browser@example.com');
  await page.fill('#signup input[name=password]', 'correct horse battery');
  await page.click('#signup button');
  await page.waitForFunction(() => document.getElementById('message').textContent.startsWith('Account created'));
  await page.fill('#login input[name=email]', 'browser@example.com');
  await page.fill('#login input[name=password]', 'correct horse battery');
  await page.click('#login button');
  await page.waitForSelector('#signed-in:not([hidden])');
  const name = '<script>alert(1)</script>';
  await page.fill('#create-app input[name=name]', name);
  await page.click('#create-app button[type=submit]');
  await page.waitForSelector('.app h3');
  const shownName = await page.textContent('.app h3');
  await page.click('.app form.subscribe button');
  await page.waitForSelector('.app .subscription');
  const subscription = await page.textContent('.app .subscription');
  await page.click('.app .new-key');
  await page.waitForFunction(() => document.getElementById('message').textContent.includes('shown once'));
  const keyMessage = await page.textContent('#message');
  const usage = await page.textContent('.app .usage');
  const scripts = await page.$$eval('script', (s) => s.length);
  await page.screenshot({ path: opts.screenshot, fullPage: true });
  console.log(JSON.stringify({ apis, operations, plans, curl, shownName, subscription,
    keyShown: keyMessage.includes('pk_'), usage, scripts, problems }));
} finally {
  await browser.close();
}
