/**
 * The Agent: the client an agent or backend service uses to submit calls through
 * Countersign and wait for their outcome, over the HTTP API of api/openapi.json.
 *
 * - Transport: the platform's fetch (Node >= 20), or the `fetch` option's; no
 *   dependencies. Every call takes an AbortSignal (`signal`): aborting rejects
 *   the call with the signal's reason, whether it is sending, waiting for an
 *   answer, backing off or long-polling.
 * - Arguments are checked before any request: a bad one is an
 *   InvalidArgumentError, never confused with a ValidationError (the server's 400).
 * - Auth: the API key as `Authorization: Bearer <key>` (or `X-Api-Key`). The key
 *   lives in a private field: it is never in `inspect()` or `JSON.stringify()`
 *   output, and any error message that would contain it is redacted.
 * - Retries: transport failures and 5xx answers are retried with bounded
 *   exponential backoff (and jitter) on GETs, and on POST /v1/proxy only when the
 *   call carries an idempotencyKey (the server then returns the first answer).
 *   A 502 `execution_failed` is an outcome, never retried. Cancel is not retried.
 * - Waiting: awaitApproval long-polls GET /v1/approvals/{id}/result?wait=N with
 *   N <= 60 taken from the time left, so it never waits much past its timeout.
 *   Durations are seconds (`timeout`, `pollInterval`) or milliseconds
 *   (`timeoutMs`, `pollIntervalMs`); durationMs() is the one place that reads them.
 * - Batches: submitBatch sends the members (each with an idempotency key, so
 *   retried) a bounded number at a time, then seals; awaitBatch polls
 *   GET /v1/batches/{id} (no long-poll there) with a growing interval.
 */

import {
  ApprovalCancelledError,
  ApprovalDeniedError,
  ApprovalExecutionFailedError,
  ApprovalTimeoutError,
  CountersignError,
  InvalidArgumentError,
  ServerError,
  TransportError,
  errorFromResponse,
} from "./errors.js";
import { ApprovalResult, ApprovalStatus, BatchStatus, PendingApproval, bytesToBase64 } from "./models.js";

/** The SDK's version (sent in User-Agent). */
export const VERSION = "0.1.0";

/** The default base URL when neither `baseUrl` nor COUNTERSIGN_URL is set. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:8080";

/** HTTP methods Countersign can proxy. Plain strings (any case) are accepted too. */
export const HttpMethod = Object.freeze({
  GET: "GET",
  POST: "POST",
  PUT: "PUT",
  PATCH: "PATCH",
  DELETE: "DELETE",
  HEAD: "HEAD",
  OPTIONS: "OPTIONS",
} as const);
/** One of the {@link HttpMethod} values. */
export type HttpMethod = (typeof HttpMethod)[keyof typeof HttpMethod];

/**
 * The fetch the Agent sends with: the platform's by default; pass your own
 * (undici with a proxy agent, a mock in tests, a fetch with tracing). It is
 * called as a plain function, `fetch(url, init)`, with `init.signal` set.
 */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** What every call of the Agent accepts. */
export interface CallOptions {
  /** Aborts the call: it rejects with `signal.reason` (an `AbortError` DOMException by default). */
  signal?: AbortSignal;
}

/** Options of `new Agent(...)`. */
export interface AgentOptions {
  /** The fetch to send with (default: the global fetch, looked up at each request). */
  fetch?: FetchLike;
  /** The agent's API key (`countersign key create`). Defaults to env COUNTERSIGN_API_KEY. */
  apiKey?: string;
  /** Countersign's base URL. Defaults to env COUNTERSIGN_URL, then http://127.0.0.1:8080. */
  baseUrl?: string;
  /** Seconds one HTTP request may take (default 30). A long-poll adds its wait to this. */
  timeout?: number;
  /** Retries of a retriable failure (default 3; 0 disables retries). docs/RETRIES.md */
  maxRetries?: number;
  /** First backoff delay in seconds (default 0.5); doubles per retry, at most 8 s. */
  retryBackoff?: number;
  /** Which header carries the key: `authorization` (Bearer, default) or `x-api-key`. */
  authHeader?: "authorization" | "x-api-key";
}

/** A query parameter's value; arrays repeat the parameter. */
export type QueryValue = string | number | boolean;

