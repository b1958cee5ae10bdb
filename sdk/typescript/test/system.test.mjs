// The SDK against the real running system: countersign-api, worker and
// scheduler on a private Postgres and Kafka, a stub provider on loopback.
// tests/integration/test_sdk_typescript.py starts all of that, programs the
// stub, and runs this file once per scenario with:
//
//   COUNTERSIGN_URL      the api's base URL
//   COUNTERSIGN_API_KEY  a key of agent bot1
//   CS_STUB_URL          the stub provider's base URL (grant "stripe" allows it)
//   CS_CLI               the countersign binary (for `approval links`, `batch links`)
//   CS_SDK_SCENARIO      main (window 1 h) | expiry (window 2 s) | batch (policy
//                        "always", grant "second" with another policy exists too)
//   CS_PG_URL, CS_MASTER_KEY, CS_PUBLIC_URL, ...  for the CLI
//
// Policy "pay" (harness System.setup): POST /v1/refunds* with amount > 100
// needs one approval of alice or bob; everything else runs inline. Approvers
// decide as people do: take their one-time sign-in link (`countersign approval
// links` / `batch links`), GET it ("Continue as NAME", nothing spent), POST it
// (303: an HttpOnly cs_session cookie and Location, the approval's or batch's
// page as a local path), GET that page with the cookie and POST its decision
// form (a hidden csrf bound to the session; a batch page adds a digest) with
// the cookie and an Origin header. The agent's approvalUrl is that same page:
// without a session it shows no form and refuses a decision.
//
// Stub programming done by the Python side (the paths below must match):
//   /v1/refunds/approve  201 {"refund":"re_approved"}, X-Provider: stub
//   /v1/refunds/later    201 {"refund":"re_later"}
//   /v1/refunds/broken   closes the connection without an answer
//   anything else        200 {"ok":true,"path":PATH}

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";

import {
  Agent,
  BatchStatus,
  HttpMethod,
  PendingApproval,
  ApprovalResult,
  ApprovalStatus,
  CountersignError,
  ApprovalDeniedError,
  ApprovalExpiredError,
  ApprovalTimeoutError,
  ApprovalExecutionFailedError,
  ApprovalCancelledError,
  AuthenticationError,
  NotFoundError,
  ValidationError,
  InvalidArgumentError,
  ConflictError,
} from "countersign";

for (const name of ["COUNTERSIGN_URL", "COUNTERSIGN_API_KEY", "CS_STUB_URL", "CS_CLI"]) {
  if (!process.env[name]) {
    throw new Error(`${name} is not set: run this through tests/integration/test_sdk_typescript.py`);
  }
}
const BASE = process.env.COUNTERSIGN_URL.replace(/\/+$/, "");
const KEY = process.env.COUNTERSIGN_API_KEY;
const STUB = process.env.CS_STUB_URL.replace(/\/+$/, "");
const CLI = process.env.CS_CLI;
const SCENARIO = process.env.CS_SDK_SCENARIO ?? "main";
const MULT = Number(process.env.CS_TEST_TIMEOUT_MULT ?? "1") || 1;
const scaled = (seconds) => seconds * MULT;

// The default agent: base URL and key from the environment, as a user would.
const agent = new Agent({ apiKey: KEY });

// ---- helpers ------------------------------------------------------------------

/** Submits a refund that needs approval and checks the pending answer. */
async function submitRefund(path, { amount = 500, reason, ...extra } = {}) {
  const before = Date.now();
  const p = await agent.proxyRequest(HttpMethod.POST, `${STUB}${path}`, {
    grantId: "stripe",
    json: { charge: "ch_" + path.split("/").pop(), amount },
    reason: reason ?? `refund of ${amount} for ${path}: customer charged twice (ticket #4312)`,
    ...extra,
  });
  assert.ok(p instanceof PendingApproval, `expected a PendingApproval, got ${p?.constructor?.name}`);
  assert.ok(!(p instanceof ApprovalResult));
  assert.match(p.approvalId, /^[0-9a-f-]{36}$/);
  assert.equal(p.status, "pending");
  assert.ok(p.expiresAt instanceof Date && p.expiresAt.getTime() > before - 5000);
  assert.equal(typeof p.approvalUrl, "string");
  assert.ok(p.approvalUrl.startsWith("http"), p.approvalUrl);
  return p;
}

