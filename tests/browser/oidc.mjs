// oidc.mjs -- a person signs in with single sign-on and approves, in a real browser.
//
// Opens the agent's approval_url in headless Chromium (Debian's
// /usr/bin/chromium, never a downloaded browser) while signed out, checks it
// shows the status and a "Sign in to decide" box but no decision form, saves a
// screenshot, presses "Sign in with single sign-on", signs in at the OpenID
// provider (tests/oidc/provider.mjs: its development login form, then its
// consent page), checks that it comes back to the same page signed in with
// the decision form, saves a second screenshot, presses Approve, checks the
// outcome page and reloads until the page shows the final status.
// Driven by tests/integration/test_oidc.py through env:
//   CS_PAGE        the approval_url                 CS_LOGIN     the login name at the provider
//   CS_NAME        the approver it signs in as      CS_REASON    text to expect on the page
//   CS_SHOT_BEFORE screenshot of the signed-out page
//   CS_SHOT_AFTER  screenshot of the signed-in decision page
//   CS_FINAL       the status to wait for (default executed)
//   CS_VIEWPORT    WIDTHxHEIGHT (default 390x844, a phone)
// Prints "ok ..." and exits 0, or prints FAIL lines and exits 1.
import { chromium } from 'playwright-core';

const env = (k, d) => process.env[k] ?? d;
const approvalUrl = env('CS_PAGE');
const [w, h] = env('CS_VIEWPORT', '390x844').split('x').map(Number);
let failed = false;
const fail = (msg) => { console.error(`FAIL ${msg}`); failed = true; };
const must = (ok, msg) => { if (!ok) throw new Error(msg); };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  // playwright gives every launch a fresh, empty profile directory of its own.
});
try {
  const page = await browser.newPage({ viewport: { width: w, height: h } });
  const wide = () => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);

  // Signed out: status only, and the ways to sign in.
  await page.goto(approvalUrl);
  const before = await page.textContent('body');
  must(/Sign in to decide/.test(before), `no sign-in box: ${before.slice(0, 300)}`);
  if (!before.includes(env('CS_REASON'))) fail('the reason is not shown before sign-in');
  if (await page.locator('input[name=csrf]').count()) fail('a signed-out page holds a form token');
  if (await wide()) fail(`the signed-out page is wider than a ${w} px screen`);
  await page.screenshot({ path: env('CS_SHOT_BEFORE'), fullPage: true });

  // Single sign-on: the provider's login form, then its consent page.
  await page.click('a:has-text("Sign in with single sign-on")');
  await page.waitForSelector('input[name=login]');
  must(new URL(page.url()).origin !== new URL(approvalUrl).origin, `login form on ${page.url()}`);
  await page.fill('input[name=login]', env('CS_LOGIN'));
  await page.fill('input[name=password]', 'any password');
  await page.click('button:has-text("Sign-in")');
  await page.waitForSelector('input[name=prompt][value=consent]', { state: 'attached' });
  await Promise.all([page.waitForURL(approvalUrl), page.click('button:has-text("Continue")')]);

  // Back on the approval_url, signed in, with the decision form.
  const cookies = await page.context().cookies(approvalUrl);
  const session = cookies.find((c) => c.name === 'cs_session');
  if (!session || !session.httpOnly || session.sameSite !== 'Lax') fail('no HttpOnly SameSite=Lax session cookie');
  const state = (await page.context().cookies(new URL('/signin/oidc', approvalUrl).href))
    .find((c) => c.name === 'cs_oidc' && c.value !== '');
  if (state) fail('the cs_oidc state cookie outlived the sign-in');
  const text = await page.textContent('body');
  if (!text.includes(`Signed in as ${env('CS_NAME')}`)) fail(`not signed in as ${env('CS_NAME')}: ${text.slice(0, 300)}`);
  if (!text.includes(env('CS_REASON'))) fail('the reason is not shown after sign-in');
  must(await page.locator('form.card button[value=approve]').count() === 1, 'no decision form after sign-in');
  if (await wide()) fail(`the decision page is wider than a ${w} px screen`);
  await page.screenshot({ path: env('CS_SHOT_AFTER'), fullPage: true });

  await page.fill('textarea[name=reason]', 'approved after single sign-on');
  await page.click('button[value=approve]');
  await page.waitForFunction(() => !document.querySelector('button[value=approve]'));
  const outcome = await page.textContent('body');
  if (!/Thank you: approved/.test(outcome)) fail(`no outcome page: ${outcome.slice(0, 300)}`);
  const final = env('CS_FINAL', 'executed');
  let seen = '';
  for (let i = 0; i < 150 && !seen.includes(`is ${final}`); i++) {
    await page.goto(approvalUrl);
    seen = await page.textContent('body');
    if (!seen.includes(`is ${final}`)) await page.waitForTimeout(200);
  }
  if (!seen.includes(`is ${final}`)) fail(`the page never showed "${final}"`);
  if (!failed) console.log(`ok ${env('CS_LOGIN')} signed in as ${env('CS_NAME')} -> ${final}`);
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
  process.exitCode = failed ? 1 : 0;
}
