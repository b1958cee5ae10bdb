// A real HTTP server on 127.0.0.1 (port 0) that answers with canned responses,
// for the unit and README tests. Every request is recorded (method, path, query,
// headers, raw body and parsed JSON) before the handler answers it.
//
//   const srv = await startServer((req, n) => ({ status: 202, json: {...} }));
//   ... new Agent({ apiKey: "k", baseUrl: srv.url }) ...
//   srv.requests[0].json;  await srv.close();
//
// A handler returns { status, json } or { status, text, contentType }, plus
// optional headers, delayMs (before answering) and destroy: true (close the
// socket without an answer).

import http from "node:http";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startServer(handler) {
  const requests = [];
  const state = { handler };
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString("utf8");
    const u = new URL(req.url, "http://x");
    let json;
    try {
      json = raw ? JSON.parse(raw) : undefined;
    } catch {
      json = undefined;
    }
    const rec = {
      method: req.method,
      url: req.url,
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      headers: req.headers,
      raw,
      json,
      at: Date.now(),
    };
    requests.push(rec);
    let r;
    try {
      r = (await state.handler(rec, requests.length)) ?? {};
    } catch (e) {
      r = { status: 599, text: String(e) };
    }
    if (r.delayMs) await sleep(r.delayMs);
    if (r.destroy) {
      req.socket.destroy();
      return;
    }
    const body = r.text !== undefined ? r.text : JSON.stringify(r.json ?? {});
    res.writeHead(r.status ?? 200, {
      "content-type": r.contentType ?? "application/json",
      ...(r.headers ?? {}),
    });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setHandler(h) {
      state.handler = h;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An error body as the API sends it. */
export function apiError(code, message = code, details) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** The wire form of a pending approval. */
export function pendingWire(id = "0b7d9c1e-8f63-4c54-9a4e-3f1f7a2d5e10", extra = {}) {
  return {
    type: "pending_approval",
    approval_id: id,
    approval_url: `http://127.0.0.1:8080/status/tok-${id}`,
    expires_at: "2030-01-02T03:04:05.678901Z",
    status: "pending",
    ...extra,
  };
}

/** The wire form of a result whose body is `body` (a string). */
export function resultWire(id = "0b7d9c1e-8f63-4c54-9a4e-3f1f7a2d5e10", body = '{"refund":"re_1"}', extra = {}) {
  return {
    type: "result",
    approval_id: id,
    status: "executed",
    status_code: 201,
    headers: { "content-type": "application/json", "x-provider": "stub" },
    body_b64: Buffer.from(body).toString("base64"),
    body_truncated: false,
    executed_at: "2030-01-01T00:00:01Z",
    ...extra,
  };
}

/** The wire form of an approval status. */
export function statusWire(id = "0b7d9c1e-8f63-4c54-9a4e-3f1f7a2d5e10", status = "pending", extra = {}) {
  const terminal = ["executed", "failed", "denied", "expired", "cancelled"].includes(status);
  return {
    approval_id: id,
    status,
    is_terminal: terminal,
    created_at: "2030-01-01T00:00:00Z",
    expires_at: "2030-01-01T01:00:00Z",
    decided_at: null,
    decision_reason: null,
    executed_at: null,
    has_result: false,
    approvals_received: 0,
    approvals_required: 1,
    grant_id: "stripe",
    method: "POST",
    url: "https://api.stripe.com/v1/refunds",
    error_code: null,
    batch_id: null,
    ...extra,
  };
}

/** The wire form of a batch status. */
export function batchWire(batchId = "b1", status = "open", extra = {}) {
  return {
    batch_id: batchId,
    batch_uid: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    status,
    expected: null,
    members: 0,
    counts: {},
    digest: null,
    created_at: "2030-01-01T00:00:00Z",
    expires_at: "2030-01-01T01:00:00Z",
    decided_at: null,
    decided_by: null,
    decision: null,
    finished_at: null,
    grant_id: "stripe",
    policy_id: "pay",
    agent: "bot1",
    amount_field: "amount",
    agent_id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a00",
    approvals_received: 0,
    approvals_required: 1,
    is_terminal: false,
    ...extra,
  };
}

/**
 * A handler playing the batch routes like the API: POST /v1/proxy members by
 * idempotency key, POST /v1/batches/{id}/seal (another count: 409), GET
 * /v1/batches/{id} (unknown: 404); a member after a complete seal is a 409.
 * `refuse` maps an idempotency key to the answer its member gets;
 * `delayMs` holds every answer that long; `inFlight`/`maxInFlight` count.
 */
export function fakeBatches({ refuse = {}, delayMs = 0 } = {}) {
  const state = { members: new Map(), ids: new Map(), expected: new Map(), inFlight: 0, maxInFlight: 0, refuse };
  const status = (batch) => {
    const members = state.members.get(batch) ?? new Map();
    const expected = state.expected.get(batch) ?? null;
    const complete = expected !== null && members.size === expected;
    return batchWire(batch, complete ? "decidable" : "open", {
      expected,
      members: members.size,
      counts: members.size ? { pending: members.size } : {},
      digest: complete ? "ab".repeat(32) : null,
    });
  };
  const pending = (key) => ({
    type: "pending_approval",
    approval_id: state.ids.get(key),
    approval_url: `http://127.0.0.1:8080/status/${key}`,
    expires_at: "2030-01-01T01:00:00Z",
    status: "pending",
  });
  const answer = (req) => {
    if (req.method === "POST" && req.path === "/v1/proxy") {
      const { idempotency_key: key, batch_id: batch } = req.json;
      if (state.refuse[key]) return state.refuse[key];
      if (!state.members.has(batch)) state.members.set(batch, new Map());
      const members = state.members.get(batch);
      if (members.has(key)) return { status: 202, json: pending(key) };
      if (state.expected.has(batch) && members.size >= state.expected.get(batch)) {
        return { status: 409, json: apiError("conflict", `batch ${batch} is decidable: a member after that is refused`) };
      }
      members.set(key, req.json);
      state.ids.set(key, crypto.randomUUID());
      return { status: 202, json: pending(key) };
    }
    const m = /^\/v1\/batches\/([^/]+)(\/seal)?$/.exec(req.path);
    if (m) {
      const batch = decodeURIComponent(m[1]);
      if (req.method === "POST" && m[2]) {
        const count = req.json.count;
        if (state.expected.has(batch) && state.expected.get(batch) !== count) {
          return {
            status: 409,
            json: apiError("conflict", `batch ${batch} is already sealed for ${state.expected.get(batch)} members: a seal for ${count} is refused`),
          };
        }
        state.expected.set(batch, count);
        return { status: 200, json: status(batch) };
      }
      if (req.method === "GET" && !m[2]) {
        if (!state.members.has(batch) && !state.expected.has(batch)) return { status: 404, json: apiError("not_found", "no such batch") };
        return { status: 200, json: status(batch) };
      }
    }
    return { status: 404, json: apiError("not_found", "no route") };
  };
  const handler = async (req) => {
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    try {
      if (delayMs) await sleep(delayMs);
      return answer(req);
    } finally {
      state.inFlight--;
    }
  };
  return { handler, state };
}
