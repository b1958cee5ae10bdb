// Unit tests of the built SDK (dist/) against a real local HTTP server with
// canned answers: wire format, every status/code -> error class, retries,
// long-poll waits, body helpers, instanceof, defaults, and key hygiene.
//
//   npm run build && node --test test/unit.test.mjs

import { describe, it, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { readFileSync } from "node:fs";

import * as cs from "countersign";
import {
  Agent,
  HttpMethod,
  PendingApproval,
  ApprovalResult,
  ApprovalStatus,
  BatchStatus,
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
  PermissionDeniedError,
  ConflictError,
  TransportError,
  ServerError,
  longPollWait,
  batchPollDelay,
} from "countersign";
import { startServer, apiError, pendingWire, resultWire, statusWire, batchWire, fakeBatches } from "./fake-server.mjs";

const KEY = "cs_test_0123456789abcdef0123456789abcdef";
const ID = "0b7d9c1e-8f63-4c54-9a4e-3f1f7a2d5e10";

let srv;
before(async () => {
  srv = await startServer(() => ({ status: 500, json: apiError("internal_error") }));
});
after(async () => {
  await srv.close();
});
beforeEach(() => {
  srv.requests.length = 0;
});

function agent(extra = {}) {
  return new Agent({ apiKey: KEY, baseUrl: srv.url, retryBackoff: 0.01, ...extra });
}

async function rejects(promise, Class, check = () => {}) {
  let caught;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, `expected ${Class.name}, nothing was thrown`);
  assert.ok(caught instanceof Class, `expected ${Class.name}, got ${caught?.name}: ${caught?.message}`);
  check(caught);
  return caught;
}

describe("package", () => {
  it("exports the documented surface", () => {
    for (const name of [
      "Agent", "HttpMethod", "PendingApproval", "ApprovalResult", "ApprovalStatus", "CountersignError",
      "ApprovalDeniedError", "ApprovalExpiredError", "ApprovalTimeoutError", "ApprovalExecutionFailedError",
      "ApprovalCancelledError", "AuthenticationError", "NotFoundError", "ValidationError", "InvalidArgumentError",
      "PermissionDeniedError", "ConflictError", "TransportError", "CountersignConnectionError", "ServerError",
      "BatchStatus", "batchPollDelay", "BATCH_MAX_MEMBERS", "BATCH_CONCURRENCY", "BATCH_POLL_MAX_SECONDS",
    ]) {
      assert.ok(cs[name], `missing export ${name}`);
    }
  });

  it("VERSION matches package.json and the package has no runtime dependencies", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    assert.equal(cs.VERSION, pkg.version);
    assert.equal(pkg.name, "countersign");
    assert.equal(pkg.dependencies, undefined);
    assert.deepEqual(Object.keys(pkg.devDependencies), ["@eslint/js", "eslint", "typescript", "typescript-eslint"]);
    for (const [name, version] of Object.entries(pkg.devDependencies)) {
      assert.match(version, /^\d+\.\d+\.\d+$/, `exact version pin of ${name}`);
    }
  });

  it("HttpMethod lists the seven methods", () => {
    assert.deepEqual(Object.values(HttpMethod).sort(), ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]);
    assert.equal(HttpMethod.POST, "POST");
    assert.ok(Object.isFrozen(HttpMethod));
  });
});

describe("Agent construction", () => {
  it("baseUrl: explicit, then COUNTERSIGN_URL, then http://127.0.0.1:8080", () => {
    const saved = process.env.COUNTERSIGN_URL;
    try {
      delete process.env.COUNTERSIGN_URL;
      assert.equal(new Agent({ apiKey: KEY }).baseUrl, "http://127.0.0.1:8080");
      process.env.COUNTERSIGN_URL = "http://cs.internal:9000/";
      assert.equal(new Agent({ apiKey: KEY }).baseUrl, "http://cs.internal:9000");
      assert.equal(new Agent({ apiKey: KEY, baseUrl: "https://x.example/" }).baseUrl, "https://x.example");
    } finally {
      if (saved === undefined) delete process.env.COUNTERSIGN_URL;
      else process.env.COUNTERSIGN_URL = saved;
    }
  });

  it("defaults: timeout 30 s, 3 retries", () => {
    const a = new Agent({ apiKey: KEY, baseUrl: srv.url });
    assert.equal(a.timeout, 30);
    assert.equal(a.maxRetries, 3);
  });

  it("apiKey falls back to COUNTERSIGN_API_KEY and is required", () => {
    const saved = process.env.COUNTERSIGN_API_KEY;
    try {
      delete process.env.COUNTERSIGN_API_KEY;
      assert.throws(() => new Agent({ baseUrl: srv.url }), InvalidArgumentError);
      assert.throws(() => new Agent({ apiKey: "", baseUrl: srv.url }), InvalidArgumentError);
      process.env.COUNTERSIGN_API_KEY = KEY;
      assert.ok(new Agent({ baseUrl: srv.url }));
    } finally {
      if (saved === undefined) delete process.env.COUNTERSIGN_API_KEY;
      else process.env.COUNTERSIGN_API_KEY = saved;
    }
  });

  it("refuses a bad baseUrl, timeout or retry setting", () => {
    assert.throws(() => new Agent({ apiKey: KEY, baseUrl: "not a url" }), InvalidArgumentError);
    assert.throws(() => new Agent({ apiKey: KEY, baseUrl: "ftp://x" }), InvalidArgumentError);
    assert.throws(() => new Agent({ apiKey: KEY, timeout: 0 }), InvalidArgumentError);
    assert.throws(() => new Agent({ apiKey: KEY, timeout: -1 }), InvalidArgumentError);
    assert.throws(() => new Agent({ apiKey: KEY, maxRetries: 1.5 }), InvalidArgumentError);
    assert.throws(() => new Agent({ apiKey: KEY, authHeader: "cookie" }), InvalidArgumentError);
  });

  it("never shows the API key in inspect() or JSON", () => {
    const a = agent();
    assert.ok(!inspect(a, { depth: 10, showHidden: true }).includes(KEY));
    assert.ok(!JSON.stringify(a).includes(KEY));
    assert.ok(!String(a).includes(KEY));
    assert.ok(!Object.values(a).some((v) => String(v).includes(KEY)));
  });
});