const SIGNIN_LINK = /^https?:\/\/[^/]+\/signin\/[A-Za-z0-9_-]{43}$/;

/** Each approver's one-time sign-in link, by approver name, from `countersign ARGS`. */
function signinLinks(args) {
  const out = execFileSync(CLI, args, {
    env: process.env,
    encoding: "utf8",
    timeout: scaled(60) * 1000,
  });
  const byName = {};
  for (const line of out.split("\n")) {
    if (!line.trim()) continue;
    const l = JSON.parse(line);
    assert.match(l.url, SIGNIN_LINK, line);
    assert.equal(typeof l.voter_id, "string", line);
    byName[l.approver ?? l.approver_id] = l.url;
  }
  return byName;
}

/** Fresh sign-in links for an approval's approvers (countersign approval links ID). */
const links = (approvalId) => signinLinks(["approval", "links", approvalId]);

/** Fresh sign-in links for a batch's approvers (countersign batch links bot1 BATCH). */
const batchLinks = (batchId) => signinLinks(["batch", "links", "bot1", batchId]);

function htmlUnescape(s) {
  return s
    .replace(/&quot;/g, '"')
    .replace(/&#0*39;|&#x0*27;|&apos;/gi, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** The value of hidden input `name` in an HTML fragment, or undefined. */
function hiddenValue(html, name) {
  for (const tag of html.match(/<input\b[^>]*>/gi) ?? []) {
    if (!new RegExp(`\\bname\\s*=\\s*["']?${name}["'\\s/>]`, "i").test(tag)) continue;
    const v = /\bvalue\s*=\s*"([^"]*)"|\bvalue\s*=\s*'([^']*)'|\bvalue\s*=\s*([^\s>]+)/i.exec(tag);
    return v ? htmlUnescape(v[1] ?? v[2] ?? v[3]) : undefined;
  }
  return undefined;
}

