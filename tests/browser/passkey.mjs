// passkey.mjs -- an approver's passkey in real headless Chromium.
//
// Chromium (Debian's /usr/bin/chromium, never a downloaded browser) with a
// virtual authenticator from the DevTools Protocol's WebAuthn domain (CTAP2,
// internal, resident keys, user verification, presence simulated), so the
// pages' own script (api/passkey.js) runs navigator.credentials.create() and
// .get() as it would with a real passkey. One run does one CS_ACTION; the
// browser's cookies (CS_STATE) and the authenticator's credentials with their
// private keys and counters (CS_CREDS) are loaded from and saved to files, so
// tests/integration/test_passkeys.py can stop between steps and change the
// system under the same "device".
//
//   CS_ACTION   register | vote
//   CS_LINK     a one-time sign-in link to open first (press "Continue as")
//   CS_STATE    storage state file (cookies)    CS_CREDS   credentials file
//   register:   CS_BASE the api's URL, CS_NAME the passkey's name
//   vote:       CS_PAGE the approval's page, CS_DECISION approve | deny,
//               CS_REASON the reason, CS_SHOT a screenshot of the page before
//               the vote, CS_CAPTURE a file: the signed form POST is kept
//               there (url, body) and aborted instead of sent
//   CS_VIEWPORT WIDTHxHEIGHT (default 390x844, a phone)
//
// Prints one JSON line last: what the test checks (session cookie, the
// authenticator's counter, the page's texts).
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const env = (k, d) => process.env[k] ?? d;
const [w, h] = env('CS_VIEWPORT', '390x844').split('x').map(Number);
const action = env('CS_ACTION');
const out = { action };
const fail = (msg) => { throw new Error(msg); };
const readJson = (f) => (f && fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : null);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const state = readJson(env('CS_STATE'));
  const context = await browser.newContext({ viewport: { width: w, height: h },
                                             ...(state ? { storageState: state } : {}) });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
               hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });
  for (const credential of readJson(env('CS_CREDS')) ?? [])
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential });

  const link = env('CS_LINK');
  if (link) {
    await page.goto(link);
    if (!/Continue as/.test(await page.textContent('body'))) fail('no sign-in page');
    await Promise.all([page.waitForURL((u) => u.href !== link),
                       page.click('button:has-text("Continue as")')]);
  }
  const status = async () => (await page.locator('.passkey-status').allTextContents()).join(' ');

  if (action === 'register') {
    const name = env('CS_NAME');
    await page.goto(`${env('CS_BASE')}/passkeys`);
    await page.fill('input[name=name]', name);
    await page.click('button:has-text("Register a passkey")');
    try {
      await page.waitForSelector(`form.item b:text-is("${name}")`, { timeout: 30000 });
    } catch {
      fail(`not registered: "${await status()}" ${(await page.textContent('body')).slice(0, 400)}`);
    }
    out.listed = await page.locator('form.item b').allTextContents();
  } else if (action === 'vote') {
    const target = env('CS_PAGE');
    const decision = env('CS_DECISION', 'approve');
    await page.goto(target);
    if (await page.locator('form[data-passkey="1"]').count() !== 1)
      fail(`no passkey decision form: ${(await page.textContent('body')).slice(-600)}`);
    out.overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
    if (env('CS_SHOT')) await page.screenshot({ path: env('CS_SHOT'), fullPage: true });
    await page.fill('textarea[name=reason]', env('CS_REASON', ''));
    const capture = env('CS_CAPTURE');
    let captured = null;
    if (capture) {
      let resolve;
      captured = new Promise((r) => { resolve = r; });
      await page.route(target, async (route) => {
        const rq = route.request();
        if (rq.method() !== 'POST') return route.continue();
        fs.writeFileSync(capture, JSON.stringify({ url: rq.url(), body: rq.postData() ?? '' }));
        await route.abort();
        resolve(true);
      });
    }
    await page.click(`button[value=${decision}]`);
    if (captured) {
      const done = await Promise.race([captured, page.waitForTimeout(30000).then(() => false)]);
      if (!done) fail(`the signed vote was never sent: "${await status()}"`);
    } else {
      try {
        await page.waitForSelector('text=Thank you', { timeout: 30000 });
      } catch {
        fail(`no outcome page: "${await status()}" ${(await page.textContent('body')).slice(0, 600)}`);
      }
      out.outcome = (await page.textContent('h1')) ?? '';
    }
  } else {
    fail(`unknown CS_ACTION ${action}`);
  }

  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  out.sign_counts = credentials.map((c) => c.signCount);
  if (env('CS_CREDS')) fs.writeFileSync(env('CS_CREDS'), JSON.stringify(credentials));
  const saved = await context.storageState();
  if (env('CS_STATE')) fs.writeFileSync(env('CS_STATE'), JSON.stringify(saved));
  out.session = saved.cookies.find((c) => c.name === 'cs_session')?.value ?? null;
  out.ok = true;
} catch (err) {
  out.ok = false;
  out.error = String(err && err.message ? err.message : err);
  process.exitCode = 1;
} finally {
  await browser.close();
  console.log(JSON.stringify(out));
}
