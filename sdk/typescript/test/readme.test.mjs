// The README's examples are tests. Every ```ts block of README.md is
//   1. type-checked (strict) against the built package's .d.ts, importing
//      "countersign" exactly as a user would, and
//   2. transpiled and run with node against a fake Countersign API on
//      127.0.0.1 that plays out an outcome (approved, denied, expired, failed,
//      cancelled, executed inline, bad key; a batch approved all but two, a
//      refused batch member), checking what the example prints.
//
//   npm run build && node --test test/readme.test.mjs

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import ts from "typescript";

import { startServer, apiError, resultWire, statusWire, batchWire } from "./fake-server.mjs";

const HERE = fileURLToPath(new URL(".", import.meta.url));
const README = fileURLToPath(new URL("../README.md", import.meta.url));
const KEY = "cs_readme_key_0123456789";

/** The ```ts blocks of the README, with the line each starts on. */
function tsBlocks(markdown) {
  const blocks = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|typescript)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i + 1;
    const body = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    blocks.push({ line: start, code: body.join("\n") + "\n" });
  }
  return blocks;
}

// ---- a fake Countersign API that plays one scenario --------------------------

const fake = { scenario: "approve", decideMs: 0, approvals: new Map(), batches: new Map() };

const OUTCOMES = {
  approve: { status: "executed" },
  deny: { status: "denied", http: 409, error: apiError("denied", "denied by alice", { reason: "duplicate refund", decided_by: "alice" }) },
  expire: { status: "expired", http: 410, error: apiError("expired", "the approval window has elapsed") },
  fail: {
    status: "failed",
    http: 502,
    error: apiError("execution_failed", "the approved call failed", {
      error_code: "outcome_unknown",
      error_message: "the connection broke after the request was sent",
    }),
  },
  cancelled: { status: "cancelled", http: 409, error: apiError("cancelled", "cancelled by the requester") },
};

function outcomeOf(a) {
  if (a.cancelled) return { status: "cancelled", http: 409, error: apiError("cancelled", "cancelled by the requester", { reason: a.cancelReason }) };
  if (a.outcome) return OUTCOMES[a.outcome];
  return OUTCOMES[fake.scenario] ?? OUTCOMES.approve;
}

// Batches: members are pending until decideMs after the seal; then the first
// two members (by request id) are denied and the others executed.
function batchOf(id) {
  if (!fake.batches.has(id)) fake.batches.set(id, { members: new Map(), expected: null, decideAt: null });
  return fake.batches.get(id);
}

function batchStatus(id, b) {
  const complete = b.expected !== null && b.members.size === b.expected;
  const decided = complete && Date.now() >= b.decideAt;
  const counts = {};
  for (const a of b.members.values()) {
    const s = decided ? outcomeOf(a).status : "pending";
    counts[s] = (counts[s] ?? 0) + 1;
  }
  return batchWire(id, decided ? "decided" : complete ? "decidable" : "open", {
    expected: b.expected,
    members: b.members.size,
    counts,
    digest: complete ? "5e".repeat(32) : null,
    decision: decided ? "approved" : null,
    decided_at: decided ? new Date(b.decideAt).toISOString() : null,
    finished_at: decided ? new Date(b.decideAt).toISOString() : null,
    is_terminal: decided,
  });
}

function handleBatch(req) {
  if (req.method === "POST" && req.path === "/v1/proxy") {
    const b = batchOf(req.json.batch_id);
    const key = req.json.idempotency_key;
    if (fake.scenario === "batchconflict" && key.endsWith("1003")) {
      return { status: 409, json: apiError("conflict", `batch ${req.json.batch_id} is decidable (sealed for 100 members, all stored): a member after that is refused`) };
    }
    if (!b.members.has(key)) {
      const id = randomUUID();
      const a = { id, key, decideAt: Infinity, cancelled: false };
      b.members.set(key, a);
      fake.approvals.set(id, a);
      const first = [...b.members.keys()].sort().slice(0, 2);
      for (const m of b.members.values()) m.outcome = first.includes(m.key) ? "deny" : "approve";
    }
    const a = b.members.get(key);
    return {
      status: 202,
      json: { type: "pending_approval", approval_id: a.id, approval_url: `http://127.0.0.1:8080/status/${a.id}`, expires_at: new Date(Date.now() + 3600_000).toISOString(), status: "pending" },
    };
  }
  const m = /^\/v1\/batches\/([^/]+)(\/seal)?$/.exec(req.path);
  if (!m) return null;
  const id = decodeURIComponent(m[1]);
  if (req.method === "POST" && m[2]) {
    const b = batchOf(id);
    if (b.expected !== null && b.expected !== req.json.count) return { status: 409, json: apiError("conflict", "already sealed") };
    b.expected = req.json.count;
    b.decideAt = Date.now() + fake.decideMs;
    for (const a of b.members.values()) a.decideAt = b.decideAt;
    return { status: 200, json: batchStatus(id, b) };
  }
  if (!fake.batches.has(id)) return { status: 404, json: apiError("not_found", "no such batch") };
  return { status: 200, json: batchStatus(id, fake.batches.get(id)) };
}