/** Options of {@link Agent.proxyRequest}. */
export interface ProxyRequestOptions extends CallOptions {
  /** The grant whose secret Countersign injects (required). */
  grantId: string;
  /** A JSON body (any JSON value; `null` sends a JSON null, distinct from leaving it out). */
  json?: unknown;
  /** A raw body: a string is sent as text, bytes as base64 (`body_b64`). At most one of json/body. */
  body?: string | Uint8Array | ArrayBuffer;
  /** Extra request headers. Authorization, Cookie, X-Api-Key, Host, Idempotency-Key... are refused. */
  extraHeaders?: Record<string, string>;
  /** Query parameters merged into the URL. */
  queryParams?: Record<string, QueryValue | QueryValue[]>;
  /** Values for `{name}` placeholders in the URL. */
  pathParams?: Record<string, string | number>;
  /** Why the agent makes this call, shown to approvers: be concrete. */
  reason?: string;
  /** Free-form context shown to approvers (at most 16 KiB). */
  context?: Record<string, unknown>;
  /** Resubmitting with the same key returns the first answer; also makes the submit retriable. */
  idempotencyKey?: string;
  /** Tags the call as a member of a batch. */
  batchId?: string;
}

/**
 * Options of {@link Agent.awaitApproval}. Each duration is given in seconds
 * (`timeout`, as the guide writes it) or in milliseconds (`timeoutMs`, as the
 * SDK reference writes it), never both: giving both of a pair is a
 * InvalidArgumentError, whatever the values, since only one unit can be meant.
 */
export interface AwaitApprovalOptions extends CallOptions {
  /** Seconds to wait in all (default 300). 0 checks once. Not with `timeoutMs`. */
  timeout?: number;
  /** Milliseconds to wait in all (default 300000). 0 checks once. Not with `timeout`. */
  timeoutMs?: number;
  /**
   * Seconds to pause before the next long-poll when the server answered sooner
   * than asked (it may cap its wait); default 1, must be > 0. The long-poll
   * itself returns as soon as the outcome is stored. Not with `pollIntervalMs`.
   */
  pollInterval?: number;
  /** `pollInterval` in milliseconds (default 1000, must be > 0). Not with `pollInterval`. */
  pollIntervalMs?: number;
}

/** Options of {@link Agent.cancelApproval}. */
export interface CancelApprovalOptions extends CallOptions {
  /** Why the requester cancels (recorded in the audit log). */
  reason?: string;
}

/** One member of a batch: the arguments of proxyRequest in one object (submitBatch sets `batchId`). */
export interface BatchRequest extends Omit<ProxyRequestOptions, "batchId" | "signal"> {
  /** An {@link HttpMethod} value or any-case string. */
  method: HttpMethod | (string & {});
  /** The URL (under one of the grant's allowed base URLs; may hold `{name}` placeholders). */
  url: string;
}

/** Options of {@link Agent.submitBatch}. */
export interface SubmitBatchOptions extends CallOptions {
  /** Seal the batch with `firstIndex + requests.length` members once all are stored (default true). */
  seal?: boolean;
  /** How many member submissions are in flight at once (default 16). */
  concurrency?: number;
  /** The index of the first request, for the default keys `${batchId}:${index}` (default 0). */
  firstIndex?: number;
}

/**
 * Options of {@link Agent.awaitBatch}: seconds or milliseconds, never both of a
 * pair (an InvalidArgumentError), as in {@link AwaitApprovalOptions}.
 */
export interface AwaitBatchOptions extends CallOptions {
  /** Seconds to wait in all (default 300). 0 checks once. Not with `timeoutMs`. */
  timeout?: number;
  /** Milliseconds to wait in all (default 300000). 0 checks once. Not with `timeout`. */
  timeoutMs?: number;
  /** Seconds before the second look (default 2, > 0); grows by half each time, up to 10 s. Not with `pollIntervalMs`. */
  pollInterval?: number;
  /** `pollInterval` in milliseconds (default 2000, > 0). Not with `pollInterval`. */
  pollIntervalMs?: number;
}

/** The most members a batch may have (the API's limit). */
export const BATCH_MAX_MEMBERS = 100000;
/** submitBatch's default number of member submissions in flight. */
export const BATCH_CONCURRENCY = 16;
/** The longest pause between two polls of awaitBatch, in seconds (unless pollInterval is longer). */
export const BATCH_POLL_MAX_SECONDS = 10;

const BATCH_REQUEST_KEYS = new Set([
  "method", "url", "grantId", "json", "body", "extraHeaders", "queryParams", "pathParams", "reason",
  "context", "idempotencyKey",
]);

