// approve.mjs -- a person approves in a real browser.
//
// Opens the approver's one-time sign-in link in headless Chromium (Debian's
// /usr/bin/chromium, never a downloaded browser), presses "Continue as NAME"
// (the POST that signs in and sets the session cookie), lands on the
// approval's (or batch's) page, checks that it shows the reason and the
// payload, saves a screenshot, presses the button, checks the outcome page,
// then reloads the page it landed on until it shows the final status.
// Driven by tests/integration/test_browser.py and test_batches.py through env:
//   CS_LINK        the one-time sign-in link      CS_REASON  text to expect (the reason)
//   CS_PAGE        the page it must land on (optional: the approval_url or batch page)
//   CS_PAYLOAD     more text to expect            CS_SHOT    screenshot path
//   CS_DECISION    approve | deny (default approve)
//   CS_FINAL       the status to wait for on the page (default executed)
//   CS_VIEWPORT    WIDTHxHEIGHT (default 390x844, a phone)
import { chromium } from 'playwright-core';

const env = (k, d) => process.env[k] ?? d;
const link = env('CS_LINK');
const [w, h] = env('CS_VIEWPORT', '390x844').split('x').map(Number);
const fail = (msg) => { console.error(`FAIL ${msg}`); process.exitCode = 1; };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  // playwright gives every launch a fresh, empty profile directory of its own.
});
try {
  const page = await browser.newPage({ viewport: { width: w, height: h } });
  await page.goto(link);
  const hello = await page.textContent('body');
  if (!/Continue as/.test(hello)) fail(`no sign-in page: ${hello.slice(0, 300)}`);
  await Promise.all([page.waitForURL((u) => u.href !== link), page.click('button:has-text("Continue as")')]);
  const landed = page.url();
  const path = new URL(landed).pathname;
  if (!/^\/(status|batch)\//.test(path)) fail(`signed in, but landed on ${landed}`);
  if (process.env.CS_PAGE && landed !== process.env.CS_PAGE) fail(`landed on ${landed}`);
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'cs_session');
  if (!session || !session.httpOnly || session.sameSite !== 'Lax') fail('no HttpOnly SameSite=Lax session cookie');
  const text = await page.textContent('body');
  if (!text.includes('Signed in as')) fail('the page does not say who is signed in');
  if (!text.includes(env('CS_REASON'))) fail('the reason is not shown');
  if (!text.includes(env('CS_PAYLOAD'))) fail('the payload is not shown');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (overflow) fail(`the page is wider than a ${w} px screen`);
  await page.screenshot({ path: env('CS_SHOT'), fullPage: true });
  const decision = env('CS_DECISION', 'approve');
  await page.fill('textarea[name=reason]', `decided in Chromium: ${decision}`);
  await page.click(`button[value=${decision}]`);
  await page.waitForLoadState('load');
  const outcome = await page.textContent('body');
  if (!/Thank you/.test(outcome)) fail(`no outcome page: ${outcome.slice(0, 300)}`);
  const final = env('CS_FINAL', 'executed');
  let seen = '';
  for (let i = 0; i < 100 && !seen.includes(`is ${final}`); i++) {
    await page.goto(landed);
    seen = await page.textContent('body');
    if (!seen.includes(`is ${final}`)) await page.waitForTimeout(200);
  }
  if (!seen.includes(`is ${final}`)) fail(`the page never showed "${final}"`);
  console.log(`ok ${decision} -> ${final}`);
} finally {
  await browser.close();
}
