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