/**
 * The pause in seconds before poll number `poll` + 1 of awaitBatch (0: the pause
 * after the first look): `pollInterval`, growing by half each time, at most
 * {@link BATCH_POLL_MAX_SECONDS} (or `pollInterval` when that is longer).
 */
export function batchPollDelay(poll: number, pollInterval: number): number {
  const cap = Math.max(BATCH_POLL_MAX_SECONDS, pollInterval);
  return Math.min(cap, pollInterval * 1.5 ** Math.min(poll, 64));
}

/** Longest wait one long-poll may ask for (the API's maximum). */
export const MAX_LONG_POLL_SECONDS = 60;

/**
 * The retry policy, the same in the Python SDK and the C client: docs/RETRIES.md
 * is its table, and tests/integration/test_sdk_retries.py checks this against it.
 */
export const RETRY_POLICY = Object.freeze({
  /** Retries of a retriable failure, by default (`maxRetries`). */
  maxRetries: 3,
  /** The first pause's ceiling in seconds, by default (`retryBackoff`); doubles per retry. */
  backoffFirstSeconds: 0.5,
  /** The longest pause between retries, in seconds. */
  backoffMaxSeconds: 8,
  /** The longest Retry-After honoured, in seconds; a longer one is cut to this. */
  retryAfterMaxSeconds: 60,
  /** HTTP answers worth another try (never a 502 `execution_failed`: an outcome). */
  retryStatuses: Object.freeze([429, 500, 502, 503, 504]),
});

/**
 * The `wait` (whole seconds, 0..60) of the next long-poll, given the time left in
 * milliseconds: never more than is left, so the local deadline holds.
 */
export function longPollWait(remainingMs: number): number {
  if (!(remainingMs > 0)) return 0;
  return Math.min(MAX_LONG_POLL_SECONDS, Math.floor(remainingMs / 1000));
}

interface SendOptions {
  query?: Record<string, string>;
  body?: unknown;
  retry: boolean;
  timeoutMs: number;
  approvalId?: string;
  signal?: AbortSignal | undefined;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

/** Waits `ms`; rejects with the signal's reason as soon as it is aborted. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The `signal` of a call's options, checked (an AbortSignal or nothing). */
function signalOf(options: CallOptions | undefined): AbortSignal | undefined {
  const signal = options?.signal ?? undefined;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw invalid("signal must be an AbortSignal");
  }
  return signal;
}

function envVar(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = proc?.env?.[name];
  return v === undefined || v === "" ? undefined : v;
}

function invalid(message: string, cause?: unknown): InvalidArgumentError {
  return new InvalidArgumentError("invalid_argument", message, cause === undefined ? {} : { cause });
}

/**
 * A duration option given either in seconds (`options[seconds]`) or in
 * milliseconds (`options[seconds + "Ms"]`), in milliseconds; `defaultMs` when
 * neither is set (undefined or null). Throws InvalidArgumentError when both are set,
 * or when the value is not a finite number >= 0 (> 0 when `positive`).
 */
function durationMs(
  options: object,
  seconds: "timeout" | "pollInterval",
  defaultMs: number,
  positive: boolean,
): number {
  const ms = `${seconds}Ms`;
  const given = options as Record<string, unknown>;
  const s = given[seconds] ?? undefined;
  const m = given[ms] ?? undefined;
  if (s !== undefined && m !== undefined) {
    throw invalid(`give ${seconds} (seconds) or ${ms} (milliseconds), not both`);
  }
  const [name, value, unit, scale] =
    m !== undefined ? [ms, m, "milliseconds", 1] : [seconds, s ?? defaultMs / 1000, "seconds", 1000];
  if (!(typeof value === "number" && Number.isFinite(value) && (positive ? value > 0 : value >= 0))) {
    const bound = positive ? "a positive" : "a non-negative";
    const shown =
      typeof value === "string"
        ? JSON.stringify(value)
        : typeof value === "number" || typeof value === "boolean" || value == null
          ? String(value)
          : `a value of type ${typeof value}`;
    throw invalid(`${name} must be ${bound} finite number of ${unit}, not ${shown}`);
  }
  return value * scale;
}

function requireId(approvalId: unknown): string {
  if (typeof approvalId !== "string" || approvalId === "") {
    throw invalid("approvalId must be a non-empty string");
  }
  return approvalId;
}

function requireBatchId(batchId: unknown): string {
  if (typeof batchId !== "string" || batchId.trim() === "") {
    throw invalid("batchId must be a non-empty string");
  }
  return batchId.trim();
}