describe("proxyRequest wire format", () => {
  it("sends snake_case JSON with a Bearer key and returns a PendingApproval on 202", async () => {
    srv.setHandler(() => ({ status: 202, json: pendingWire(ID) }));
    const p = await agent().proxyRequest(HttpMethod.POST, "https://api.stripe.com/v1/refunds/{charge}", {
      grantId: "stripe",
      json: { charge: "ch_1", amount: 2500 },
      extraHeaders: { "Stripe-Version": "2024-06-20" },
      queryParams: { expand: ["balance_transaction", "charge"], live: true },
      pathParams: { charge: "ch_1" },
      reason: "customer charged twice, ticket #4312",
      context: { ticket: 4312 },
      idempotencyKey: "refund-4312",
      batchId: "b-1",
    });
    assert.equal(srv.requests.length, 1);
    const r = srv.requests[0];
    assert.equal(r.method, "POST");
    assert.equal(r.path, "/v1/proxy");
    assert.equal(r.headers.authorization, `Bearer ${KEY}`);
    assert.equal(r.headers["x-api-key"], undefined);
    assert.equal(r.headers["content-type"], "application/json");
    assert.equal(r.headers.accept, "application/json");
    assert.match(r.headers["user-agent"], /^countersign-typescript\//);
    assert.deepEqual(r.json, {
      method: "POST",
      url: "https://api.stripe.com/v1/refunds/{charge}",
      grant_id: "stripe",
      json: { charge: "ch_1", amount: 2500 },
      extra_headers: { "Stripe-Version": "2024-06-20" },
      query_params: { expand: ["balance_transaction", "charge"], live: true },
      path_params: { charge: "ch_1" },
      reason: "customer charged twice, ticket #4312",
      context: { ticket: 4312 },
      idempotency_key: "refund-4312",
      batch_id: "b-1",
    });
    assert.ok(p instanceof PendingApproval);
    assert.ok(!(p instanceof ApprovalResult));
    assert.equal(p.approvalId, ID);
    assert.equal(p.approvalUrl, `http://127.0.0.1:8080/status/tok-${ID}`);
    assert.ok(p.expiresAt instanceof Date);
    assert.equal(p.expiresAt.toISOString(), "2030-01-02T03:04:05.678Z");
    assert.equal(p.status, "pending");
  });

  it("sends only the fields given; lower-case methods are upper-cased", async () => {
    srv.setHandler(() => ({ status: 202, json: pendingWire(ID) }));
    await agent().proxyRequest("delete", "https://api.stripe.com/v1/customers/cus_1", { grantId: "stripe" });
    assert.deepEqual(srv.requests[0].json, {
      method: "DELETE",
      url: "https://api.stripe.com/v1/customers/cus_1",
      grant_id: "stripe",
    });
  });

  it("json: null is a JSON null body, distinct from no body", async () => {
    srv.setHandler(() => ({ status: 202, json: pendingWire(ID) }));
    await agent().proxyRequest("PUT", "https://x/y", { grantId: "g", json: null });
    assert.ok("json" in srv.requests[0].json);
    assert.equal(srv.requests[0].json.json, null);
    assert.match(srv.requests[0].raw, /"json":null/);
    await agent().proxyRequest("PUT", "https://x/y", { grantId: "g", json: undefined });
    assert.ok(!("json" in srv.requests[1].json));
  });

  it("a string body is sent as body, bytes as body_b64", async () => {
    srv.setHandler(() => ({ status: 202, json: pendingWire(ID) }));
    await agent().proxyRequest("POST", "https://x/y", { grantId: "g", body: "a=1&b=2" });
    assert.equal(srv.requests[0].json.body, "a=1&b=2");
    assert.ok(!("body_b64" in srv.requests[0].json));
    const bytes = new Uint8Array([0, 1, 2, 254, 255, 0x80]);
    await agent().proxyRequest("POST", "https://x/y", { grantId: "g", body: bytes });
    assert.equal(srv.requests[1].json.body_b64, Buffer.from(bytes).toString("base64"));
    assert.ok(!("body" in srv.requests[1].json));
    await agent().proxyRequest("POST", "https://x/y", { grantId: "g", body: Buffer.from("héllo") });
    assert.equal(Buffer.from(srv.requests[2].json.body_b64, "base64").toString(), "héllo");
    await agent().proxyRequest("POST", "https://x/y", { grantId: "g", body: bytes.buffer });
    assert.equal(srv.requests[3].json.body_b64, Buffer.from(bytes).toString("base64"));
  });

  it("large binary bodies round-trip through base64", async () => {
    srv.setHandler(() => ({ status: 202, json: pendingWire(ID) }));
    const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    await agent().proxyRequest("POST", "https://x/y", { grantId: "g", body: big });
    assert.ok(Buffer.from(srv.requests[0].json.body_b64, "base64").equals(Buffer.from(big)));
  });

  it("refuses bad arguments locally, without a request", async () => {
    const a = agent();
    await rejects(a.proxyRequest("POST", "https://x/y", { grantId: "g", json: {}, body: "x" }), InvalidArgumentError);
    await rejects(a.proxyRequest("POST", "https://x/y", {}), InvalidArgumentError);
    await rejects(a.proxyRequest("", "https://x/y", { grantId: "g" }), InvalidArgumentError);
    await rejects(a.proxyRequest("POST", "https://x/y", { grantId: "g", body: 42 }), InvalidArgumentError, (e) => {
      assert.equal(e.statusCode, null);
      assert.equal(e.code, "invalid_argument");
    });
    await rejects(a.proxyRequest("POST", "https://x/y", { grantId: "g", json: { n: 1n } }), InvalidArgumentError);
    const cyclic = {};
    cyclic.self = cyclic;
    await rejects(a.proxyRequest("POST", "https://x/y", { grantId: "g", context: cyclic }), InvalidArgumentError);
    await rejects(a.awaitApproval(""), InvalidArgumentError);
    await rejects(a.awaitApproval(ID, { timeout: -1 }), InvalidArgumentError);
    assert.equal(srv.requests.length, 0);
  });

  it("X-Api-Key instead of Authorization when asked", async () => {
    srv.setHandler(() => ({ status: 202, json: pendingWire(ID) }));
    await agent({ authHeader: "x-api-key" }).proxyRequest("GET", "https://x/y", { grantId: "g" });
    assert.equal(srv.requests[0].headers["x-api-key"], KEY);
    assert.equal(srv.requests[0].headers.authorization, undefined);
  });

  it("200 is an ApprovalResult with body helpers", async () => {
    srv.setHandler(() => ({ status: 200, json: resultWire(ID, '{"refund":"re_1","amount":2500}') }));
    const r = await agent().proxyRequest("POST", "https://x/y", { grantId: "g", json: { amount: 5 } });
    assert.ok(r instanceof ApprovalResult);
    assert.ok(!(r instanceof PendingApproval));
    assert.equal(r.approvalId, ID);
    assert.equal(r.status, "executed");
    assert.equal(r.statusCode, 201);
    assert.equal(r.headers["x-provider"], "stub");
    assert.equal(r.bodyTruncated, false);
    assert.equal(r.bodyB64, Buffer.from('{"refund":"re_1","amount":2500}').toString("base64"));
    assert.ok(r.bodyBytes() instanceof Uint8Array);
    assert.equal(Buffer.from(r.bodyBytes()).toString(), '{"refund":"re_1","amount":2500}');
    assert.equal(r.bodyText(), '{"refund":"re_1","amount":2500}');
    assert.deepEqual(r.bodyJson(), { refund: "re_1", amount: 2500 });
    assert.equal(r.executedAt.toISOString(), "2030-01-01T00:00:01.000Z");
  });

  it("a 202 with status executing (no approval needed, still running) is a PendingApproval", async () => {
    srv.setHandler(() => ({ status: 202, json: pendingWire(ID, { status: "executing" }) }));
    const p = await agent().proxyRequest("POST", "https://x/y", { grantId: "g" });
    assert.ok(p instanceof PendingApproval);
    assert.equal(p.status, "executing");
  });
});

describe("body helpers", () => {
  const make = (bytes, truncated = false) =>
    new ApprovalResult({
      approvalId: ID,
      statusCode: 200,
      headers: {},
      bodyB64: Buffer.from(bytes).toString("base64"),
      bodyTruncated: truncated,
    });

  it("bytes, UTF-8 text, JSON and empty bodies", () => {
    const r = make(Buffer.from("{\"name\":\"Zoë ✓\"}"));
    assert.equal(r.bodyText(), '{"name":"Zoë ✓"}');
    assert.deepEqual(r.bodyJson(), { name: "Zoë ✓" });
    const bin = make(new Uint8Array([0xff, 0x00, 0x10]));
    assert.deepEqual([...bin.bodyBytes()], [0xff, 0x00, 0x10]);
    assert.equal(make(new Uint8Array()).bodyText(), "");
    assert.equal(make(new Uint8Array()).bodyBytes().length, 0);
  });

  it("bodyJson refuses a truncated body and throws SyntaxError on non-JSON", () => {
    assert.throws(() => make(Buffer.from('{"a":'), true).bodyJson(), (e) => e instanceof CountersignError && e.code === "body_truncated");
    assert.deepEqual([...make(Buffer.from("abc"), true).bodyBytes()], [97, 98, 99]);
    assert.throws(() => make(Buffer.from("<html>")).bodyJson(), SyntaxError);
  });
});

describe("errors", () => {
  const table = [
    [400, "invalid_request", ValidationError],
    [400, "forbidden_header", ValidationError],
    [400, "malformed_json", ValidationError],
    [413, "too_large", ValidationError],
    [422, "policy_unevaluable", ValidationError],
    [401, "unauthenticated", AuthenticationError],
    [403, "forbidden", PermissionDeniedError],
    [403, "host_not_allowed", PermissionDeniedError],
    [404, "not_found", NotFoundError],
    [404, "unknown_grant", NotFoundError],
    [409, "conflict", ConflictError],
    [409, "not_pending", ConflictError],
    [409, "denied", ApprovalDeniedError],
    [409, "cancelled", ApprovalCancelledError],
    [410, "expired", ApprovalExpiredError],
    [502, "execution_failed", ApprovalExecutionFailedError],
    [500, "internal_error", ServerError],
    [503, "unavailable", ServerError],
    [418, "teapot", CountersignError],
  ];
  for (const [status, code, Class] of table) {
    it(`${status} ${code} -> ${Class.name}`, async () => {
      const details = { reason: "because", n: 1 };
      srv.setHandler(() => ({ status, json: apiError(code, `server says ${code}`, details) }));
      const e = await rejects(agent({ maxRetries: 0 }).proxyRequest("POST", "https://x/y", { grantId: "g" }), Class);
      assert.equal(e.constructor, Class);
      assert.ok(e instanceof CountersignError);
      assert.ok(e instanceof Error);
      assert.equal(e.name, Class.name);
      assert.equal(e.code, code);
      assert.equal(e.statusCode, status);
      assert.equal(e.message, `server says ${code}`);
      assert.deepEqual(e.details, details);
      assert.ok(typeof e.stack === "string" && e.stack.includes(Class.name));
      assert.equal(srv.requests.length, 1);
    });
  }

  it("a non-JSON error body still maps by status", async () => {
    srv.setHandler(() => ({ status: 404, text: "<html>nope</html>", contentType: "text/html" }));
    const e = await rejects(agent().getApprovalStatus(ID), NotFoundError);
    assert.equal(e.code, "http_404");
    assert.deepEqual(e.details, {});
    assert.equal(e.approvalId, ID);
  });

  it("a 2xx that is not JSON is an invalid_response CountersignError", async () => {
    srv.setHandler(() => ({ status: 200, text: "ok", contentType: "text/plain" }));
    await rejects(agent().getApprovalStatus(ID), CountersignError, (e) => assert.equal(e.code, "invalid_response"));
  });

  it("ApprovalDeniedError exposes the approver's reason", () => {
    const e = cs.errorFromResponse(409, apiError("denied", "denied by alice", { reason: "duplicate refund", decided_by: "alice" }));
    assert.ok(e instanceof ApprovalDeniedError);
    assert.equal(e.reason, "duplicate refund");
    assert.equal(e.decidedBy, "alice");
    assert.equal(e.details.decided_by, "alice");
  });

  it("ApprovalExecutionFailedError exposes error_code and error_message", () => {
    const e = cs.errorFromResponse(502, apiError("execution_failed", "failed", { error_code: "tls_error", error_message: "bad cert" }));
    assert.ok(e instanceof ApprovalExecutionFailedError);
    assert.equal(e.errorCode, "tls_error");
    assert.equal(e.errorMessage, "bad cert");
    const bare = new ApprovalExecutionFailedError("execution_failed", "failed");
    assert.equal(bare.errorCode, null);
  });

  it("CountersignConnectionError (the Python SDK's name) is TransportError", () => {
    assert.equal(cs.CountersignConnectionError, TransportError);
    assert.ok(new cs.CountersignConnectionError("transport_error", "x") instanceof TransportError);
  });

  it("every class can be built directly and keeps instanceof and name", () => {
    for (const Class of [
      ApprovalDeniedError, ApprovalExpiredError, ApprovalTimeoutError, ApprovalExecutionFailedError,
      ApprovalCancelledError, AuthenticationError, NotFoundError, ValidationError, PermissionDeniedError,
      ConflictError, TransportError, ServerError,
    ]) {
      const e = new Class("c", "m", { statusCode: 499, details: { a: 1 } });
      assert.ok(e instanceof Class && e instanceof CountersignError && e instanceof Error);
      assert.equal(e.name, Class.name);
      assert.equal(Object.prototype.toString.call(e), "[object Error]");
      assert.deepEqual(JSON.parse(JSON.stringify(e)), {
        name: Class.name, code: "c", message: "m", statusCode: 499, details: { a: 1 }, approvalId: null,
      });
    }
    const plain = new CountersignError("x", "y");
    assert.equal(plain.statusCode, null);
    assert.deepEqual(plain.details, {});
  });

  it("an API key echoed by the server is redacted from messages and details", async () => {
    srv.setHandler(() => ({ status: 401, json: apiError("unauthenticated", `unknown key ${KEY}`, { key: KEY }) }));
    const e = await rejects(agent().getApprovalStatus(ID), AuthenticationError);
    assert.ok(!e.message.includes(KEY));
    assert.match(e.message, /\[redacted\]/);
    assert.ok(!JSON.stringify(e).includes(KEY));
    assert.ok(!inspect(e, { depth: 10, showHidden: true }).includes(KEY));
  });

  it("transport errors never carry the key", async () => {
    const a = new Agent({ apiKey: KEY, baseUrl: "http://127.0.0.1:9", maxRetries: 0 });
    const e = await rejects(a.getApprovalStatus(ID), TransportError);
    assert.equal(e.code, "transport_error");
    assert.equal(e.statusCode, null);
    assert.ok(!inspect(e, { depth: 10, showHidden: true }).includes(KEY));
    assert.ok(!e.message.includes(KEY));
  });
});

describe("retries", () => {
  it("GET: 5xx is retried with backoff until it succeeds", async () => {
    srv.setHandler((_, n) => (n <= 2 ? { status: 503, json: apiError("unavailable") } : { status: 200, json: statusWire(ID) }));
    const s = await agent().getApprovalStatus(ID);
    assert.ok(s instanceof ApprovalStatus);
    assert.equal(srv.requests.length, 3);
  });

  it("GET: gives up after maxRetries with the last ServerError", async () => {
    srv.setHandler(() => ({ status: 500, json: apiError("internal_error", "boom") }));
    await rejects(agent({ maxRetries: 2 }).getApprovalStatus(ID), ServerError, (e) => assert.equal(e.code, "internal_error"));
    assert.equal(srv.requests.length, 3);
  });

  it("backoff grows exponentially and stays bounded", async () => {
    srv.setHandler(() => ({ status: 503, json: apiError("unavailable") }));
    await rejects(agent({ maxRetries: 3, retryBackoff: 0.05 }).getApprovalStatus(ID), ServerError);
    const gaps = srv.requests.slice(1).map((r, i) => r.at - srv.requests[i].at);
    assert.equal(gaps.length, 3);
    // Jitter keeps each delay in [d/2, d] for d = 50, 100, 200 ms (upper bounds
    // leave room for a busy machine).
    assert.ok(gaps[0] >= 20 && gaps[0] < 500, `gaps ${gaps}`);
    assert.ok(gaps[1] >= 45 && gaps[1] < 700, `gaps ${gaps}`);
    assert.ok(gaps[2] >= 95 && gaps[2] < 900, `gaps ${gaps}`);
  });

  it("Retry-After is honoured", async () => {
    srv.setHandler((_, n) =>
      n === 1 ? { status: 503, json: apiError("unavailable"), headers: { "retry-after": "1" } } : { status: 200, json: statusWire(ID) },
    );
    await agent({ retryBackoff: 0 }).getApprovalStatus(ID);
    assert.ok(srv.requests[1].at - srv.requests[0].at >= 950);
  });

  it("GET: a transport failure (connection closed without an answer) is retried", async () => {
    srv.setHandler((_, n) => (n === 1 ? { destroy: true } : { status: 200, json: statusWire(ID) }));
    const s = await agent().getApprovalStatus(ID);
    assert.equal(s.status, "pending");
    assert.equal(srv.requests.length, 2);
  });

  it("connection refused: retried, then a TransportError", async () => {
    const dead = await startServer(() => ({}));
    const url = dead.url;
    await dead.close();
    const a = new Agent({ apiKey: KEY, baseUrl: url, maxRetries: 2, retryBackoff: 0.01 });
    const e = await rejects(a.getApprovalStatus(ID), TransportError);
    assert.match(e.message, /ECONNREFUSED/);
    assert.ok(e.cause);
  });

  it("POST /v1/proxy without an idempotencyKey is never retried", async () => {
    srv.setHandler(() => ({ status: 503, json: apiError("unavailable") }));
    await rejects(agent().proxyRequest("POST", "https://x/y", { grantId: "g" }), ServerError);
    assert.equal(srv.requests.length, 1);
    srv.requests.length = 0;
    srv.setHandler(() => ({ destroy: true }));
    await rejects(agent().proxyRequest("POST", "https://x/y", { grantId: "g" }), TransportError);
    assert.equal(srv.requests.length, 1);
  });

  it("POST /v1/proxy with an idempotencyKey is retried, with the same key", async () => {
    srv.setHandler((_, n) => (n === 1 ? { destroy: true } : n === 2 ? { status: 502, json: apiError("internal_error") } : { status: 202, json: pendingWire(ID) }));
    const p = await agent().proxyRequest("POST", "https://x/y", { grantId: "g", idempotencyKey: "k-1" });
    assert.ok(p instanceof PendingApproval);
    assert.equal(srv.requests.length, 3);
    assert.ok(srv.requests.every((r) => r.json.idempotency_key === "k-1"));
  });

  it("4xx is never retried", async () => {
    srv.setHandler(() => ({ status: 404, json: apiError("not_found") }));
    await rejects(agent().getApprovalStatus(ID), NotFoundError);
    assert.equal(srv.requests.length, 1);
  });

  it("502 execution_failed is an outcome, not retried", async () => {
    srv.setHandler(() => ({ status: 502, json: apiError("execution_failed", "failed", { error_code: "outcome_unknown" }) }));
    await rejects(agent().awaitApproval(ID, { timeout: 5 }), ApprovalExecutionFailedError);
    assert.equal(srv.requests.length, 1);
  });

  it("the retried statuses are RETRY_POLICY's (docs/RETRIES.md): 429 is, 501 is not", async () => {
    assert.deepEqual([...cs.RETRY_POLICY.retryStatuses], [429, 500, 502, 503, 504]);
    srv.setHandler((_, n) => (n === 1 ? { status: 429, json: apiError("rate_limited") } : { status: 200, json: statusWire(ID) }));
    assert.equal((await agent().getApprovalStatus(ID)).status, "pending");
    assert.equal(srv.requests.length, 2);
    srv.requests.length = 0;
    srv.setHandler(() => ({ status: 501, json: apiError("not_implemented") }));
    await rejects(agent().getApprovalStatus(ID), ServerError);
    assert.equal(srv.requests.length, 1);
  });

  it("a Retry-After beyond RETRY_POLICY.retryAfterMaxSeconds is cut to it", async () => {
    const { fetch, waits } = (() => {
      const waits = [];
      let n = 0;
      return {
        waits,
        fetch: async () => {
          n += 1;
          return n === 1
            ? new Response(JSON.stringify(apiError("unavailable")), { status: 503, headers: { "retry-after": "3600" } })
            : new Response(JSON.stringify(statusWire(ID)), { status: 200 });
        },
      };
    })();
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = (fn, ms, ...rest) => {
      if (ms >= 1000) waits.push(ms);
      return realSetTimeout(fn, ms >= 1000 ? 0 : ms, ...rest);
    };
    try {
      await new Agent({ apiKey: KEY, baseUrl: "http://cs.invalid", fetch }).getApprovalStatus(ID);
    } finally {
      globalThis.setTimeout = realSetTimeout;
    }
    assert.ok(waits.includes(cs.RETRY_POLICY.retryAfterMaxSeconds * 1000), `pauses: ${waits}`);
    assert.equal(cs.RETRY_POLICY.retryAfterMaxSeconds, 60);
  });

  it("cancel is not retried", async () => {
    srv.setHandler(() => ({ status: 503, json: apiError("unavailable") }));
    await rejects(agent().cancelApproval(ID), ServerError);
    assert.equal(srv.requests.length, 1);
  });

  it("a request that takes longer than timeout is a request_timeout TransportError", async () => {
    srv.setHandler(() => ({ status: 200, json: statusWire(ID), delayMs: 1500 }));
    const t0 = Date.now();
    await rejects(agent({ timeout: 0.3, maxRetries: 0 }).getApprovalStatus(ID), TransportError, (e) => {
      assert.equal(e.code, "request_timeout");
    });
    assert.ok(Date.now() - t0 < 1400);
  });
});

describe("awaitApproval", () => {
  it("long-poll wait: whole seconds from the time left, at most 60", () => {
    assert.equal(longPollWait(300_000), 60);
    assert.equal(longPollWait(60_999), 60);
    assert.equal(longPollWait(59_999), 59);
    assert.equal(longPollWait(2_500), 2);
    assert.equal(longPollWait(999), 0);
    assert.equal(longPollWait(0), 0);
    assert.equal(longPollWait(-5), 0);
  });

  it("returns the result on 200, asking for wait <= 60 on GET .../result", async () => {
    srv.setHandler(() => ({ status: 200, json: resultWire(ID) }));
    const r = await agent().awaitApproval(ID);
    assert.ok(r instanceof ApprovalResult);
    assert.equal(srv.requests.length, 1);
    assert.equal(srv.requests[0].method, "GET");
    assert.equal(srv.requests[0].path, `/v1/approvals/${ID}/result`);
    assert.equal(srv.requests[0].query.wait, "60");
    assert.equal(srv.requests[0].headers.authorization, `Bearer ${KEY}`);
  });

  it("polls again after a 202 until the result arrives", async () => {
    srv.setHandler((_, n) => (n < 3 ? { status: 202, json: statusWire(ID, "pending") } : { status: 200, json: resultWire(ID) }));
    const r = await agent().awaitApproval(ID, { timeout: 200 });
    assert.equal(r.statusCode, 201);
    assert.deepEqual(srv.requests.map((q) => q.query.wait), ["60", "60", "60"]);
  });

  it("the waits come from the remaining time and the local deadline holds", async () => {
    // The server holds each long-poll for its `wait` like the real API.
    srv.setHandler((req) => ({ status: 202, json: statusWire(ID, "pending"), delayMs: Number(req.query.wait) * 1000 }));
    const t0 = Date.now();
    const e = await rejects(agent().awaitApproval(ID, { timeout: 2.5 }), ApprovalTimeoutError);
    const took = Date.now() - t0;
    assert.deepEqual(srv.requests.map((q) => q.query.wait), ["2", "0"]);
    assert.ok(took >= 2450 && took < 4000, `took ${took} ms`);
    assert.equal(e.code, "timeout");
    assert.equal(e.approvalId, ID);
    assert.equal(e.statusCode, null);
    assert.equal(e.details.status, "pending");
    assert.ok(e.lastStatus instanceof ApprovalStatus);
    assert.equal(e.lastStatus.status, "pending");
    assert.equal(e.lastStatus.isTerminal, false);
    assert.match(e.message, /still pending/);
  });

  it("a long-poll is not cut by the per-request timeout", async () => {
    srv.setHandler((req, n) =>
      n === 1 ? { status: 202, json: statusWire(ID), delayMs: Number(req.query.wait) * 1000 } : { status: 200, json: resultWire(ID) },
    );
    const r = await agent({ timeout: 0.5, maxRetries: 0 }).awaitApproval(ID, { timeout: 1.5 });
    assert.ok(r instanceof ApprovalResult);
    assert.equal(srv.requests[0].query.wait, "1");
  });

  it("timeout 0 checks once", async () => {
    srv.setHandler(() => ({ status: 202, json: statusWire(ID, "approved") }));
    await rejects(agent().awaitApproval(ID, { timeout: 0 }), ApprovalTimeoutError, (e) => {
      assert.equal(e.details.status, "approved");
      assert.equal(e.lastStatus.status, "approved");
    });
    assert.equal(srv.requests.length, 1);
    assert.equal(srv.requests[0].query.wait, "0");
  });

  it("does not spin when the server answers 202 early", async () => {
    srv.setHandler(() => ({ status: 202, json: statusWire(ID) }));
    await rejects(agent().awaitApproval(ID, { timeout: 2 }), ApprovalTimeoutError);
    assert.ok(srv.requests.length <= 5, `${srv.requests.length} requests in 2 s`);
  });

  const outcomes = [
    [409, apiError("denied", "denied by bob", { reason: "duplicate refund", decided_by: "bob" }), ApprovalDeniedError],
    [409, apiError("cancelled", "cancelled by the requester", { reason: "customer withdrew" }), ApprovalCancelledError],
    [410, apiError("expired", "the approval window has elapsed"), ApprovalExpiredError],
    [502, apiError("execution_failed", "execution failed", { error_code: "outcome_unknown", error_message: "connection closed" }), ApprovalExecutionFailedError],
    [404, apiError("not_found", "no such approval"), NotFoundError],
    [401, apiError("unauthenticated", "bad key"), AuthenticationError],
  ];
  for (const [status, body, Class] of outcomes) {
    it(`${status} ${body.error.code} -> ${Class.name} with details`, async () => {
      srv.setHandler(() => ({ status, json: body }));
      const e = await rejects(agent().awaitApproval(ID, { timeout: 10 }), Class);
      assert.equal(e.approvalId, ID);
      assert.deepEqual(e.details, body.error.details ?? {});
      assert.equal(e.statusCode, status);
    });
  }

  it("a transient 503 during the wait is retried", async () => {
    srv.setHandler((_, n) => (n === 1 ? { status: 503, json: apiError("unavailable") } : { status: 200, json: resultWire(ID) }));
    const r = await agent().awaitApproval(ID, { timeout: 10 });
    assert.ok(r instanceof ApprovalResult);
  });

  it("the approval id is path-encoded", async () => {
    srv.setHandler(() => ({ status: 200, json: resultWire(ID) }));
    await agent().awaitApproval("a/b?c");
    assert.equal(srv.requests[0].url.split("?")[0], "/v1/approvals/a%2Fb%3Fc/result");
  });

  // The SDK reference's spelling: milliseconds. Before timeoutMs was read, it
  // was ignored: the wait asked for 60 s and ran to the 300 s default.
  it("timeoutMs: the waits come from it in milliseconds and its deadline holds", { timeout: 10_000 }, async () => {
    srv.setHandler((req) => ({ status: 202, json: statusWire(ID, "pending"), delayMs: Number(req.query.wait) * 1000 }));
    const t0 = Date.now();
    const e = await rejects(agent().awaitApproval(ID, { timeoutMs: 1500 }), ApprovalTimeoutError);
    const took = Date.now() - t0;
    assert.deepEqual(srv.requests.map((q) => q.query.wait), ["1", "0"]);
    assert.ok(took >= 1450 && took < 3000, `took ${took} ms`);
    assert.equal(e.details.status, "pending");
  });

  it("timeoutMs 0 checks once", { timeout: 10_000 }, async () => {
    srv.setHandler(() => ({ status: 202, json: statusWire(ID, "pending") }));
    await rejects(agent().awaitApproval(ID, { timeoutMs: 0 }), ApprovalTimeoutError);
    assert.equal(srv.requests.length, 1);
    assert.equal(srv.requests[0].query.wait, "0");
  });

  for (const [name, options] of [
    ["pollIntervalMs", { timeoutMs: 2500, pollIntervalMs: 200 }],
    ["pollInterval (seconds)", { timeout: 2.5, pollInterval: 0.2 }],
  ]) {
    it(`${name} is the pause after a 202 that came sooner than asked`, { timeout: 10_000 }, async () => {
      srv.setHandler(() => ({ status: 202, json: statusWire(ID) }));
      await rejects(agent().awaitApproval(ID, options), ApprovalTimeoutError);
      // Asked wait=2 or 1 and answered at once: 200 ms apart (1 s by default),
      // then the last look after the final sub-second sleep.
      const gaps = srv.requests.slice(1).map((r, i) => r.at - srv.requests[i].at);
      const early = gaps.slice(0, -1);
      assert.ok(early.length >= 5, `gaps ${gaps}`);
      assert.ok(early.every((g) => g >= 190 && g < 600), `gaps ${gaps}`);
    });
  }

  it("refuses both units of one option, and bad durations, before any request", async () => {
    const a = agent();
    for (const options of [
      { timeout: 300, timeoutMs: 300_000 },
      { timeout: 1, timeoutMs: 1 },
      { pollInterval: 1, pollIntervalMs: 1000 },
    ]) {
      await rejects(a.awaitApproval(ID, options), InvalidArgumentError, (e) => {
        assert.equal(e.code, "invalid_argument");
        assert.match(e.message, /\(seconds\) or \w+Ms \(milliseconds\), not both/);
      });
    }
    for (const [options, message] of [
      [{ timeoutMs: -1 }, /timeoutMs must be a non-negative finite number of milliseconds, not -1/],
      [{ timeoutMs: Number.NaN }, /timeoutMs .* not NaN/],
      [{ timeoutMs: Infinity }, /timeoutMs .* not Infinity/],
      [{ timeoutMs: "1000" }, /timeoutMs .* not "1000"/],
      [{ timeout: -0.5 }, /timeout must be a non-negative finite number of seconds/],
      [{ pollIntervalMs: 0 }, /pollIntervalMs must be a positive finite number of milliseconds, not 0/],
      [{ pollIntervalMs: -5 }, /pollIntervalMs must be a positive/],
      [{ pollInterval: 0 }, /pollInterval must be a positive finite number of seconds/],
    ]) {
      await rejects(a.awaitApproval(ID, options), InvalidArgumentError, (e) => assert.match(e.message, message));
    }
    assert.equal(srv.requests.length, 0);
  });

  it("undefined or null leaves an option to its other unit or default", async () => {
    srv.setHandler(() => ({ status: 200, json: resultWire(ID) }));
    await agent().awaitApproval(ID, { timeout: undefined, timeoutMs: 5000, pollInterval: null });
    assert.equal(srv.requests[0].query.wait, "5");
  });
});

describe("getApprovalStatus and cancelApproval", () => {
  it("getApprovalStatus parses camelCase fields and Dates", async () => {
    srv.setHandler(() => ({
      status: 200,
      json: statusWire(ID, "denied", {
        decided_at: "2030-01-01T00:10:00.123456Z",
        decision_reason: "duplicate refund",
        approvals_received: 0,
        error_code: null,
      }),
    }));
    const s = await agent().getApprovalStatus(ID);
    assert.equal(srv.requests[0].method, "GET");
    assert.equal(srv.requests[0].path, `/v1/approvals/${ID}`);
    assert.ok(s instanceof ApprovalStatus);
    assert.equal(s.approvalId, ID);
    assert.equal(s.status, "denied");
    assert.equal(s.isTerminal, true);
    assert.equal(s.decisionReason, "duplicate refund");
    assert.ok(s.decidedAt instanceof Date);
    assert.equal(s.decidedAt.toISOString(), "2030-01-01T00:10:00.123Z");
    assert.equal(s.expiresAt.toISOString(), "2030-01-01T01:00:00.000Z");
    assert.equal(s.createdAt.toISOString(), "2030-01-01T00:00:00.000Z");
    assert.equal(s.executedAt, null);
    assert.equal(s.hasResult, false);
    assert.equal(s.approvalsRequired, 1);
    assert.equal(s.approvalsReceived, 0);
    assert.equal(s.grantId, "stripe");
    assert.equal(s.method, "POST");
    assert.equal(s.errorCode, null);
    assert.equal(s.batchId, null);
  });

  it("isTerminal for a pending approval is false", async () => {
    srv.setHandler(() => ({ status: 200, json: statusWire(ID, "pending") }));
    assert.equal((await agent().getApprovalStatus(ID)).isTerminal, false);
  });

  it("a malformed status answer is an invalid_response error", async () => {
    srv.setHandler(() => ({ status: 200, json: { approval_id: ID, status: "pending", expires_at: "not a date" } }));
    await rejects(agent().getApprovalStatus(ID), CountersignError, (e) => assert.equal(e.code, "invalid_response"));
  });

  it("cancelApproval posts the reason and returns the new status", async () => {
    srv.setHandler(() => ({ status: 200, json: statusWire(ID, "cancelled", { decision_reason: "customer withdrew" }) }));
    const s = await agent().cancelApproval(ID, { reason: "customer withdrew" });
    assert.equal(srv.requests[0].method, "POST");
    assert.equal(srv.requests[0].path, `/v1/approvals/${ID}/cancel`);
    assert.deepEqual(srv.requests[0].json, { reason: "customer withdrew" });
    assert.equal(srv.requests[0].headers.authorization, `Bearer ${KEY}`);
    assert.equal(s.status, "cancelled");
    assert.equal(s.isTerminal, true);
    await agent().cancelApproval(ID);
    assert.deepEqual(srv.requests[1].json, {});
  });

  it("cancelling twice is a ConflictError", async () => {
    srv.setHandler(() => ({ status: 409, json: apiError("not_pending", "the approval is no longer pending") }));
    await rejects(agent().cancelApproval(ID), ConflictError, (e) => assert.equal(e.code, "not_pending"));
  });
});

describe("batches", () => {
  const URL_ = "https://api.example.com/v1/refunds";
  const refunds = (n, from = 0) =>
    Array.from({ length: n }, (_, k) => {
      const i = from + k;
      return {
        method: "POST",
        url: URL_,
        grantId: "stripe",
        json: { charge: `ch_${i}`, amount: 100 + i },
        reason: `order ${7000 + i} returned unopened (ticket #${88000 + i})`,
      };
    });
  const posted = () => srv.requests.filter((r) => r.path === "/v1/proxy").map((r) => r.json);

  it("submitBatch sends every member, then seals with the count", async () => {
    const fake = fakeBatches();
    srv.setHandler(fake.handler);
    const s = await agent().submitBatch("refunds-2030-01-02", refunds(40));
    const bodies = posted();
    assert.equal(bodies.length, 40);
    const byKey = Object.fromEntries(bodies.map((b) => [b.idempotency_key, b]));
    assert.deepEqual(
      Object.keys(byKey).sort(),
      Array.from({ length: 40 }, (_, i) => `refunds-2030-01-02:${i}`).sort(),
    );
    assert.deepEqual(byKey["refunds-2030-01-02:7"], {
      method: "POST",
      url: URL_,
      grant_id: "stripe",
      json: { charge: "ch_7", amount: 107 },
      reason: "order 7007 returned unopened (ticket #88007)",
      idempotency_key: "refunds-2030-01-02:7",
      batch_id: "refunds-2030-01-02",
    });
    const seal = srv.requests.at(-1);
    assert.equal(seal.method, "POST");
    assert.equal(seal.path, "/v1/batches/refunds-2030-01-02/seal");
    assert.deepEqual(seal.json, { count: 40 });
    assert.equal(seal.headers["content-type"], "application/json");
    assert.ok(s instanceof BatchStatus);
    assert.equal(s.status, "decidable");
    assert.equal(s.expected, 40);
    assert.equal(s.members, 40);
    assert.equal(s.sealed, true);
    assert.deepEqual({ ...s.counts }, { pending: 40 });
    assert.equal(s.count("pending"), 40);
    assert.equal(s.count("executed"), 0);
    assert.equal(s.digest, "ab".repeat(32));
    assert.ok(s.expiresAt instanceof Date);
    assert.deepEqual(
      [...s.approvalIds],
      Array.from({ length: 40 }, (_, i) => fake.state.ids.get(`refunds-2030-01-02:${i}`)),
    );
  });

  it("members go with bounded concurrency (default 16)", async () => {
    const fake = fakeBatches({ delayMs: 5 });
    srv.setHandler(fake.handler);
    await agent().submitBatch("b1", refunds(30), { concurrency: 4 });
    assert.ok(fake.state.maxInFlight > 1 && fake.state.maxInFlight <= 4, `${fake.state.maxInFlight} in flight`);
    fake.state.maxInFlight = 0;
    await agent().submitBatch("b2", refunds(60));
    assert.ok(fake.state.maxInFlight > 4 && fake.state.maxInFlight <= 16, `${fake.state.maxInFlight} in flight`);
  });

  it("explicit keys, bodies and parameters are kept", async () => {
    srv.setHandler(fakeBatches().handler);
    const s = await agent().submitBatch("b9", [
      { method: "post", url: URL_, grantId: "stripe", json: null, idempotencyKey: "refund-order-1" },
      {
        method: HttpMethod.PUT,
        url: `${URL_}/{id}`,
        grantId: "stripe",
        body: new Uint8Array([0, 1]),
        pathParams: { id: "re_1" },
        queryParams: { expand: ["a", "b"] },
        extraHeaders: { "X-Trace": "t" },
        context: { ticket: 4 },
      },
    ]);
    const byKey = Object.fromEntries(posted().map((b) => [b.idempotency_key, b]));
    assert.deepEqual(Object.keys(byKey).sort(), ["b9:1", "refund-order-1"]);
    assert.equal(byKey["refund-order-1"].method, "POST");
    assert.equal(byKey["refund-order-1"].json, null);
    assert.equal(byKey["b9:1"].body_b64, "AAE=");
    assert.deepEqual(byKey["b9:1"].path_params, { id: "re_1" });
    assert.deepEqual(byKey["b9:1"].query_params, { expand: ["a", "b"] });
    assert.deepEqual(byKey["b9:1"].extra_headers, { "X-Trace": "t" });
    assert.ok(!("json" in byKey["b9:1"]));
    assert.equal(s.approvalIds.length, 2);
  });

  it("resubmitting the same batch returns the members already stored", async () => {
    srv.setHandler(fakeBatches().handler);
    const a = await agent().submitBatch("b1", refunds(5));
    const b = await agent().submitBatch("b1", refunds(5));
    assert.deepEqual(b.approvalIds, a.approvalIds);
    assert.equal(b.members, 5);
  });

  it("chunks: seal: false, firstIndex, then the last chunk seals with the total", async () => {
    srv.setHandler(fakeBatches().handler);
    const a = await agent().submitBatch("big", refunds(10), { seal: false });
    const b = await agent().submitBatch("big", refunds(10, 10), { seal: false, firstIndex: 10 });
    const c = await agent().submitBatch("big", refunds(5, 20), { firstIndex: 20 });
    assert.equal(a.status, "open");
    assert.equal(a.sealed, false);
    assert.equal(b.members, 20);
    assert.equal(c.expected, 25);
    assert.equal(c.status, "decidable");
    assert.deepEqual(
      posted().map((p) => p.idempotency_key).sort(),
      Array.from({ length: 25 }, (_, i) => `big:${i}`).sort(),
    );
    assert.deepEqual(srv.requests.filter((r) => r.path.endsWith("/seal")).map((r) => r.json), [{ count: 25 }]);
    assert.equal(srv.requests.filter((r) => r.method === "GET" && r.path === "/v1/batches/big").length, 2);
  });

  it("a refused member throws its error class, sends nothing more and does not seal", async () => {
    srv.setHandler(
      fakeBatches({
        refuse: {
          "b1:3": {
            status: 409,
            json: apiError("conflict", "batch b1 uses grant stripe (policy pay); this member uses grant second (policy other): refused"),
          },
        },
      }).handler,
    );
    const e = await rejects(agent().submitBatch("b1", refunds(10), { concurrency: 1 }), ConflictError);
    assert.equal(e.statusCode, 409);
    assert.equal(e.code, "conflict");
    assert.match(e.message, /uses grant/);
    assert.equal(e.details.batch_id, "b1");
    assert.equal(e.details.batch_index, 3);
    assert.deepEqual(posted().map((p) => p.idempotency_key), ["b1:0", "b1:1", "b1:2", "b1:3"]);
    assert.ok(!srv.requests.some((r) => r.path.endsWith("/seal")));
  });

  it("a member after the seal is a ConflictError", async () => {
    srv.setHandler(fakeBatches().handler);
    await agent().submitBatch("b1", refunds(3));
    const e = await rejects(agent().submitBatch("b1", refunds(4)), ConflictError);
    assert.match(e.message, /member after/);
    assert.equal(e.details.batch_index, 3);
  });

  for (const [status, code, Class] of [
    [400, "forbidden_header", ValidationError],
    [404, "unknown_grant", NotFoundError],
    [403, "host_not_allowed", PermissionDeniedError],
    [410, "expired", ApprovalExpiredError],
  ]) {
    it(`a member refused with ${status} ${code} -> ${Class.name}`, async () => {
      srv.setHandler(fakeBatches({ refuse: { "b1:0": { status, json: apiError(code) } } }).handler);
      await rejects(agent().submitBatch("b1", refunds(2), { concurrency: 1 }), Class, (e) => {
        assert.equal(e.details.batch_index, 0);
      });
    });
  }

  it("a member already decided (resubmission) is not an error", async () => {
    srv.setHandler(
      fakeBatches({
        refuse: { "b1:1": { status: 409, json: apiError("denied", "denied", { reason: "duplicate", approval_id: ID }) } },
      }).handler,
    );
    const s = await agent().submitBatch("b1", refunds(2), { seal: false });
    assert.equal(s.approvalIds[1], ID);
  });

  it("member submissions are retried (they carry idempotency keys)", async () => {
    const fake = fakeBatches();
    let failures = 2;
    srv.setHandler((req, n) => {
      if (req.path === "/v1/proxy" && req.json.idempotency_key === "b1:1" && failures > 0) {
        failures--;
        return { status: 503, json: apiError("unavailable") };
      }
      return fake.handler(req, n);
    });
    const s = await agent().submitBatch("b1", refunds(3));
    assert.equal(s.members, 3);
    assert.equal(posted().filter((p) => p.idempotency_key === "b1:1").length, 3);
  });

  it("bad requests are refused before anything is sent", async () => {
    srv.setHandler(fakeBatches().handler);
    const good = refunds(1)[0];
    const a = agent();
    const bad = [
      [[good, { ...good, grantId: "" }], /requests\[1\].*grantId/],
      [[{ method: "POST", grantId: "g" }], /requests\[0\].*url/],
      [[{ ...good, grant_id: "g" }], /unknown keys grant_id/],
      [[{ ...good, batchId: "b2" }], /submitBatch sets batchId/],
      [[good, { ...good, idempotencyKey: "b1:0" }], /same idempotencyKey/],
      [[{ ...good, body: "x" }], /json and body/],
      [[{ ...good, json: 10n }], /requests\[0\]/],
      [[], /at least one/],
      [[null], /must be an object/],
    ];
    for (const [requests, pattern] of bad) {
      await rejects(a.submitBatch("b1", requests), InvalidArgumentError, (e) => assert.match(e.message, pattern));
    }
    await rejects(a.submitBatch("b1", good), InvalidArgumentError);
    await rejects(a.submitBatch(" ", [good]), InvalidArgumentError);
    await rejects(a.submitBatch("b1", [good], { concurrency: 0 }), InvalidArgumentError);
    await rejects(a.submitBatch("b1", [good], { firstIndex: -1 }), InvalidArgumentError);
    await rejects(a.submitBatch("b1", [good], { firstIndex: 100000 }), InvalidArgumentError, (e) => assert.match(e.message, /at most/));
    assert.equal(srv.requests.length, 0);
  });

  it("sealBatch: the same seal is a no-op, another count a ConflictError; the id is path-encoded", async () => {
    srv.setHandler(fakeBatches().handler);
    const s = await agent().sealBatch("b/1 x", 3);
    assert.equal(s.expected, 3);
    assert.equal(s.status, "open");
    assert.equal((await agent().sealBatch("b/1 x", 3)).expected, 3);
    const e = await rejects(agent().sealBatch("b/1 x", 4), ConflictError);
    assert.match(e.message, /already sealed for 3/);
    assert.equal(srv.requests[0].url, "/v1/batches/b%2F1%20x/seal");
    for (const bad of [0, 100001, 1.5, "3"]) await rejects(agent().sealBatch("b1", bad), InvalidArgumentError);
  });

  it("sealBatch is retried on 5xx (sealing twice changes nothing)", async () => {
    srv.setHandler((_, n) => (n === 1 ? { status: 503, json: apiError("database_unavailable") } : { status: 200, json: batchWire("b1", "open", { expected: 2 }) }));
    const s = await agent().sealBatch("b1", 2);
    assert.equal(s.expected, 2);
    assert.equal(srv.requests.length, 2);
  });

  it("getBatchStatus parses camelCase fields and Dates; unknown batch is a NotFoundError", async () => {
    srv.setHandler(() => ({
      status: 200,
      json: batchWire("b1", "decided", {
        expected: 3,
        members: 3,
        counts: { executed: 2, denied: 1 },
        digest: "cd".repeat(32),
        decided_at: "2030-01-01T00:30:00.5Z",
        decided_by: "alice",
        decision: "approved",
        finished_at: "2030-01-01T00:31:00Z",
        approvals_received: 1,
        is_terminal: true,
        future_field: [1],
      }),
    }));
    const s = await agent().getBatchStatus("b1");
    assert.equal(srv.requests[0].method, "GET");
    assert.equal(srv.requests[0].path, "/v1/batches/b1");
    assert.ok(s instanceof BatchStatus);
    assert.equal(s.batchId, "b1");
    assert.equal(s.batchUid, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    assert.equal(s.status, "decided");
    assert.equal(s.isTerminal, true);
    assert.deepEqual({ ...s.counts }, { executed: 2, denied: 1 });
    assert.equal(s.decidedAt.toISOString(), "2030-01-01T00:30:00.500Z");
    assert.ok(s.finishedAt instanceof Date && s.createdAt instanceof Date);
    assert.equal(s.decidedBy, "alice");
    assert.equal(s.decision, "approved");
    assert.equal(s.approvalsReceived, 1);
    assert.equal(s.approvalsRequired, 1);
    assert.equal(s.grantId, "stripe");
    assert.equal(s.policyId, "pay");
    assert.equal(s.agent, "bot1");
    assert.equal(s.amountField, "amount");
    assert.deepEqual([...s.approvalIds], []);
    srv.setHandler(() => ({ status: 404, json: apiError("not_found", "no such batch") }));
    await rejects(agent().getBatchStatus("nope"), NotFoundError);
    await rejects(agent().awaitBatch("nope"), NotFoundError);
  });

  it("BatchStatus.fromWire: nulls before the seal; a bad answer is invalid_response", () => {
    const s = BatchStatus.fromWire({ batch_id: "b", status: "open", expected: null, expires_at: null, counts: {} });
    assert.equal(s.members, 0);
    assert.equal(s.expected, null);
    assert.equal(s.sealed, false);
    assert.equal(s.expiresAt, null);
    assert.equal(s.isTerminal, false);
    assert.throws(() => BatchStatus.fromWire({ status: "open" }), CountersignError);
    assert.throws(() => BatchStatus.fromWire({ batch_id: "b", status: "open", counts: [1] }), CountersignError);
  });

  it("batchPollDelay grows by half from pollInterval up to 10 s", () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => batchPollDelay(i, 2)), [2, 3, 4.5, 6.75, 10, 10]);
    assert.equal(batchPollDelay(100, 0.5), 10);
    assert.equal(batchPollDelay(3, 30), 30);
    assert.equal(cs.BATCH_POLL_MAX_SECONDS, 10);
  });

  it("awaitBatch polls with a growing interval until the batch is terminal", async () => {
    const done = batchWire("b1", "decided", { expected: 10, members: 10, counts: { executed: 8, denied: 2 }, finished_at: "2030-01-01T00:31:00Z", is_terminal: true });
    srv.setHandler((_, n) => ({ status: 200, json: n < 4 ? batchWire("b1", "decidable", { counts: { pending: 10 } }) : done }));
    const t0 = Date.now();
    const s = await agent().awaitBatch("b1", { timeout: 10, pollInterval: 0.1 });
    const took = Date.now() - t0;
    assert.equal(s.isTerminal, true);
    assert.deepEqual({ ...s.counts }, { executed: 8, denied: 2 });
    assert.equal(srv.requests.length, 4);
    const gaps = srv.requests.slice(1).map((r, i) => r.at - srv.requests[i].at);
    // 100, 150, 225 ms apart
    assert.ok(gaps[0] >= 90 && gaps[1] >= 140 && gaps[2] >= 210, `gaps ${gaps}`);
    assert.ok(gaps[2] > gaps[0], `gaps ${gaps}`);
    assert.ok(took < 2000, `took ${took} ms`);
  });

  it("awaitBatch: the local deadline gives an ApprovalTimeoutError with the last state", async () => {
    srv.setHandler(() => ({ status: 200, json: batchWire("b1", "decidable", { counts: { pending: 10 } }) }));
    const t0 = Date.now();
    const e = await rejects(agent().awaitBatch("b1", { timeout: 1, pollInterval: 0.2 }), ApprovalTimeoutError);
    const took = Date.now() - t0;
    assert.ok(took >= 950 && took < 1800, `took ${took} ms`);
    assert.equal(e.code, "timeout");
    assert.equal(e.statusCode, null);
    assert.equal(e.lastStatus, null);
    assert.ok(e.lastBatchStatus instanceof BatchStatus);
    assert.equal(e.lastBatchStatus.status, "decidable");
    assert.deepEqual(e.details, { batch_id: "b1", status: "decidable", counts: { pending: 10 }, timeout: 1 });
  });

  it("awaitBatch timeout 0 looks once", async () => {
    srv.setHandler(() => ({ status: 200, json: batchWire("b1", "open") }));
    await rejects(agent().awaitBatch("b1", { timeout: 0 }), ApprovalTimeoutError);
    assert.equal(srv.requests.length, 1);
  });

  it("awaitBatch rides out 5xx and dropped connections until the deadline", async () => {
    const done = batchWire("b1", "decided", { finished_at: "2030-01-01T00:31:00Z", is_terminal: true });
    srv.setHandler((_, n) => (n === 1 ? { status: 503, json: apiError("unavailable") } : n === 2 ? { destroy: true } : { status: 200, json: done }));
    const s = await agent({ maxRetries: 0 }).awaitBatch("b1", { timeout: 10, pollInterval: 0.05 });
    assert.equal(s.isTerminal, true);
    assert.equal(srv.requests.length, 3);
    srv.setHandler(() => ({ status: 500, json: apiError("internal_error") }));
    await rejects(agent({ maxRetries: 0 }).awaitBatch("b1", { timeout: 0.5, pollInterval: 0.1 }), ServerError);
  });

  it("awaitBatch refuses bad arguments", async () => {
    await rejects(agent().awaitBatch("b1", { timeout: -1 }), InvalidArgumentError);
    await rejects(agent().awaitBatch("b1", { pollInterval: 0 }), InvalidArgumentError);
    await rejects(agent().awaitBatch(""), InvalidArgumentError);
    await rejects(agent().awaitBatch("b1", { timeoutMs: -1 }), InvalidArgumentError);
    await rejects(agent().awaitBatch("b1", { pollIntervalMs: 0 }), InvalidArgumentError);
    await rejects(agent().awaitBatch("b1", { timeout: 1, timeoutMs: 1000 }), InvalidArgumentError, (e) =>
      assert.match(e.message, /not both/));
    await rejects(agent().awaitBatch("b1", { pollInterval: 1, pollIntervalMs: 1000 }), InvalidArgumentError);
    assert.equal(srv.requests.length, 0);
  });

  it("awaitBatch takes timeoutMs and pollIntervalMs in milliseconds", { timeout: 10_000 }, async () => {
    srv.setHandler(() => ({ status: 200, json: batchWire("b1", "decidable", { counts: { pending: 10 } }) }));
    const t0 = Date.now();
    const e = await rejects(agent().awaitBatch("b1", { timeoutMs: 1000, pollIntervalMs: 200 }), ApprovalTimeoutError);
    const took = Date.now() - t0;
    assert.ok(took >= 950 && took < 1800, `took ${took} ms`);
    const gaps = srv.requests.slice(1).map((r, i) => r.at - srv.requests[i].at);
    assert.ok(gaps[0] >= 190 && gaps[0] < 600, `gaps ${gaps}`);
    assert.equal(e.details.timeout, 1);
  });
});