function statusOf(id, a) {
  const decided = a.cancelled || Date.now() >= a.decideAt;
  if (!decided) return statusWire(id, "pending", { approvals_received: 0, approvals_required: 1 });
  const o = outcomeOf(a);
  return statusWire(id, o.status, {
    decided_at: new Date(a.decideAt).toISOString(),
    decision_reason: o.status === "denied" ? "duplicate refund" : a.cancelReason ?? null,
    has_result: o.status === "executed",
    approvals_received: o.status === "executed" ? 1 : 0,
    error_code: o.status === "failed" ? "outcome_unknown" : null,
  });
}

const RESULT_BODY = '{"id":"re_1","status":"succeeded"}';

async function handle(req) {
  const auth = req.headers.authorization;
  if (fake.scenario === "badkey" || auth !== `Bearer ${KEY}`) {
    return { status: 401, json: apiError("unauthenticated", "missing, unknown or revoked API key") };
  }
  if (req.json?.batch_id !== undefined || req.path.startsWith("/v1/batches/")) {
    const answer = handleBatch(req);
    if (answer) return answer;
  }
  if (req.method === "POST" && req.path === "/v1/proxy") {
    const b = req.json ?? {};
    if (!b.grant_id || !b.url || !b.method) return { status: 400, json: apiError("invalid_request", "missing field") };
    const id = randomUUID();
    if (fake.scenario === "inline") return { status: 200, json: resultWire(id, RESULT_BODY, { status_code: 200 }) };
    fake.approvals.set(id, { decideAt: Date.now() + fake.decideMs, cancelled: false });
    return {
      status: 202,
      json: {
        type: "pending_approval",
        approval_id: id,
        approval_url: `http://127.0.0.1:8080/status/${id}`,
        expires_at: new Date(Date.now() + 3600_000).toISOString(),
        status: "pending",
      },
    };
  }
  const m = /^\/v1\/approvals\/([^/]+)(\/result|\/cancel)?$/.exec(req.path);
  const a = m && fake.approvals.get(m[1]);
  if (!a) return { status: 404, json: apiError("not_found", "no such approval") };
  const id = m[1];
  if (req.method === "GET" && m[2] === undefined) return { status: 200, json: statusOf(id, a) };
  if (req.method === "POST" && m[2] === "/cancel") {
    if (a.cancelled || Date.now() >= a.decideAt) return { status: 409, json: apiError("not_pending", "the approval is no longer pending") };
    a.cancelled = true;
    a.cancelReason = req.json?.reason ?? null;
    a.decideAt = Date.now();
    return { status: 200, json: statusOf(id, a) };
  }
  if (req.method === "GET" && m[2] === "/result") {
    const wait = Math.min(60, Number(req.query.wait ?? 0)) * 1000;
    const left = a.decideAt - Date.now();
    if (!a.cancelled && left > 0) {
      // unref: a hold whose client went away (an aborted example) must not keep the tests alive.
      await new Promise((r) => setTimeout(r, Math.min(wait, left)).unref());
      if (Date.now() < a.decideAt) return { status: 202, json: statusOf(id, a) };
    }
    const o = outcomeOf(a);
    if (o.status === "executed") return { status: 200, json: resultWire(id, RESULT_BODY, { status_code: 200 }) };
    return { status: o.http, json: o.error };
  }
  return { status: 404, json: apiError("not_found", "no route") };
}

// ---- which outcomes each example is run with ---------------------------------