/** Worth asking again later: no answer, or a 5xx that is not an outcome. */
function transient(e: unknown): boolean {
  return e instanceof TransportError || (e instanceof ServerError && e.code !== "execution_failed");
}

/** The client of one agent identity. */
export class Agent {
  /** Countersign's base URL, without a trailing slash. */
  readonly baseUrl: string;
  /** Seconds one HTTP request may take. */
  readonly timeout: number;
  /** Retries of a retriable failure. */
  readonly maxRetries: number;
  /** First backoff delay in seconds. */
  readonly retryBackoff: number;
  readonly #apiKey: string;
  readonly #authHeader: "authorization" | "x-api-key";
  readonly #fetch: FetchLike;

  constructor(options: AgentOptions = {}) {
    const apiKey = options.apiKey ?? envVar("COUNTERSIGN_API_KEY");
    if (typeof apiKey !== "string" || apiKey === "") {
      throw invalid("an apiKey is required (or set COUNTERSIGN_API_KEY)");
    }
    const base = options.baseUrl ?? envVar("COUNTERSIGN_URL") ?? DEFAULT_BASE_URL;
    let parsed: URL;
    try {
      parsed = new URL(base);
    } catch {
      throw invalid(`baseUrl is not a URL: ${JSON.stringify(base)}`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw invalid(`baseUrl must be http(s): ${JSON.stringify(base)}`);
    }
    const timeout = options.timeout ?? 30;
    if (!(typeof timeout === "number" && timeout > 0 && Number.isFinite(timeout))) {
      throw invalid("timeout must be a positive number of seconds");
    }
    const maxRetries = options.maxRetries ?? RETRY_POLICY.maxRetries;
    if (!(Number.isInteger(maxRetries) && maxRetries >= 0 && maxRetries <= 10)) {
      throw invalid("maxRetries must be an integer from 0 to 10");
    }
    const retryBackoff = options.retryBackoff ?? RETRY_POLICY.backoffFirstSeconds;
    if (!(typeof retryBackoff === "number" && retryBackoff >= 0 && Number.isFinite(retryBackoff))) {
      throw invalid("retryBackoff must be a non-negative number of seconds");
    }
    const custom = options.fetch;
    if (custom !== undefined && typeof custom !== "function") throw invalid("fetch must be a function");
    const authHeader = options.authHeader ?? "authorization";
    if (authHeader !== "authorization" && authHeader !== "x-api-key") {
      throw invalid('authHeader must be "authorization" or "x-api-key"');
    }
    this.baseUrl = base.replace(/\/+$/, "");
    this.timeout = timeout;
    this.maxRetries = maxRetries;
    this.retryBackoff = retryBackoff;
    this.#apiKey = apiKey;
    this.#authHeader = authHeader;
    this.#fetch = custom ?? ((url, init) => globalThis.fetch(url, init));
  }

  /** What JSON.stringify shows: never the key. */
  toJSON(): Record<string, unknown> {
    return { baseUrl: this.baseUrl, timeout: this.timeout, maxRetries: this.maxRetries };
  }

  /**
   * Submits `method url` to be made with the grant's secret. Resolves to an
   * {@link ApprovalResult} when no approval was needed (the call was executed
   * inline), or to a {@link PendingApproval} to show and await.
   */
  async proxyRequest(
    method: HttpMethod | (string & {}),
    url: string,
    options: ProxyRequestOptions,
  ): Promise<PendingApproval | ApprovalResult> {
    const payload = this.#proxyPayload(method, url, options);
    return this.#submit(payload, options.idempotencyKey !== undefined, signalOf(options));
  }

  /**
   * Waits up to `timeout` seconds, or `timeoutMs` milliseconds (default 300 s),
   * for the approval's outcome. Long-polls; when the server answers sooner than
   * asked it pauses `pollInterval` s / `pollIntervalMs` ms (default 1 s) before
   * asking again. Giving both units of one option is an InvalidArgumentError.
   * Resolves to the provider's response when the call was executed; rejects with
   * ApprovalDeniedError, ApprovalExpiredError, ApprovalCancelledError,
   * ApprovalExecutionFailedError, or ApprovalTimeoutError when the local wait
   * gave up (the approval may still be pending: awaiting again is fine).
   */
  async awaitApproval(approvalId: string, options: AwaitApprovalOptions = {}): Promise<ApprovalResult> {
    const id = requireId(approvalId);
    const timeoutMs = durationMs(options, "timeout", 300_000, false);
    const pollMs = durationMs(options, "pollInterval", 1000, true);
    const signal = signalOf(options);
    const start = Date.now();
    const deadline = start + timeoutMs;
    let lastStatus: ApprovalStatus | null = null;
    for (let first = true; ; first = false) {
      let remaining = deadline - Date.now();
      const wait = longPollWait(remaining);
      if (wait === 0 && remaining > 0 && !first) {
        // Less than a second left: sleep it off, then look one last time.
        await sleep(remaining, signal);
        remaining = 0;
      }
      const asked = Date.now();
      const answer = await this.#send("GET", `/v1/approvals/${encodeURIComponent(id)}/result`, {
        query: { wait: String(wait) },
        retry: true,
        timeoutMs: (wait + this.timeout) * 1000,
        approvalId: id,
        signal,
      });
      if (answer.status === 200) return ApprovalResult.fromWire(answer.body);
      try {
        lastStatus = ApprovalStatus.fromWire(answer.body);
      } catch {
        // A 202 without a full status: keep the previous one.
      }
      const now = Date.now();
      if (now >= deadline || remaining <= 0) {
        const waited = Math.round((now - start) / 100) / 10;
        const status = lastStatus?.status ?? null;
        throw new ApprovalTimeoutError(
          "timeout",
          `approval ${id} is still ${status ?? "not terminal"} after waiting ${waited}s; ` +
            "it may still be decided: await it again or poll getApprovalStatus",
          { approvalId: id, details: { status, waited_seconds: waited }, lastStatus },
        );
      }
      // A 202 sooner than asked (the server may cap its wait): do not spin.
      if (now - asked < wait * 1000 - 500) await sleep(Math.min(pollMs, deadline - now), signal);
    }
  }

  /** The approval's current state. */
  async getApprovalStatus(approvalId: string, options: CallOptions = {}): Promise<ApprovalStatus> {
    const id = requireId(approvalId);
    const answer = await this.#send("GET", `/v1/approvals/${encodeURIComponent(id)}`, {
      retry: true,
      timeoutMs: this.timeout * 1000,
      approvalId: id,
      signal: signalOf(options),
    });
    return ApprovalStatus.fromWire(answer.body);
  }

  /**
   * Cancels a pending approval (only the submitting agent may). Resolves to the
   * new state; rejects with ConflictError when it was no longer pending.
   */
  async cancelApproval(approvalId: string, options: CancelApprovalOptions = {}): Promise<ApprovalStatus> {
    const id = requireId(approvalId);
    const body: Record<string, unknown> = {};
    if (options.reason !== undefined) body["reason"] = options.reason;
    const answer = await this.#send("POST", `/v1/approvals/${encodeURIComponent(id)}/cancel`, {
      body,
      retry: false,
      timeoutMs: this.timeout * 1000,
      approvalId: id,
      signal: signalOf(options),
    });
    return ApprovalStatus.fromWire(answer.body);
  }

  /**
   * Submits every request as a member of batch `batchId`, then seals the batch
   * with its member count; resolves to the batch's state, whose `approvalIds`
   * are the members' approval ids in the order given.
   *
   * A request without an `idempotencyKey` gets `${batchId}:${index}` (index from
   * `firstIndex`), so submitting the same batch again finds the members already
   * stored, and every member submission is retried like a read. A batch member
   * waits for the batch decision even when its policy alone would not require
   * approval. Members go `concurrency` at a time (default 16); every request is
   * checked first (InvalidArgumentError naming `requests[i]`). When a member is
   * refused, no further member is sent, the batch is not sealed, and its error
   * is thrown with `details.batch_id` and `details.batch_index`: ConflictError
   * (a member after the seal, another grant than the batch's), ValidationError,
   * NotFoundError, PermissionDeniedError, ApprovalExpiredError... A member that
   * already has an outcome (a resubmitted, decided batch) is not an error.
   * `seal: false` submits without sealing (chunks: pass each chunk's `firstIndex`).
   */
  async submitBatch(
    batchId: string,
    requests: readonly BatchRequest[],
    options: SubmitBatchOptions = {},
  ): Promise<BatchStatus> {
    const id = requireBatchId(batchId);
    const members: readonly BatchRequest[] = requests; // Array.isArray narrows requests to any[]
    if (!Array.isArray(requests)) throw invalid("requests must be an array of requests");
    const seal = options.seal ?? true;
    const concurrency = options.concurrency ?? BATCH_CONCURRENCY;
    const firstIndex = options.firstIndex ?? 0;
    const signal = signalOf(options);
    if (typeof seal !== "boolean") throw invalid("seal must be a boolean");
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw invalid("concurrency must be an integer >= 1");
    if (!(Number.isInteger(firstIndex) && firstIndex >= 0)) throw invalid("firstIndex must be an integer >= 0");
    if (members.length === 0 && seal) throw invalid("a batch needs at least one request");
    const total = firstIndex + members.length;
    if (total > BATCH_MAX_MEMBERS) throw invalid(`a batch has at most ${BATCH_MAX_MEMBERS} members`);

    const payloads: Record<string, unknown>[] = [];
    const seen = new Map<string, number>();
    members.forEach((r, i) => {
      if (!r || typeof r !== "object" || Array.isArray(r)) throw invalid(`requests[${i}] must be an object`);
      const unknown = Object.keys(r).filter((k) => !BATCH_REQUEST_KEYS.has(k));
      if (unknown.length > 0) {
        const hint = unknown.includes("batchId") ? " (submitBatch sets batchId)" : "";
        throw invalid(`requests[${i}] has unknown keys ${unknown.join(", ")}${hint}`);
      }
      const key = r.idempotencyKey ?? `${id}:${firstIndex + i}`;
      if (typeof key !== "string" || key === "") throw invalid(`requests[${i}]: idempotencyKey must be a non-empty string`);
      const before = seen.get(key);
      if (before !== undefined) {
        throw invalid(`requests[${before}] and requests[${i}] have the same idempotencyKey ${JSON.stringify(key)}: they would be one member`);
      }
      seen.set(key, i);
      try {
        const payload = this.#proxyPayload(r.method, r.url, { ...r, idempotencyKey: key, batchId: id });
        JSON.stringify(payload);
        payloads.push(payload);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        throw invalid(`requests[${i}]: ${message}`, e);
      }
    });

    const approvalIds: string[] = new Array<string>(payloads.length).fill("");
    const failures: { index: number; error: unknown }[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (failures.length === 0 && next < payloads.length) {
        const i = next++;
        try {
          approvalIds[i] = (await this.#submit(payloads[i], true, signal)).approvalId;
        } catch (e) {
          if (e instanceof ApprovalDeniedError || e instanceof ApprovalCancelledError || e instanceof ApprovalExecutionFailedError) {
            // Stored before and already decided: its first answer is an outcome.
            const fromDetails = e.details["approval_id"];
            approvalIds[i] = e.approvalId ?? (typeof fromDetails === "string" ? fromDetails : "");
            continue;
          }
          if (e instanceof CountersignError) {
            e.details["batch_id"] ??= id;
            e.details["batch_index"] ??= firstIndex + i;
          }
          failures.push({ index: i, error: e });
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, payloads.length) }, worker));
    if (failures.length > 0) {
      failures.sort((a, b) => a.index - b.index);
      throw failures[0].error;
    }
    signal?.throwIfAborted();
    const status = seal ? await this.sealBatch(id, total, { signal }) : await this.getBatchStatus(id, { signal });
    return status.withApprovalIds(approvalIds);
  }

  /**
   * Seals the batch with its member count (POST /v1/batches/{id}/seal) and
   * resolves to its state; it becomes `decidable` once the seal and all
   * members are stored, in any order. The same seal again changes nothing (so
   * it is retried like a read); another count is a ConflictError, an elapsed
   * window an ApprovalExpiredError.
   */
  async sealBatch(batchId: string, count: number, options: CallOptions = {}): Promise<BatchStatus> {
    const id = requireBatchId(batchId);
    if (!(Number.isInteger(count) && count >= 1 && count <= BATCH_MAX_MEMBERS)) {
      throw invalid(`count must be an integer from 1 to ${BATCH_MAX_MEMBERS}`);
    }
    const answer = await this.#send("POST", `/v1/batches/${encodeURIComponent(id)}/seal`, {
      body: { count },
      retry: true,
      timeoutMs: this.timeout * 1000,
      signal: signalOf(options),
    });
    return BatchStatus.fromWire(answer.body);
  }

  /** The batch's current state (GET /v1/batches/{id}); NotFoundError for a batch id never used. */
  async getBatchStatus(batchId: string, options: CallOptions = {}): Promise<BatchStatus> {
    const id = requireBatchId(batchId);
    const answer = await this.#send("GET", `/v1/batches/${encodeURIComponent(id)}`, {
      retry: true,
      timeoutMs: this.timeout * 1000,
      signal: signalOf(options),
    });
    return BatchStatus.fromWire(answer.body);
  }

  /**
   * Waits until the batch is terminal (every member finished and the batch
   * summary published) and resolves to its final state; read the outcome from
   * `counts`. Denied or expired members are not errors here. It polls (there is
   * no long-poll for batches): first after `pollInterval` seconds or
   * `pollIntervalMs` milliseconds (default 2 s), then half as long again each
   * time, up to 10 s apart, never past the deadline. Rejects with
   * ApprovalTimeoutError when `timeout` (seconds) or `timeoutMs` (milliseconds;
   * default 300 s; 0 looks once) passes first (`lastBatchStatus`; the batch goes
   * on), InvalidArgumentError when both units of one option are given, NotFoundError
   * for an unknown batch, or the last TransportError / ServerError when the
   * server could not be reached up to the deadline.
   */
  async awaitBatch(batchId: string, options: AwaitBatchOptions = {}): Promise<BatchStatus> {
    const id = requireBatchId(batchId);
    const timeout = durationMs(options, "timeout", 300_000, false) / 1000;
    const pollInterval = durationMs(options, "pollInterval", 2000, true) / 1000;
    const signal = signalOf(options);
    const path = `/v1/batches/${encodeURIComponent(id)}`;
    const deadline = Date.now() + timeout * 1000;
    for (let poll = 0; ; poll++) {
      try {
        const answer = await this.#send("GET", path, { retry: false, timeoutMs: this.timeout * 1000, signal });
        const last = BatchStatus.fromWire(answer.body);
        if (last.isTerminal) return last;
        if (Date.now() >= deadline) {
          throw new ApprovalTimeoutError(
            "timeout",
            `batch ${id} is still ${last.status} (${JSON.stringify(last.counts)}) after waiting ${timeout}s; ` +
              "it may still be decided: await it again later",
            {
              details: { batch_id: id, status: last.status, counts: { ...last.counts }, timeout },
              lastBatchStatus: last,
            },
          );
        }
      } catch (e) {
        if (!transient(e) || Date.now() >= deadline) throw e;
      }
      await sleep(Math.min(batchPollDelay(poll, pollInterval) * 1000, Math.max(0, deadline - Date.now())), signal);
    }
  }

  /** The JSON body of POST /v1/proxy; throws InvalidArgumentError on bad arguments (before any I/O). */
  #proxyPayload(method: unknown, url: unknown, options: ProxyRequestOptions): Record<string, unknown> {
    if (typeof method !== "string" || method === "") throw invalid("method must be a non-empty string");
    if (typeof url !== "string" || url === "") throw invalid("url must be a non-empty string");
    if (!options || typeof options.grantId !== "string" || options.grantId === "") {
      throw invalid("grantId is required");
    }
    const payload: Record<string, unknown> = {
      method: method.toUpperCase(),
      url,
      grant_id: options.grantId,
    };
    if (options.json !== undefined && options.body !== undefined) {
      throw invalid("give at most one of json and body");
    }
    if (options.json !== undefined) payload["json"] = options.json;
    if (typeof options.body === "string") {
      payload["body"] = options.body;
    } else if (options.body instanceof Uint8Array) {
      payload["body_b64"] = bytesToBase64(options.body);
    } else if (options.body instanceof ArrayBuffer) {
      payload["body_b64"] = bytesToBase64(new Uint8Array(options.body));
    } else if (options.body !== undefined) {
      throw invalid("body must be a string, a Uint8Array or an ArrayBuffer");
    }
    const optional: [keyof ProxyRequestOptions, string][] = [
      ["extraHeaders", "extra_headers"],
      ["queryParams", "query_params"],
      ["pathParams", "path_params"],
      ["reason", "reason"],
      ["context", "context"],
      ["idempotencyKey", "idempotency_key"],
      ["batchId", "batch_id"],
    ];
    for (const [from, to] of optional) {
      if (options[from] !== undefined) payload[to] = options[from];
    }
    return payload;
  }

  /** POST /v1/proxy; retried on transport failures and 5xx only when `retry` (the body has an idempotency key). */
  async #submit(
    payload: Record<string, unknown>,
    retry: boolean,
    signal: AbortSignal | undefined,
  ): Promise<PendingApproval | ApprovalResult> {
    const answer = await this.#send("POST", "/v1/proxy", {
      body: payload,
      retry,
      timeoutMs: this.timeout * 1000,
      signal,
    });
    const type = answer.body["type"];
    if (type === "result" || (type === undefined && answer.status === 200)) {
      return ApprovalResult.fromWire(answer.body);
    }
    return PendingApproval.fromWire(answer.body);
  }


  /** One API call with its retries; resolves to a 2xx answer, throws the mapped error otherwise. */
  async #send(method: "GET" | "POST", path: string, opts: SendOptions): Promise<Answer> {
    let url = this.baseUrl + path;
    if (opts.query) url += "?" + new URLSearchParams(opts.query).toString();
    const headers: Record<string, string> = {
      Accept: "application/json",
      "User-Agent": `countersign-typescript/${VERSION}`,
    };
    if (this.#authHeader === "authorization") headers["Authorization"] = `Bearer ${this.#apiKey}`;
    else headers["X-Api-Key"] = this.#apiKey;
    let payload: string | undefined;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      try {
        payload = JSON.stringify(opts.body);
      } catch (e) {
        throw invalid(`the request cannot be sent as JSON: ${(e as Error).message}`, e);
      }
    }
    for (let attempt = 0; ; attempt++) {
      const canRetry = opts.retry && attempt < this.maxRetries;
      let status: number;
      let text: string;
      let retryAfter: string | null;
      try {
        ({ status, text, retryAfter } = await this.#once(method, url, headers, payload, opts));
      } catch (e) {
        if (canRetry && e instanceof TransportError) {
          await sleep(this.#backoff(attempt, null), opts.signal);
          continue;
        }
        throw this.#scrub(e);
      }
      let body: unknown;
      try {
        body = text === "" ? {} : JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (status >= 200 && status < 300) {
        if (!body || typeof body !== "object" || Array.isArray(body)) {
          throw new CountersignError("invalid_response", `Countersign answered ${status} with a body that is not a JSON object`, {
            statusCode: status,
            approvalId: opts.approvalId ?? null,
          });
        }
        return { status, body: body as Record<string, unknown> };
      }
      const err = errorFromResponse(status, body, opts.approvalId ?? null);
      if (canRetry && RETRY_POLICY.retryStatuses.includes(status) && err.code !== "execution_failed") {
        await sleep(this.#backoff(attempt, retryAfter), opts.signal);
        continue;
      }
      throw this.#scrub(err);
    }
  }

  /**
   * One HTTP exchange; transport failures become TransportError, the caller's
   * abort rejects with its signal's reason.
   */
  async #once(
    method: string,
    url: string,
    headers: Record<string, string>,
    payload: string | undefined,
    opts: SendOptions,
  ): Promise<{ status: number; text: string; retryAfter: string | null }> {
    const { timeoutMs, signal } = opts;
    signal?.throwIfAborted();
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, timeoutMs);
    const onAbort = (): void => ctl.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const send = this.#fetch;
      const res = await send(url, { method, headers, body: payload, signal: ctl.signal, redirect: "manual" });
      const text = await res.text();
      return { status: res.status, text, retryAfter: res.headers.get("retry-after") };
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (timedOut) {
        throw new TransportError(
          "request_timeout",
          `no answer from Countersign (${method} ${this.#where(url)}) within ${timeoutMs / 1000}s`,
          { cause: e },
        );
      }
      const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
      const why =
        (typeof cause?.code === "string" && cause.code) ||
        (typeof cause?.message === "string" && cause.message) ||
        (e instanceof Error ? e.message : String(e));
      throw new TransportError(
        "transport_error",
        `could not reach Countersign (${method} ${this.#where(url)}): ${why}`,
        { cause: e },
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The URL without its query, for messages. */
  #where(url: string): string {
    const q = url.indexOf("?");
    return q < 0 ? url : url.slice(0, q);
  }

  /** Milliseconds before retry number `attempt` + 1. */
  #backoff(attempt: number, retryAfter: string | null): number {
    const after = retryAfter === null ? NaN : Number(retryAfter);
    if (Number.isFinite(after) && after >= 0) return Math.min(after, RETRY_POLICY.retryAfterMaxSeconds) * 1000;
    const full = Math.min(RETRY_POLICY.backoffMaxSeconds, this.retryBackoff * 2 ** attempt) * 1000;
    return full / 2 + Math.random() * (full / 2);
  }

  /** Removes the API key from an error's message and details, should a server echo it. */
  #scrub(e: unknown): unknown {
    const key = this.#apiKey;
    if (!(e instanceof CountersignError)) return e;
    if (e.message.includes(key)) e.message = e.message.split(key).join("[redacted]");
    const details = JSON.stringify(e.details);
    if (details.includes(key)) {
      Object.defineProperty(e, "details", { value: JSON.parse(details.split(key).join("[redacted]")) });
    }
    return e;
  }
}
