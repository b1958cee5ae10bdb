// console.mjs -- an operator walks the console in a real browser.
//
// Headless Chromium (Debian's /usr/bin/chromium, never a downloaded browser)
// driven by playwright-core, against the real system that
// tests/integration/test_console.py starts. The operator signs in with a
// one-time link, then: reads the overview (and sees it refresh itself),
// filters the approvals list, opens a timeline, cancels an approval, pauses
// the grant, approves calls that then wait, resumes the grant and sees them
// executed, re-submits a failed call as a new approval, and checks that no
// page is wider than a 390 px phone or a 1440 px screen. Screenshots go to
// CS_SHOTS: overview.png, list.png, timeline.png, list-phone.png (and more).
// Settings (env):
//   CS_LINK      the operator's one-time sign-in link (leads to /console)
//   CS_SHOTS     the folder for screenshots
//   CS_PENDING   how many approvals are pending at the start
//   CS_CANCEL    an approval id to cancel           CS_GRANT   the grant to pause
//   CS_APPROVE   comma-separated pending approval ids to approve while paused
//   CS_AS        the approver to vote as            CS_FAILED  a failed approval id
import { chromium } from 'playwright-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) throw new Error(`${k} is required`);
  return v;
};
const shots = env('CS_SHOTS');
const failures = [];
const fail = (msg) => { console.error(`FAIL ${msg}`); failures.push(msg); };
const check = (ok, msg) => { if (!ok) fail(msg); };
const step = (msg) => console.log(`.. ${msg}`);

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function noOverflow(page, what) {
  const [scroll, inner] = await page.evaluate(
    () => [document.documentElement.scrollWidth, window.innerWidth]);
  check(scroll <= inner + 1, `${what}: ${scroll} px wide in a ${inner} px window`);
}

// Clicks a form's button and waits for the page the POST's 303 leads to.
async function submit(page, selector) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click(selector)]);
}

async function badge(page) {
  return (await page.textContent('p.mono .badge'))?.trim();
}

// Reloads url until the approval's badge says `status` (or gives up).
async function waitStatus(page, url, status, tries = 150) {
  let seen = '';
  for (let i = 0; i < tries; i++) {
    await page.goto(url);
    seen = await badge(page);
    if (seen === status) return true;
    await page.waitForTimeout(200);
  }
  fail(`${url} stayed ${seen}, never ${status}`);
  return false;
}

