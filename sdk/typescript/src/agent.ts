/**
 * The Agent: the client an agent or backend service uses to submit calls through
 * Countersign and wait for their outcome, over the HTTP API of api/openapi.json.
 *
 * - Transport: the platform's fetch (Node >= 20); no dependencies.
 * - Auth: the API key as `Authorization: Bearer <key>` (or `X-Api-Key`). The key
 *   lives in a private field: it is never in `inspect()` or `JSON.stringify()`
 *   output, and any error message that would contain it is redacted.
 * - Retries: transport failures and 5xx answers are retried with bounded
 *   exponential backoff (and jitter) on GETs, and on POST /v1/proxy only when the
 *   call carries an idempotencyKey (the server then returns the first answer).
 *   A 502 `execution_failed` is an outcome, never retried. Cancel is not retried.
 * - Waiting: awaitApproval long-polls GET /v1/approvals/{id}/result?wait=N with
 *   N <= 60 taken from the time left, so it never waits much past its timeout.
 */

import {
  ApprovalTimeoutError,
  CountersignError,
  TransportError,
  ValidationError,
  errorFromResponse,
} from "./errors.js";
import { ApprovalResult, ApprovalStatus, PendingApproval, bytesToBase64 } from "./models.js";

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

/** Options of `new Agent(...)`. */
export interface AgentOptions {
  /** The agent's API key (`countersign key create`). Defaults to env COUNTERSIGN_API_KEY. */
  apiKey?: string;
  /** Countersign's base URL. Defaults to env COUNTERSIGN_URL, then http://127.0.0.1:8080. */
  baseUrl?: string;
  /** Seconds one HTTP request may take (default 30). A long-poll adds its wait to this. */
  timeout?: number;
  /** Retries of a retriable failure (default 3; 0 disables retries). */
  maxRetries?: number;
  /** First backoff delay in seconds (default 0.5); doubles per retry, at most 8 s. */
  retryBackoff?: number;
  /** Which header carries the key: `authorization` (Bearer, default) or `x-api-key`. */
  authHeader?: "authorization" | "x-api-key";
}

/** A query parameter's value; arrays repeat the parameter. */
export type QueryValue = string | number | boolean;

/** Options of {@link Agent.proxyRequest}. */
export interface ProxyRequestOptions {
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

/** Options of {@link Agent.awaitApproval}. */
export interface AwaitApprovalOptions {
  /** Seconds to wait in all (default 300). 0 checks once. */
  timeout?: number;
}

/** Options of {@link Agent.cancelApproval}. */
export interface CancelApprovalOptions {
  /** Why the requester cancels (recorded in the audit log). */
  reason?: string;
}

/** Longest wait one long-poll may ask for (the API's maximum). */
export const MAX_LONG_POLL_SECONDS = 60;
const MAX_BACKOFF_MS = 8000;
const MAX_RETRY_AFTER_MS = 30000;

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
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function envVar(name: string): string | undefined {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = proc?.env?.[name];
  return v === undefined || v === "" ? undefined : v;
}

function invalid(message: string): ValidationError {
  return new ValidationError("invalid_request", message);
}

function requireId(approvalId: unknown): string {
  if (typeof approvalId !== "string" || approvalId === "") {
    throw invalid("approvalId must be a non-empty string");
  }
  return approvalId;
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
    const maxRetries = options.maxRetries ?? 3;
    if (!(Number.isInteger(maxRetries) && maxRetries >= 0 && maxRetries <= 10)) {
      throw invalid("maxRetries must be an integer from 0 to 10");
    }
    const retryBackoff = options.retryBackoff ?? 0.5;
    if (!(typeof retryBackoff === "number" && retryBackoff >= 0 && Number.isFinite(retryBackoff))) {
      throw invalid("retryBackoff must be a non-negative number of seconds");
    }
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
    const answer = await this.#send("POST", "/v1/proxy", {
      body: payload,
      retry: options.idempotencyKey !== undefined,
      timeoutMs: this.timeout * 1000,
    });
    const type = answer.body["type"];
    if (type === "result" || (type === undefined && answer.status === 200)) {
      return ApprovalResult.fromWire(answer.body);
    }
    return PendingApproval.fromWire(answer.body);
  }

  /**
   * Waits up to `timeout` seconds (default 300) for the approval's outcome.
   * Resolves to the provider's response when the call was executed; rejects with
   * ApprovalDeniedError, ApprovalExpiredError, ApprovalCancelledError,
   * ApprovalExecutionFailedError, or ApprovalTimeoutError when the local wait
   * gave up (the approval may still be pending: awaiting again is fine).
   */
  async awaitApproval(approvalId: string, options: AwaitApprovalOptions = {}): Promise<ApprovalResult> {
    const id = requireId(approvalId);
    const timeout = options.timeout ?? 300;
    if (!(typeof timeout === "number" && timeout >= 0 && Number.isFinite(timeout))) {
      throw invalid("timeout must be a non-negative number of seconds");
    }
    const start = Date.now();
    const deadline = start + timeout * 1000;
    let lastStatus: ApprovalStatus | null = null;
    for (let first = true; ; first = false) {
      let remaining = deadline - Date.now();
      const wait = longPollWait(remaining);
      if (wait === 0 && remaining > 0 && !first) {
        // Less than a second left: sleep it off, then look one last time.
        await sleep(remaining);
        remaining = 0;
      }
      const asked = Date.now();
      const answer = await this.#send("GET", `/v1/approvals/${encodeURIComponent(id)}/result`, {
        query: { wait: String(wait) },
        retry: true,
        timeoutMs: (wait + this.timeout) * 1000,
        approvalId: id,
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
      if (now - asked < wait * 1000 - 500) await sleep(Math.min(1000, deadline - now));
    }
  }

  /** The approval's current state. */
  async getApprovalStatus(approvalId: string): Promise<ApprovalStatus> {
    const id = requireId(approvalId);
    const answer = await this.#send("GET", `/v1/approvals/${encodeURIComponent(id)}`, {
      retry: true,
      timeoutMs: this.timeout * 1000,
      approvalId: id,
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
    });
    return ApprovalStatus.fromWire(answer.body);
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
        throw new ValidationError("invalid_request", `the request cannot be sent as JSON: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    for (let attempt = 0; ; attempt++) {
      const canRetry = opts.retry && attempt < this.maxRetries;
      let status: number;
      let text: string;
      let retryAfter: string | null;
      try {
        ({ status, text, retryAfter } = await this.#once(method, url, headers, payload, opts.timeoutMs));
      } catch (e) {
        if (canRetry && e instanceof TransportError) {
          await sleep(this.#backoff(attempt, null));
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
      if (canRetry && status >= 500 && err.code !== "execution_failed") {
        await sleep(this.#backoff(attempt, retryAfter));
        continue;
      }
      throw this.#scrub(err);
    }
  }

  /** One HTTP exchange; transport failures become TransportError. */
  async #once(
    method: string,
    url: string,
    headers: Record<string, string>,
    payload: string | undefined,
    timeoutMs: number,
  ): Promise<{ status: number; text: string; retryAfter: string | null }> {
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, timeoutMs);
    try {
      const res = await fetch(url, { method, headers, body: payload, signal: ctl.signal, redirect: "manual" });
      const text = await res.text();
      return { status: res.status, text, retryAfter: res.headers.get("retry-after") };
    } catch (e) {
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
    if (Number.isFinite(after) && after >= 0) return Math.min(after * 1000, MAX_RETRY_AFTER_MS);
    const full = Math.min(MAX_BACKOFF_MS, this.retryBackoff * 1000 * 2 ** attempt);
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