/** The page's decision form (the one with the decision buttons, not the sign-out bar), or undefined. */
function decisionForm(html) {
  return (html.match(/<form\b[\s\S]*?<\/form>/gi) ?? []).find((f) => /\bname\s*=\s*["']?decision\b/i.test(f));
}

/**
 * Signs in with a one-time link as a person does: GET it (a "Continue as"
 * form; nothing spent, no cookie), POST it (303 with the cs_session cookie
 * and Location, a local path). Returns the cookie and the page's absolute URL.
 */
async function signIn(link) {
  const shown = await fetch(link, { redirect: "manual" });
  const html = await shown.text();
  assert.equal(shown.status, 200, `GET ${link} -> ${shown.status}: ${html.slice(0, 300)}`);
  assert.match(html, /Continue as/);
  assert.match(html, /<form\b[^>]*\bmethod\s*=\s*["']?post\b/i, "no <form method=post> on the sign-in page");
  assert.deepEqual(shown.headers.getSetCookie(), [], "a GET of the sign-in link set a cookie");
  const res = await fetch(link, { method: "POST", redirect: "manual", headers: { Origin: BASE } });
  const body = await res.text();
  assert.equal(res.status, 303, `POST ${link} -> ${res.status}: ${body.slice(0, 300)}`);
  const set = res.headers.getSetCookie().find((c) => c.startsWith("cs_session="));
  assert.ok(set, `no cs_session cookie: ${JSON.stringify(res.headers.getSetCookie())}`);
  assert.match(set, /;\s*HttpOnly/i);
  assert.match(set, /;\s*SameSite=Lax/i);
  const location = res.headers.get("location") ?? "";
  assert.match(location, /^\/(status|batch)\/[A-Za-z0-9_-]+$/, `Location ${location}`);
  return { cookie: set.split(";")[0].trim(), page: new URL(location, `${BASE}/`).href };
}

/** GETs a page (with the session cookie when there is one): its HTML, decision form, csrf (and digest) when it has one. */
async function openPage(session) {
  const res = await fetch(session.page, { redirect: "manual", headers: session.cookie ? { Cookie: session.cookie } : {} });
  const html = await res.text();
  assert.equal(res.status, 200, `GET ${session.page} -> ${res.status}: ${html.slice(0, 300)}`);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  const form = decisionForm(html);
  return {
    html,
    form,
    csrf: form && hiddenValue(form, "csrf"),
    digest: form && hiddenValue(form, "digest"),
    anyCsrf: hiddenValue(html, "csrf"),
  };
}

/** POSTs a decision form to the session's page with its cookie (if any) and Origin; the status and HTML. */
async function postDecision(session, fields) {
  const res = await fetch(session.page, {
    method: "POST",
    redirect: "manual",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      ...(session.cookie ? { Cookie: session.cookie } : {}),
      Origin: BASE,
    },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, html: await res.text() };
}

/** Signs in with an approver's link and approves or denies on the approval's page. */
async function decide(link, decision, reason) {
  const session = await signIn(link);
  const page = await openPage(session);
  assert.ok(page.csrf, `no decision form with a csrf field: ${page.html.slice(0, 500)}`);
  const res = await postDecision(session, { decision, reason, csrf: page.csrf });
  assert.equal(res.status, 200, `POST ${decision} -> ${res.status}: ${res.html.slice(0, 500)}`);
  assert.match(res.html, /Thank you/);
  return session;
}

/**
 * Decides a batch on its page as a person would: sign in with the batch
 * link, GET the page (hidden csrf and digest), POST the form with the cookie
 * and Origin; `denyOnly` lists the request ids to deny while approving the rest.
 */
async function decideBatch(link, decision, reason, denyOnly = []) {
  const session = await signIn(link);
  assert.ok(session.page.startsWith(`${BASE}/batch/`), session.page);
  const page = await openPage(session);
  assert.ok(page.csrf, `no decision form with a csrf field: ${page.html.slice(0, 500)}`);
  assert.match(page.digest ?? "", /^[0-9a-f]{64}$/, "no hidden digest input on the batch page");
  const res = await postDecision(session, { decision, reason, csrf: page.csrf, digest: page.digest, except: denyOnly.join("\n") });
  assert.equal(res.status, 200, `POST ${decision} -> ${res.status}: ${res.html.slice(0, 500)}`);
  return res.html;
}

async function rejects(promise, Class, check = () => {}) {
  let caught;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, `expected ${Class.name}, the call succeeded`);
  assert.ok(
    caught instanceof Class,
    `expected ${Class.name}, got ${caught?.name} ${caught?.code} ${caught?.statusCode}: ${caught?.message}`,
  );
  assert.ok(caught instanceof CountersignError);
  check(caught);
  return caught;
}

/** Polls getApprovalStatus until `pred` holds. */
async function waitStatus(approvalId, pred, seconds = 30) {
  const end = Date.now() + scaled(seconds) * 1000;
  for (;;) {
    const s = await agent.getApprovalStatus(approvalId);
    if (pred(s)) return s;
    if (Date.now() > end) assert.fail(`approval ${approvalId} stayed ${s.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- main: window 1 h ------------------------------------------------------------

if (SCENARIO === "main") {
  describe("no approval needed", () => {
    it("a small refund executes inline and returns the provider's answer", async () => {
      let r = await agent.proxyRequest("post", `${STUB}/v1/refunds/small`, {
        grantId: "stripe",
        json: { charge: "ch_small", amount: 50 },
        reason: "refund of 50 cents for a rounding error on order #17",
      });
      if (r instanceof PendingApproval) {
        // Allowed by the contract when the inline wait ran out: still executing, no approval.
        assert.ok(["approved", "executing"].includes(r.status), `inline call came back ${r.status}`);
        r = await agent.awaitApproval(r.approvalId, { timeout: scaled(30) });
      }
      assert.ok(r instanceof ApprovalResult);
      assert.equal(r.status, "executed");
      assert.equal(r.statusCode, 200);
      assert.equal(r.bodyTruncated, false);
      assert.match(r.headers["content-type"], /application\/json/);
      assert.deepEqual(r.bodyJson(), { ok: true, path: "/v1/refunds/small" });
      assert.equal(r.bodyText(), new TextDecoder().decode(r.bodyBytes()));
      const s = await agent.getApprovalStatus(r.approvalId);
      assert.equal(s.status, "executed");
      assert.equal(s.isTerminal, true);
      assert.equal(s.hasResult, true);
      // The result can be fetched again.
      const again = await agent.awaitApproval(r.approvalId, { timeout: 0 });
      assert.equal(again.bodyB64, r.bodyB64);
    });

    it("path and query parameters are filled in (GET, no body)", async () => {
      let r = await agent.proxyRequest(HttpMethod.GET, `${STUB}/v1/charges/{charge}`, {
        grantId: "stripe",
        pathParams: { charge: "ch_42" },
        queryParams: { expand: ["customer", "invoice"], limit: 3 },
        reason: "look up the charge disputed in ticket #4400",
      });
      if (r instanceof PendingApproval) r = await agent.awaitApproval(r.approvalId, { timeout: scaled(30) });
      const path = r.bodyJson().path;
      assert.ok(path.startsWith("/v1/charges/ch_42?"), path);
      assert.ok(path.includes("customer") && path.includes("invoice") && path.includes("limit=3"), path);
    });

    it("a binary body is sent as is", async () => {
      let r = await agent.proxyRequest(HttpMethod.PUT, `${STUB}/v1/files/receipt-17`, {
        grantId: "stripe",
        body: new Uint8Array([0, 1, 2, 253, 254, 255]),
        extraHeaders: { "Content-Type": "application/octet-stream" },
        reason: "upload the receipt for order #17",
      });
      if (r instanceof PendingApproval) r = await agent.awaitApproval(r.approvalId, { timeout: scaled(30) });
      assert.equal(r.statusCode, 200);
    });
  });

  describe("approval needed", () => {
    it("pending -> alice signs in with her link and approves on approvalUrl's page -> the provider's result", async () => {
      const reason = "customer charged twice for order #4312, refunding the duplicate";
      const p = await submitRefund("/v1/refunds/approve", {
        reason,
        context: { ticket: 4312 },
        extraHeaders: { "X-Trace": "sdk-ts-approve" },
      });
      assert.ok(p.expiresAt.getTime() - Date.now() > 30 * 60 * 1000, "window of 1 h");

      const s = await agent.getApprovalStatus(p.approvalId);
      assert.ok(s instanceof ApprovalStatus);
      assert.equal(s.approvalId, p.approvalId);
      assert.equal(s.status, "pending");
      assert.equal(s.isTerminal, false);
      assert.equal(s.hasResult, false);
      assert.equal(s.approvalsRequired, 1);
      assert.equal(s.approvalsReceived, 0);
      assert.equal(s.expiresAt.getTime(), p.expiresAt.getTime());

      // approvalUrl is the approval's page for people: without a session it
      // shows the status and how to sign in, never a decision form, and a
      // decision POSTed to it is refused. Nothing the agent holds votes.
      const anon = await openPage({ page: p.approvalUrl });
      assert.equal(anon.form, undefined, "a decision form without a session");
      assert.match(anon.html, /Sign in to decide/);
      const agentVote = await postDecision({ page: p.approvalUrl }, { decision: "approve", reason: "the agent", csrf: "x" });
      assert.equal(agentVote.status, 401, agentVote.html.slice(0, 300));

      const l = links(p.approvalId);
      assert.ok(l.alice && l.bob, `links: ${JSON.stringify(l)}`);
      // Alice's link signs her in and leads to that same page, which now shows
      // the request, the agent's reason and the decision form; nothing changed.
      const session = await signIn(l.alice);
      assert.equal(session.page, p.approvalUrl);
      const page = await openPage(session);
      assert.ok(page.html.includes("charged twice for order"), "the reason is not on the approval page");
      assert.ok(page.csrf, `no decision form for alice: ${page.html.slice(0, 500)}`);
      assert.equal((await agent.getApprovalStatus(p.approvalId)).status, "pending");
      // The link worked once.
      const again = await fetch(l.alice, { method: "POST", redirect: "manual", headers: { Origin: BASE } });
      await again.text();
      assert.equal(again.status, 403);

      const voted = await postDecision(session, { decision: "approve", reason: "ticket checked, duplicate confirmed", csrf: page.csrf });
      assert.equal(voted.status, 200, voted.html.slice(0, 500));
      assert.match(voted.html, /Thank you: approved/);
      const r = await agent.awaitApproval(p.approvalId, { timeout: scaled(60) });
      assert.ok(r instanceof ApprovalResult);
      assert.equal(r.approvalId, p.approvalId);
      assert.equal(r.statusCode, 201);
      assert.equal(r.headers["x-provider"], "stub");
      assert.deepEqual(r.bodyJson(), { refund: "re_approved" });
      assert.equal(Buffer.from(r.bodyBytes()).toString(), '{"refund":"re_approved"}');

      const done = await agent.getApprovalStatus(p.approvalId);
      assert.equal(done.status, "executed");
      assert.equal(done.isTerminal, true);
      assert.equal(done.hasResult, true);
      assert.equal(done.approvalsReceived, 1);
      assert.ok(done.decidedAt instanceof Date);
      assert.ok(done.executedAt instanceof Date);
    });

    it("bob signs in and denies: ApprovalDeniedError carries his reason", async () => {
      const p = await submitRefund("/v1/refunds/deny");
      await decide(links(p.approvalId).bob, "deny", "duplicate refund, already paid in re_77");
      const e = await rejects(agent.awaitApproval(p.approvalId, { timeout: scaled(60) }), ApprovalDeniedError);
      assert.equal(e.code, "denied");
      assert.equal(e.statusCode, 409);
      assert.equal(e.details.reason, "duplicate refund, already paid in re_77");
      assert.equal(e.reason, "duplicate refund, already paid in re_77");
      assert.ok(e.decidedBy, "decided_by is reported");
      assert.equal(e.approvalId, p.approvalId);
      const s = await agent.getApprovalStatus(p.approvalId);
      assert.equal(s.status, "denied");
      assert.equal(s.isTerminal, true);
      assert.equal(s.hasResult, false);
      assert.equal(s.decisionReason, "duplicate refund, already paid in re_77");
      // A second await says the same.
      await rejects(agent.awaitApproval(p.approvalId, { timeout: 0 }), ApprovalDeniedError);
    });

    it("the local wait gives up while pending; a later await gets the result", async () => {
      const p = await submitRefund("/v1/refunds/later");
      const t0 = Date.now();
      const e = await rejects(agent.awaitApproval(p.approvalId, { timeout: 2 }), ApprovalTimeoutError, (err) => {
        assert.equal(err.approvalId, p.approvalId);
        assert.equal(err.statusCode, null);
        assert.equal(err.code, "timeout");
      });
      const took = (Date.now() - t0) / 1000;
      assert.ok(took >= 1.9 && took < scaled(2) + 8, `waited ${took}s for a 2 s timeout`);
      assert.equal(e.details.status, "pending");
      assert.ok(e.lastStatus instanceof ApprovalStatus && e.lastStatus.status === "pending");
      assert.equal((await agent.getApprovalStatus(p.approvalId)).status, "pending");

      await decide(links(p.approvalId).alice, "approve", "ok after the call with the customer");
      const r = await agent.awaitApproval(p.approvalId, { timeout: scaled(60) });
      assert.equal(r.statusCode, 201);
      assert.deepEqual(r.bodyJson(), { refund: "re_later" });
    });

    it("an aborted await stops at once through an injected fetch; the approval stays pending", async () => {
      const seen = [];
      const traced = new Agent({
        apiKey: KEY,
        fetch: (url, init) => {
          seen.push(`${init.method} ${new URL(url).pathname}`);
          return globalThis.fetch(url, init);
        },
      });
      const p = await traced.proxyRequest(HttpMethod.POST, `${STUB}/v1/refunds/abort`, {
        grantId: "stripe",
        json: { amount: 500 },
        reason: "refund to be abandoned by the caller (ticket #31)",
      });
      assert.ok(p instanceof PendingApproval);
      const ctl = new AbortController();
      const t0 = Date.now();
      const waiting = traced.awaitApproval(p.approvalId, { timeout: scaled(60), signal: ctl.signal });
      setTimeout(() => ctl.abort(new Error("caller went away")), 300);
      await assert.rejects(waiting, /caller went away/);
      const took = (Date.now() - t0) / 1000;
      assert.ok(took < 5, `the abort took ${took}s to land`);
      assert.deepEqual(seen, ["POST /v1/proxy", `GET /v1/approvals/${p.approvalId}/result`]);
      assert.equal((await traced.getApprovalStatus(p.approvalId)).status, "pending");
      // A local argument error sends nothing; the server's refusal is a ValidationError.
      await rejects(traced.proxyRequest("POST", `${STUB}/v1/refunds/abort`, { json: {} }), InvalidArgumentError);
      assert.equal(seen.length, 3);
      const status = await traced.cancelApproval(p.approvalId, { reason: "abandoned", signal: AbortSignal.timeout(scaled(30) * 1000) });
      assert.equal(status.status, "cancelled");
    });

    it("execution failure after approval: ApprovalExecutionFailedError with details", async () => {
      const p = await submitRefund("/v1/refunds/broken/approved");
      await decide(links(p.approvalId).alice, "approve", "approved; provider will drop the line");
      const e = await rejects(
        agent.awaitApproval(p.approvalId, { timeout: scaled(90) }),
        ApprovalExecutionFailedError,
      );
      assert.equal(e.code, "execution_failed");
      assert.equal(e.statusCode, 502);
      assert.equal(e.details.error_code, "outcome_unknown");
      assert.equal(e.errorCode, "outcome_unknown");
      assert.equal(typeof e.details.error_message, "string");
      const s = await agent.getApprovalStatus(p.approvalId);
      assert.equal(s.status, "failed");
      assert.equal(s.isTerminal, true);
      assert.equal(s.errorCode, "outcome_unknown");
    });

    it("execution failure of an inline call", async () => {
      let e;
      try {
        const r = await agent.proxyRequest("POST", `${STUB}/v1/refunds/broken/inline`, {
          grantId: "stripe",
          json: { charge: "ch_inline", amount: 5 },
          reason: "refund of 5 cents, no approval needed",
        });
        assert.ok(r instanceof PendingApproval, `expected a failure, got ${r.constructor.name} ${r.statusCode}`);
        assert.ok(["approved", "executing"].includes(r.status), r.status);
        await agent.awaitApproval(r.approvalId, { timeout: scaled(90) });
      } catch (err) {
        e = err;
      }
      assert.ok(e instanceof ApprovalExecutionFailedError, `got ${e?.name} ${e?.code}: ${e?.message}`);
      assert.equal(e.details.error_code, "outcome_unknown");
    });

    it("cancel: ApprovalStatus cancelled, then ApprovalCancelledError; cancelling again conflicts", async () => {
      const p = await submitRefund("/v1/refunds/cancel");
      const s = await agent.cancelApproval(p.approvalId, { reason: "customer withdrew the request" });
      assert.ok(s instanceof ApprovalStatus);
      assert.equal(s.status, "cancelled");
      assert.equal(s.isTerminal, true);
      const e = await rejects(agent.awaitApproval(p.approvalId, { timeout: scaled(10) }), ApprovalCancelledError);
      assert.equal(e.code, "cancelled");
      assert.equal(e.statusCode, 409);
      await rejects(agent.cancelApproval(p.approvalId), ConflictError, (err) => assert.equal(err.statusCode, 409));
    });

    it("an idempotency key returns the first answer", async () => {
      const key = `refund-${randomUUID()}`;
      const a = await submitRefund("/v1/refunds/idem", { idempotencyKey: key });
      const b = await submitRefund("/v1/refunds/idem", { idempotencyKey: key });
      assert.equal(b.approvalId, a.approvalId);
      await agent.cancelApproval(a.approvalId, { reason: "test cleanup" });
    });
  });

  describe("refusals", () => {
    it("a bad API key is an AuthenticationError (and the key is not echoed)", async () => {
      const bogus = `cs_bogus_${randomUUID().replace(/-/g, "")}`;
      const bad = new Agent({ apiKey: bogus, baseUrl: BASE });
      const e = await rejects(
        bad.proxyRequest("POST", `${STUB}/v1/refunds/x`, { grantId: "stripe", json: { amount: 1 } }),
        AuthenticationError,
      );
      assert.equal(e.statusCode, 401);
      assert.equal(e.code, "unauthenticated");
      assert.ok(!JSON.stringify(e).includes(bogus) && !e.message.includes(bogus));
      await rejects(bad.getApprovalStatus(randomUUID()), AuthenticationError);
      await rejects(bad.awaitApproval(randomUUID(), { timeout: 0 }), AuthenticationError);
      // The X-Api-Key header is accepted as well.
      const viaHeader = new Agent({ apiKey: KEY, baseUrl: BASE, authHeader: "x-api-key" });
      await rejects(viaHeader.getApprovalStatus(randomUUID()), NotFoundError);
    });

    it("a forbidden header is a ValidationError forbidden_header", async () => {
      for (const name of ["Authorization", "Cookie", "X-Api-Key", "Idempotency-Key"]) {
        const e = await rejects(
          agent.proxyRequest("POST", `${STUB}/v1/refunds/hdr`, {
            grantId: "stripe",
            json: { amount: 500 },
            extraHeaders: { [name]: "Bearer sk_live_stolen" },
            reason: "trying to smuggle a credential",
          }),
          ValidationError,
        );
        assert.equal(e.code, "forbidden_header", `${name}: ${e.code}`);
        assert.equal(e.statusCode, 400);
      }
    });

    it("an unknown grant is a NotFoundError unknown_grant", async () => {
      const e = await rejects(
        agent.proxyRequest("POST", `${STUB}/v1/refunds/nogrant`, { grantId: "no-such-grant", json: { amount: 500 } }),
        NotFoundError,
      );
      assert.equal(e.code, "unknown_grant");
      assert.equal(e.statusCode, 404);
    });

    it("an unknown approval is a NotFoundError", async () => {
      const id = randomUUID();
      await rejects(agent.getApprovalStatus(id), NotFoundError, (e) => assert.equal(e.statusCode, 404));
      await rejects(agent.awaitApproval(id, { timeout: 0 }), NotFoundError);
      await rejects(agent.cancelApproval(id), NotFoundError);
    });
  });
}

// ---- expiry: window 2 s ------------------------------------------------------------

if (SCENARIO === "expiry") {
  describe("expiry", () => {
    it("nobody decides: ApprovalExpiredError, nobody can decide any more, nothing executes", async () => {
      const p = await submitRefund("/v1/refunds/expire");
      const left = p.expiresAt.getTime() - Date.now();
      assert.ok(left < 10_000, `expires in ${left} ms with a 2 s window`);
      const l = links(p.approvalId);
      const t0 = Date.now();
      const e = await rejects(agent.awaitApproval(p.approvalId, { timeout: scaled(30) }), ApprovalExpiredError);
      assert.equal(e.code, "expired");
      assert.equal(e.statusCode, 410);
      assert.equal(e.approvalId, p.approvalId);
      assert.ok(Date.now() - t0 < scaled(20) * 1000);
      const s = await waitStatus(p.approvalId, (x) => x.isTerminal);
      assert.equal(s.status, "expired");
      assert.equal(s.hasResult, false);
      // Signed in with the link minted before the deadline, alice finds the
      // page without a decision form, and a decision is refused as expired.
      const session = await signIn(l.alice);
      assert.equal(session.page, p.approvalUrl);
      const page = await openPage(session);
      assert.equal(page.form, undefined, "a decision form on an expired approval");
      assert.match(page.html, /expired/);
      assert.ok(page.anyCsrf, "a signed-in page without the session's csrf (sign-out bar)");
      const late = await postDecision(session, { decision: "approve", reason: "too late", csrf: page.anyCsrf });
      assert.equal(late.status, 410, late.html.slice(0, 300));
      // Cancelling an expired approval conflicts.
      await rejects(agent.cancelApproval(p.approvalId), ConflictError);
    });
  });
}

// ---- batch: policy "always" --------------------------------------------------------

if (SCENARIO === "batch") {
  const refunds = (n, prefix = "batch") =>
    Array.from({ length: n }, (_, i) => ({
      method: "POST",
      url: `${STUB}/v1/refunds/${prefix}/${i}`,
      grantId: "stripe",
      json: { charge: `ch_${prefix}_${i}`, amount: 500 + i },
      reason: `order ${7000 + i} came back unopened (ticket #${88000 + i}): refund it`,
      context: { order: 7000 + i },
    }));

  describe("batches", () => {
    it("10 refunds, approved all but 2 on the batch page: 8 executed, 2 denied", async () => {
      const s = await agent.submitBatch("ts-nightly", refunds(10));
      assert.ok(s instanceof BatchStatus);
      assert.equal(s.batchId, "ts-nightly");
      assert.equal(s.status, "decidable");
      assert.equal(s.expected, 10);
      assert.equal(s.members, 10);
      assert.equal(s.sealed, true);
      assert.deepEqual({ ...s.counts }, { pending: 10 });
      assert.match(s.digest, /^[0-9a-f]{64}$/);
      assert.equal(s.isTerminal, false);
      assert.ok(s.expiresAt instanceof Date);
      assert.equal(s.approvalIds.length, 10);
      assert.equal(new Set(s.approvalIds).size, 10);
      const member = await agent.getApprovalStatus(s.approvalIds[0]);
      assert.equal(member.status, "pending");
      assert.equal(member.batchId, "ts-nightly");

      // The local wait gives up while the batch is undecided.
      const early = await rejects(agent.awaitBatch("ts-nightly", { timeout: 1, pollInterval: 0.2 }), ApprovalTimeoutError);
      assert.equal(early.lastBatchStatus.status, "decidable");
      assert.deepEqual(early.details.counts, { pending: 10 });

      const l = batchLinks("ts-nightly");
      assert.ok(l.alice && l.bob, `links: ${JSON.stringify(l)}`);
      const waiting = agent.awaitBatch("ts-nightly", { timeout: scaled(90), pollInterval: 0.5 });
      const why = "orders 7002 and 7005 were refunded by hand already";
      const html = await decideBatch(l.alice, "approve", why, ["ts-nightly:2", "ts-nightly:5"]);
      assert.match(html, /listed items denied/);
      const final = await waiting;
      assert.equal(final.isTerminal, true);
      assert.equal(final.status, "decided");
      assert.equal(final.decision, "approved");
      assert.deepEqual({ ...final.counts }, { executed: 8, denied: 2 });
      assert.equal(final.count("executed"), 8);
      assert.ok(final.finishedAt instanceof Date && final.decidedAt instanceof Date);
      assert.deepEqual([...final.approvalIds], []);

      for (const [i, id] of s.approvalIds.entries()) {
        if (i === 2 || i === 5) {
          const e = await rejects(agent.awaitApproval(id, { timeout: 0 }), ApprovalDeniedError);
          assert.equal(e.reason, why);
        } else {
          const r = await agent.awaitApproval(id, { timeout: scaled(10) });
          assert.equal(r.statusCode, 200);
          assert.deepEqual(r.bodyJson(), { ok: true, path: `/v1/refunds/batch/${i}` });
        }
      }
    });

    it("the same batch submitted again returns its members; the same seal changes nothing", async () => {
      const a = await agent.submitBatch("ts-again", refunds(3, "again"));
      const b = await agent.submitBatch("ts-again", refunds(3, "again"));
      assert.deepEqual(b.approvalIds, a.approvalIds);
      assert.equal(b.members, 3);
      const s = await agent.sealBatch("ts-again", 3);
      assert.equal(s.expected, 3);
    });

    it("a conflicting seal is a ConflictError", async () => {
      await agent.submitBatch("ts-seal", refunds(3, "seal"));
      const e = await rejects(agent.sealBatch("ts-seal", 4), ConflictError);
      assert.equal(e.statusCode, 409);
      assert.equal(e.code, "conflict");
      assert.match(e.message, /already sealed for 3/);
      const fewer = await agent.submitBatch("ts-fewer", refunds(3, "fewer"), { seal: false });
      assert.equal(fewer.sealed, false);
      assert.equal(fewer.status, "open");
      await rejects(agent.sealBatch("ts-fewer", 2), ConflictError, (err) => assert.match(err.message, /more than the seal/));
    });

    it("a member after the seal is refused", async () => {
      await agent.submitBatch("ts-late", refunds(2, "late"));
      const e = await rejects(agent.submitBatch("ts-late", refunds(3, "late")), ConflictError);
      assert.match(e.message, /member after/);
      assert.equal(e.details.batch_id, "ts-late");
      assert.equal(e.details.batch_index, 2);
      await rejects(
        agent.proxyRequest("POST", `${STUB}/v1/refunds/late/9`, { grantId: "stripe", json: { amount: 9 }, batchId: "ts-late" }),
        ConflictError,
      );
      assert.equal((await agent.getBatchStatus("ts-late")).members, 2);
    });

    it("a member with another grant than the batch's is refused", async () => {
      const mixed = [
        ...refunds(2, "mixed"),
        { method: "POST", url: `${STUB}/v1/refunds/mixed/x`, grantId: "second", json: { amount: 1 }, reason: "wrong grant" },
      ];
      const e = await rejects(agent.submitBatch("ts-mixed", mixed, { concurrency: 1 }), ConflictError);
      assert.match(e.message, /this member uses grant second/);
      assert.equal(e.details.batch_index, 2);
      const s = await agent.getBatchStatus("ts-mixed");
      assert.equal(s.members, 2);
      assert.equal(s.sealed, false);
    });

    it("an unknown batch is a NotFoundError", async () => {
      await rejects(agent.getBatchStatus("ts-never"), NotFoundError);
      await rejects(agent.awaitBatch("ts-never", { timeout: 1 }), NotFoundError);
    });
  });
}

if (!["main", "expiry", "batch"].includes(SCENARIO)) throw new Error(`unknown CS_SDK_SCENARIO ${SCENARIO}`);