describe("process exit", () => {
  it("a finished call leaves nothing that keeps node alive", async () => {
    // Asynchronous: this process serves the child's request.
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const script = `
      import { Agent } from "countersign";
      const a = new Agent({ apiKey: "k", baseUrl: process.argv[1] });
      try { await a.getApprovalStatus("x"); } catch (e) { console.log(e.name); }
    `;
    srv.setHandler(() => ({ status: 404, json: apiError("not_found") }));
    const { stdout: out } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script, srv.url], {
      cwd: new URL("..", import.meta.url),
      timeout: 10_000,
      encoding: "utf8",
    });
    assert.equal(out.trim(), "NotFoundError");
  });
});

describe("argument errors, an injected fetch, and AbortSignal", () => {
  /** A fetch of our own: records each call; answers with `answer(url, init)` (may hang until aborted). */
  function recordingFetch(answer) {
    const calls = [];
    const fetch = function (url, init) {
      assert.equal(this, undefined, "fetch is called as a plain function");
      calls.push({ url, init });
      return answer(url, init);
    };
    return { calls, fetch };
  }
  const json = (status, body, headers = {}) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
  /** A response that never comes: rejects with the signal's reason once aborted. */
  const hang = (_url, init) =>
    new Promise((_resolve, reject) => init.signal.addEventListener("abort", () => reject(init.signal.reason)));

  it("a local argument error is not a server 400, and neither is the other", async () => {
    const a = agent();
    const local = await rejects(a.proxyRequest("POST", "https://x/y", {}), InvalidArgumentError);
    assert.ok(!(local instanceof ValidationError) && local instanceof CountersignError);
    assert.equal(local.code, "invalid_argument");
    assert.equal(local.statusCode, null);
    assert.equal(srv.requests.length, 0);
    srv.setHandler(() => ({ status: 400, json: apiError("invalid_request", "the server says no") }));
    const remote = await rejects(a.proxyRequest("POST", "https://x/y", { grantId: "g" }), ValidationError);
    assert.ok(!(remote instanceof InvalidArgumentError));
    assert.equal(remote.statusCode, 400);
    assert.equal(remote.code, "invalid_request");
    assert.throws(() => new Agent({ apiKey: KEY, fetch: "nope" }), InvalidArgumentError);
    await rejects(a.getApprovalStatus(ID, { signal: "nope" }), InvalidArgumentError);
  });

  it("sends through the injected fetch, never the global one", async () => {
    const { calls, fetch } = recordingFetch(() => json(200, statusWire(ID, "pending")));
    const saved = globalThis.fetch;
    globalThis.fetch = () => {
      throw new Error("the global fetch was used");
    };
    try {
      const a = new Agent({ apiKey: KEY, baseUrl: "http://cs.invalid", fetch });
      const s = await a.getApprovalStatus(ID);
      assert.equal(s.status, "pending");
    } finally {
      globalThis.fetch = saved;
    }
    assert.equal(calls.length, 1);
    assert.equal(calls[0].url, `http://cs.invalid/v1/approvals/${ID}`);
    assert.equal(calls[0].init.method, "GET");
    assert.equal(calls[0].init.headers.Authorization, `Bearer ${KEY}`);
    assert.equal(calls[0].init.redirect, "manual");
    assert.ok(calls[0].init.signal instanceof AbortSignal);
  });

  it("an injected fetch's failure is a TransportError, and is retried", async () => {
    let n = 0;
    const { calls, fetch } = recordingFetch(() => {
      n += 1;
      if (n === 1) return Promise.reject(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }));
      return json(200, statusWire(ID, "pending"));
    });
    const a = new Agent({ apiKey: KEY, baseUrl: "http://cs.invalid", fetch, retryBackoff: 0.001 });
    assert.equal((await a.getApprovalStatus(ID)).status, "pending");
    assert.equal(calls.length, 2);
    const down = new Agent({ apiKey: KEY, baseUrl: "http://cs.invalid", maxRetries: 0, fetch: recordingFetch(() =>
      Promise.reject(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }))).fetch });
    await rejects(down.getApprovalStatus(ID), TransportError, (e) => assert.match(e.message, /ECONNREFUSED/));
  });

  it("every call rejects with the signal's reason, before any request, once aborted", async () => {
    const { calls, fetch } = recordingFetch(() => json(200, {}));
    const a = new Agent({ apiKey: KEY, baseUrl: "http://cs.invalid", fetch });
    const ctl = new AbortController();
    const reason = new Error("the user went away");
    ctl.abort(reason);
    const signal = ctl.signal;
    const req = { method: "POST", url: "https://x/y", grantId: "g" };
    const all = [
      a.proxyRequest("POST", "https://x/y", { grantId: "g", signal }),
      a.getApprovalStatus(ID, { signal }),
      a.cancelApproval(ID, { signal }),
      a.awaitApproval(ID, { signal }),
      a.submitBatch("b1", [req], { signal }),
      a.sealBatch("b1", 1, { signal }),
      a.getBatchStatus("b1", { signal }),
      a.awaitBatch("b1", { signal }),
    ];
    for (const p of all) await assert.rejects(p, (e) => e === reason);
    assert.equal(calls.length, 0);
    // Argument errors come first: they are bugs, whatever the signal says.
    await rejects(a.getApprovalStatus("", { signal }), InvalidArgumentError);
  });

  it("aborting a request in flight rejects at once with the signal's reason, not a TransportError", async () => {
    const { calls, fetch } = recordingFetch(hang);
    const a = new Agent({ apiKey: KEY, baseUrl: "http://cs.invalid", fetch });
    const ctl = new AbortController();
    const started = Date.now();
    const waiting = a.awaitApproval(ID, { timeout: 120, signal: ctl.signal });
    setTimeout(() => ctl.abort(), 50);
    await assert.rejects(waiting, (e) => e.name === "AbortError" && !(e instanceof CountersignError));
    assert.ok(Date.now() - started < 2000);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].init.signal.aborted, true);
  });

  it("aborting during a retry's backoff, a long-poll's pause or a batch poll rejects at once", async () => {
    const retryAfter = recordingFetch(() => json(503, apiError("unavailable"), { "retry-after": "50" }));
    const slow = new Agent({ apiKey: KEY, baseUrl: "http://cs.invalid", fetch: retryAfter.fetch });
    const pending = recordingFetch(() => json(200, batchWire("b1", "open")));
    const batches = new Agent({ apiKey: KEY, baseUrl: "http://cs.invalid", fetch: pending.fetch });
    for (const start of [
      (signal) => slow.getApprovalStatus(ID, { signal }),
      (signal) => batches.awaitBatch("b1", { timeout: 100, pollInterval: 30, signal }),
    ]) {
      const ctl = new AbortController();
      const began = Date.now();
      const p = start(ctl.signal);
      setTimeout(() => ctl.abort(new Error("stop")), 50);
      await assert.rejects(p, /stop/);
      assert.ok(Date.now() - began < 2000, "the pause was not cut short");
    }
    assert.equal(retryAfter.calls.length, 1);
    assert.equal(pending.calls.length, 1);
  });

  it("a signal that is never aborted changes nothing", async () => {
    srv.setHandler(() => ({ status: 200, json: statusWire(ID, "pending") }));
    const ctl = new AbortController();
    const s = await agent().getApprovalStatus(ID, { signal: ctl.signal });
    assert.equal(s.status, "pending");
    ctl.abort();
  });
});