// `block`: a string that identifies the example. Examples not listed run once,
// approved at once, and must exit 0.
const PLAYS = [
  {
    block: "Waiting for approval:",
    runs: [
      { scenario: "inline", expect: /^Stripe answered 200 \{ id: 're_1', status: 'succeeded' \}\n$/ },
      {
        scenario: "approve",
        decideMs: 300,
        expect: /^Waiting for approval: http:\/\/127\.0\.0\.1:8080\/status\/[0-9a-f-]+\nThe request expires at \d{4}-.*Z\nStripe answered 200 \{ id: 're_1', status: 'succeeded' \}\n$/,
      },
      { scenario: "deny", expect: /Denied by an approver: duplicate refund\n$/ },
      { scenario: "expire", expect: /Nobody decided before the approval window closed; nothing was sent\.\n$/ },
      { scenario: "cancelled", expect: /The request was cancelled; nothing was sent\.\n$/ },
      { scenario: "fail", expect: /Approved, but the call failed: outcome_unknown \(the connection broke after the request was sent\)\n$/ },
      { scenario: "badkey", exitCode: 1, stderr: /AuthenticationError/ },
    ],
  },
  {
    block: "getApprovalStatus(",
    runs: [
      { scenario: "approve", expect: /^executed: 1\/1 approvals\nCRM answered 200\n$/ },
      { scenario: "deny", expect: /^denied: 0\/1 approvals\nFinished without a result: denied duplicate refund\n$/ },
      { scenario: "approve", decideMs: 60_000, expect: /^pending: 0\/1 approvals\n$/ },
    ],
  },
  {
    block: "{ timeout: 2 }",
    runs: [{ scenario: "approve", decideMs: 3000, expect: /^Not decided yet \(pending\); telling the user and waiting longer\nPayout created: HTTP 200\n$/ }],
  },
  {
    block: "submitBatch(",
    runs: [
      {
        scenario: "approve",
        decideMs: 300,
        expect: new RegExp(
          "^Waiting for the batch decision on refunds-2024-06-03: 100 refunds, batch digest (5e){32}\\n" +
            "Batch refunds-2024-06-03 approved: denied: 2, executed: 98\\n" +
            "(Not refunded: [0-9a-f-]{36} denied duplicate refund\\n){2}" +
            "98 refunds made\\n$",
        ),
      },
      { scenario: "batchconflict", expect: /^Refused \(request 3\): batch refunds-2024-06-03 is decidable .*a member after that is refused\n$/ },
    ],
  },
  {
    block: "AbortSignal.timeout(",
    runs: [{ scenario: "approve", decideMs: 60_000, expect: /^Stopped waiting after 2 requests; [0-9a-f-]{36} is still pending\n$/ }],
  },
  {
    block: "cancelApproval(",
    runs: [{ scenario: "approve", decideMs: 60_000, expect: /^Now cancelled\n$/ }],
  },
];

// ---- the tests -----------------------------------------------------------------

const blocks = tsBlocks(readFileSync(README, "utf8"));
let dir;
let srv;

before(async () => {
  dir = mkdtempSync(join(HERE, ".tmp-readme-"));
  // Node's globals as @types/node declares them for users; the package itself needs none.
  writeFileSync(join(dir, "node-globals.d.ts"), "declare const process: { env: Record<string, string | undefined>; exitCode?: number };\n");
  blocks.forEach((b, i) => writeFileSync(join(dir, `example-${i}.ts`), b.code));
  srv = await startServer(handle);
});

after(async () => {
  await srv?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("README examples", () => {
  it("has ts examples, each matched by at most one play", () => {
    assert.ok(blocks.length >= 4, `found ${blocks.length} ts blocks`);
    for (const p of PLAYS) {
      const n = blocks.filter((b) => b.code.includes(p.block)).length;
      assert.equal(n, 1, `${JSON.stringify(p.block)} should identify exactly one README example (found ${n})`);
    }
  });

  it("type-check against the published declarations (strict)", () => {
    const files = [join(dir, "node-globals.d.ts"), ...blocks.map((_, i) => join(dir, `example-${i}.ts`))];
    const program = ts.createProgram(files, {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
      types: [],
      skipLibCheck: false,
    });
    const diags = ts.getPreEmitDiagnostics(program).map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
      const i = d.file ? /example-(\d+)\.ts$/.exec(d.file.fileName)?.[1] : undefined;
      if (i === undefined || d.start === undefined) return `${d.file?.fileName ?? ""}: ${text}`;
      // blocks[i].line is the fence's line number; the code starts on the next line.
      return `README.md:${blocks[i].line + 1 + d.file.getLineAndCharacterOfPosition(d.start).line}: ${text}`;
    });
    assert.deepEqual(diags, []);
  });

  blocks.forEach((b, i) => {
    const play = PLAYS.find((p) => b.code.includes(p.block)) ?? { runs: [{ scenario: "approve" }] };
    for (const run of play.runs) {
      it(`README.md:${b.line} runs (${run.scenario}${run.decideMs ? `, decided after ${run.decideMs} ms` : ""})`, async () => {
        const js = ts.transpileModule(b.code, {
          compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
        }).outputText;
        const file = join(dir, `example-${i}.mjs`);
        writeFileSync(file, js);
        fake.scenario = run.scenario;
        fake.decideMs = run.decideMs ?? 0;
        fake.batches.clear();
        const { code, stdout, stderr } = await new Promise((resolve) => {
          execFile(
            process.execPath,
            [file],
            {
              cwd: dir,
              timeout: 30_000,
              env: { ...process.env, COUNTERSIGN_URL: srv.url, COUNTERSIGN_API_KEY: KEY },
            },
            (err, stdout, stderr) => resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr }),
          );
        });
        const want = run.exitCode ?? 0;
        assert.equal(code, want, `exit ${code}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
        if (run.expect) assert.match(stdout, run.expect, `stderr:\n${stderr}`);
        if (run.stderr) assert.match(stderr, run.stderr);
        assert.ok(!stdout.includes(KEY) && !stderr.includes(KEY), "the API key leaked into the output");
      });
    }
  });
});