try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const link = env('CS_LINK');
  const base = new URL(link).origin;

  step('sign in');
  await page.goto(link);
  check(/Continue as/.test(await page.textContent('body')), 'no sign-in page');
  await Promise.all([page.waitForURL(`${base}/console`),
                     page.click('button:has-text("Continue as")')]);
  check((await page.textContent('h1')) === 'Overview', 'no overview after sign-in');

  step('overview');
  const pending = Number(await page.textContent('a[href="/console/approvals?status=pending"] b'));
  check(pending === Number(env('CS_PENDING')), `overview shows ${pending} pending`);
  check(await page.locator('svg').count() >= 5, 'the overview has no charts');
  await noOverflow(page, 'overview at 1440 px');
  await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });
  // The live refresh (CS_CONSOLE_REFRESH_SECONDS) swaps the counts in place.
  await page.waitForFunction(() => document.body.dataset.refreshed, null, { timeout: 15000 })
    .catch(() => fail('the overview never refreshed itself'));

  step('filter the approvals');
  await page.click('header a[href="/console/approvals"]');
  await page.selectOption('select[name=status]', 'pending');
  await page.fill('input[name=grant]', env('CS_GRANT'));
  await Promise.all([page.waitForURL(/status=pending/), page.click('button:has-text("Filter")')]);
  const rows = await page.locator('#list table tr').count() - 1;
  check(rows === pending, `the pending filter lists ${rows} rows, not ${pending}`);
  const statuses = await page.locator('#list .badge').allTextContents();
  check(statuses.every((s) => s === 'pending'), `the filter let through ${statuses}`);
  await noOverflow(page, 'list at 1440 px');
  await page.screenshot({ path: `${shots}/list.png`, fullPage: true });

  step('open a timeline');
  await Promise.all([page.waitForURL(/\/console\/approvals\/[0-9a-f-]{36}$/),
                     page.click('#list table tr:nth-child(2) td a')]);
  const timeline = await page.textContent('body');
  check(timeline.includes('sha256:') && timeline.includes('approval.created'),
        'the timeline lacks the digest or the created entry');
  await noOverflow(page, 'timeline at 1440 px');
  await page.screenshot({ path: `${shots}/timeline.png`, fullPage: true });

  step('cancel one');
  const cancelUrl = `${base}/console/approvals/${env('CS_CANCEL')}`;
  await page.goto(cancelUrl);
  await page.fill('form[action$="/cancel"] input[name=reason]', 'cancelled in Chromium');
  await submit(page, '#cancel');
  check(await badge(page) === 'cancelled', 'the approval is not cancelled');

  step('pause the grant, approve, see the calls wait');
  const grant = env('CS_GRANT');
  await page.goto(`${base}/console/grants`);
  await submit(page, `form[action="/console/grants/${grant}/pause"] button`);
  check((await page.textContent(`#grant-${grant}`)).includes('paused'), 'the grant is not paused');
  const toApprove = env('CS_APPROVE').split(',');
  for (const id of toApprove) {
    const url = `${base}/console/approvals/${id}`;
    await page.goto(url);
    await page.selectOption('form[action$="/decide"] select[name=as]', env('CS_AS'));
    await submit(page, 'form[action$="/decide"] button[value=approve]');
    check(await badge(page) === 'approved', `${id} is not approved`);
  }
  await page.waitForTimeout(2000);
  for (const id of toApprove) {
    await page.goto(`${base}/console/approvals/${id}`);
    check(await badge(page) === 'approved', `${id} ran while its grant was paused`);
  }
  await page.goto(`${base}/console/grants`);
  await page.screenshot({ path: `${shots}/grants-paused.png`, fullPage: true });

  step('resume: the calls run');
  await submit(page, `form[action="/console/grants/${grant}/resume"] button`);
  check(!(await page.textContent(`#grant-${grant}`)).includes('paused'), 'the grant is still paused');
  for (const id of toApprove) await waitStatus(page, `${base}/console/approvals/${id}`, 'executed');

  step('re-submit a failed call');
  const failedUrl = `${base}/console/approvals/${env('CS_FAILED')}`;
  await page.goto(failedUrl);
  check(await badge(page) === 'failed', 'the failed call is not failed');
  await submit(page, '#resubmit');
  const fresh = page.url();
  check(/\/console\/approvals\/[0-9a-f-]{36}$/.test(fresh) && fresh !== failedUrl,
        `the re-submission landed on ${fresh}`);
  check((await page.textContent('body')).includes('resubmission_of'),
        'the new approval does not say what it re-submits');
  await waitStatus(page, fresh, 'executed');
  await page.goto(failedUrl);
  check(await badge(page) === 'failed', 'the failed call changed');

  step('a phone');
  const phone = await context.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  for (const [path, shot] of [['/console/approvals', 'list-phone'], ['/console', 'overview-phone'],
                              [`/console/approvals/${env('CS_FAILED')}`, 'timeline-phone'],
                              ['/console/grants', 'grants-phone']]) {
    await phone.goto(base + path);
    await noOverflow(phone, `${path} at 390 px`);
    await phone.screenshot({ path: `${shots}/${shot}.png`, fullPage: true });
  }
  for (const path of ['/console/batches', '/console/policies', '/console/approvers',
                      '/console/dead-letters', '/console/audit']) {
    await phone.goto(base + path);
    await noOverflow(phone, `${path} at 390 px`);
  }
} finally {
  await browser.close();
}
if (failures.length) process.exitCode = 1;
else console.log('ok console');
