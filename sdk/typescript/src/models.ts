/**
 * What the API answers, as classes with camelCase fields and parsed Dates.
 * Each class has a static `fromWire()` that reads the snake_case JSON of
 * api/openapi.json; constructors take the camelCase fields, so tests and mocks
 * can build them directly. All are plain data: `instanceof` tells a pending
 * approval from a result.
 */

import { CountersignError } from "./errors.js";

/** Statuses an approval can be in. */
export type ApprovalState =
  | "pending"
  | "approved"
  | "executing"
  | "executed"
  | "failed"
  | "denied"
  | "expired"
  | "cancelled";

/** The statuses after which nothing changes. */
export const TERMINAL_STATUSES: readonly string[] = Object.freeze([
  "executed",
  "failed",
  "denied",
  "expired",
  "cancelled",
]);

type Wire = Record<string, unknown>;

function str(o: Wire, key: string): string {
  const v = o[key];
  if (typeof v !== "string") throw badField(key, "a string");
  return v;
}

function optStr(o: Wire, key: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw badField(key, "a string");
  return v;
}

function date(o: Wire, key: string): Date {
  const d = optDate(o, key);
  if (d === null) throw badField(key, "a timestamp");
  return d;
}

function optDate(o: Wire, key: string): Date | null {
  const v = optStr(o, key);
  if (v === null) return null;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw badField(key, "an RFC 3339 timestamp");
  return d;
}

function int(o: Wire, key: string, fallback?: number): number {
  const v = o[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v)) throw badField(key, "a number");
  return v;
}

function bool(o: Wire, key: string, fallback?: boolean): boolean {
  const v = o[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "boolean") throw badField(key, "a boolean");
  return v;
}

function badField(key: string, what: string): CountersignError {
  return new CountersignError("invalid_response", `Countersign answered without ${what} in "${key}"`);
}

/** Decodes standard base64 into bytes (no dependency on Buffer). */
export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Encodes bytes as standard base64 (no dependency on Buffer). */
export function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) {
    bin += String.fromCharCode(...bytes.subarray(i, i + step));
  }
  return btoa(bin);
}

/** Fields of a {@link PendingApproval}. */
export interface PendingApprovalInit {
  approvalId: string;
  approvalUrl: string;
  expiresAt: Date;
  status: string;
}

/**
 * The call waits for approvers (HTTP 202 from proxyRequest). Hand `approvalUrl`
 * to the approvers (they sign in there and decide), then call awaitApproval.
 */
export class PendingApproval {
  readonly approvalId: string;
  /**
   * The page to hand to people: status for anyone, the decision form for an
   * approver who signs in. Nothing the agent holds lets it vote (unless the
   * policy opted into semi-public links).
   */
  readonly approvalUrl: string;
  /** When the approval window closes (the approval then expires). */
  readonly expiresAt: Date;
  /** `pending`, or `approved`/`executing` when no approval was needed but the call was still running. */
  readonly status: string;

  constructor(init: PendingApprovalInit) {
    this.approvalId = init.approvalId;
    this.approvalUrl = init.approvalUrl;
    this.expiresAt = init.expiresAt;
    this.status = init.status;
  }

  /** Reads the API's snake_case JSON. */
  static fromWire(o: Wire): PendingApproval {
    return new PendingApproval({
      approvalId: str(o, "approval_id"),
      approvalUrl: str(o, "approval_url"),
      expiresAt: date(o, "expires_at"),
      status: optStr(o, "status") ?? "pending",
    });
  }
}

/** Fields of an {@link ApprovalResult}. */
export interface ApprovalResultInit {
  approvalId: string;
  statusCode: number;
  headers: Record<string, string>;
  bodyB64: string;
  bodyTruncated: boolean;
  executedAt?: Date | null;
  status?: string;
}

/**
 * The provider's response to the executed call (any HTTP status: a 4xx from the
 * provider is still an executed call). The body is kept as base64; read it with
 * bodyBytes(), bodyText() or bodyJson().
 */
export class ApprovalResult {
  readonly approvalId: string;
  /** Always `executed`. */
  readonly status: string;
  /** The provider's HTTP status. */
  readonly statusCode: number;
  /** The provider's response headers, names lower-cased. */
  readonly headers: Record<string, string>;
  /** The provider's body, base64. */
  readonly bodyB64: string;
  /** True when the body was cut at the server's size cap. */
  readonly bodyTruncated: boolean;
  /** When the call was executed, if the server said. */
  readonly executedAt: Date | null;

  constructor(init: ApprovalResultInit) {
    this.approvalId = init.approvalId;
    this.status = init.status ?? "executed";
    this.statusCode = init.statusCode;
    this.headers = init.headers;
    this.bodyB64 = init.bodyB64;
    this.bodyTruncated = init.bodyTruncated;
    this.executedAt = init.executedAt ?? null;
  }

  /** Reads the API's snake_case JSON. */
  static fromWire(o: Wire): ApprovalResult {
    const h = o["headers"];
    const headers: Record<string, string> = {};
    if (h && typeof h === "object" && !Array.isArray(h)) {
      for (const [k, v] of Object.entries(h)) headers[k.toLowerCase()] = String(v);
    }
    return new ApprovalResult({
      approvalId: str(o, "approval_id"),
      status: optStr(o, "status") ?? "executed",
      statusCode: int(o, "status_code"),
      headers,
      bodyB64: optStr(o, "body_b64") ?? "",
      bodyTruncated: bool(o, "body_truncated", false),
      executedAt: optDate(o, "executed_at"),
    });
  }

  /** The body's bytes. */
  bodyBytes(): Uint8Array {
    return base64ToBytes(this.bodyB64);
  }

  /** The body decoded as UTF-8 (invalid sequences become U+FFFD). */
  bodyText(): string {
    return new TextDecoder("utf-8").decode(this.bodyBytes());
  }

  /**
   * The body parsed as JSON. Throws a CountersignError with code `body_truncated`
   * when the body was truncated, and a SyntaxError when it is not JSON.
   */
  bodyJson<T = unknown>(): T {
    if (this.bodyTruncated) {
      throw new CountersignError(
        "body_truncated",
        "the provider's body was truncated by Countersign's size cap; read bodyBytes() instead",
        { approvalId: this.approvalId },
      );
    }
    return JSON.parse(this.bodyText()) as T;
  }
}

/** Fields of an {@link ApprovalStatus}. */
export interface ApprovalStatusInit {
  approvalId: string;
  status: string;
  isTerminal: boolean;
  createdAt: Date | null;
  expiresAt: Date;
  decidedAt: Date | null;
  decisionReason: string | null;
  executedAt: Date | null;
  hasResult: boolean;
  approvalsReceived: number;
  approvalsRequired: number;
  grantId: string | null;
  method: string | null;
  url: string | null;
  errorCode: string | null;
  batchId: string | null;
}

/** An approval's state (getApprovalStatus, cancelApproval). */
export class ApprovalStatus {
  readonly approvalId: string;
  /** One of {@link ApprovalState}. */
  readonly status: string;
  /** True once the status is executed, failed, denied, expired or cancelled. */
  readonly isTerminal: boolean;
  readonly createdAt: Date | null;
  readonly expiresAt: Date;
  readonly decidedAt: Date | null;
  /** The deciding approver's reason (denials and approvals) or the cancel reason. */
  readonly decisionReason: string | null;
  readonly executedAt: Date | null;
  /** True when a provider response is stored (awaitApproval returns it). */
  readonly hasResult: boolean;
  readonly approvalsReceived: number;
  readonly approvalsRequired: number;
  readonly grantId: string | null;
  readonly method: string | null;
  readonly url: string | null;
  /** Why a failed execution failed (e.g. `outcome_unknown`). */
  readonly errorCode: string | null;
  readonly batchId: string | null;

  constructor(init: ApprovalStatusInit) {
    this.approvalId = init.approvalId;
    this.status = init.status;
    this.isTerminal = init.isTerminal;
    this.createdAt = init.createdAt;
    this.expiresAt = init.expiresAt;
    this.decidedAt = init.decidedAt;
    this.decisionReason = init.decisionReason;
    this.executedAt = init.executedAt;
    this.hasResult = init.hasResult;
    this.approvalsReceived = init.approvalsReceived;
    this.approvalsRequired = init.approvalsRequired;
    this.grantId = init.grantId;
    this.method = init.method;
    this.url = init.url;
    this.errorCode = init.errorCode;
    this.batchId = init.batchId;
  }

  /** Reads the API's snake_case JSON. */
  static fromWire(o: Wire): ApprovalStatus {
    const status = str(o, "status");
    return new ApprovalStatus({
      approvalId: str(o, "approval_id"),
      status,
      isTerminal: bool(o, "is_terminal", TERMINAL_STATUSES.includes(status)),
      createdAt: optDate(o, "created_at"),
      expiresAt: date(o, "expires_at"),
      decidedAt: optDate(o, "decided_at"),
      decisionReason: optStr(o, "decision_reason"),
      executedAt: optDate(o, "executed_at"),
      hasResult: bool(o, "has_result", false),
      approvalsReceived: int(o, "approvals_received", 0),
      approvalsRequired: int(o, "approvals_required", 0),
      grantId: optStr(o, "grant_id"),
      method: optStr(o, "method"),
      url: optStr(o, "url"),
      errorCode: optStr(o, "error_code"),
      batchId: optStr(o, "batch_id"),
    });
  }
}

/** Statuses a batch can be in. */
export type BatchState = "open" | "decidable" | "decided" | "expired";

function optInt(o: Wire, key: string): number | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isFinite(v)) throw badField(key, "a number");
  return v;
}

/** Fields of a {@link BatchStatus}. */
export interface BatchStatusInit {
  batchId: string;
  batchUid: string;
  status: string;
  expected: number | null;
  members: number;
  counts: Record<string, number>;
  digest: string | null;
  isTerminal: boolean;
  createdAt: Date | null;
  expiresAt: Date | null;
  decidedAt: Date | null;
  decidedBy: string | null;
  decision: string | null;
  finishedAt: Date | null;
  approvalsReceived: number;
  approvalsRequired: number;
  grantId: string | null;
  policyId: string | null;
  agent: string | null;
  amountField: string | null;
  approvalIds?: readonly string[];
}

/**
 * A batch's state (getBatchStatus; also what sealBatch, submitBatch and
 * awaitBatch resolve to).
 */
export class BatchStatus {
  /** Your batch id. */
  readonly batchId: string;
  /** The server's id of the batch (what its page's link signs). */
  readonly batchUid: string;
  /**
   * One of {@link BatchState}: `open` (waiting for the seal or members),
   * `decidable` (sealed and complete: approvers decide on the batch page),
   * `decided`, `expired` (the window elapsed first).
   */
  readonly status: string;
  /** The sealed member count; null until sealed. */
  readonly expected: number | null;
  /** How many members are stored. */
  readonly members: number;
  /** Members per approval status, e.g. `{ executed: 98, denied: 2 }`. */
  readonly counts: Readonly<Record<string, number>>;
  /** The batch digest shown on the batch page (hex); null until decidable. */
  readonly digest: string | null;
  /** True once every member is terminal and the batch summary was published. */
  readonly isTerminal: boolean;
  readonly createdAt: Date | null;
  /** When the batch's approval window closes; null until the first member fixes it. */
  readonly expiresAt: Date | null;
  readonly decidedAt: Date | null;
  readonly decidedBy: string | null;
  /** `approved` or `denied`, once decided. */
  readonly decision: string | null;
  /** When the batch became terminal. */
  readonly finishedAt: Date | null;
  readonly approvalsReceived: number;
  readonly approvalsRequired: number;
  /** The grant (and policy) the first member fixed; every member must use it. */
  readonly grantId: string | null;
  readonly policyId: string | null;
  /** The agent's name. */
  readonly agent: string | null;
  /** The policy's amount field, summed on the batch page. */
  readonly amountField: string | null;
  /**
   * Only on what submitBatch resolves to: the approval id of each request it
   * submitted, in the order given (for awaitApproval / getApprovalStatus). Empty elsewhere.
   */
  readonly approvalIds: readonly string[];

  constructor(init: BatchStatusInit) {
    this.batchId = init.batchId;
    this.batchUid = init.batchUid;
    this.status = init.status;
    this.expected = init.expected;
    this.members = init.members;
    this.counts = Object.freeze({ ...init.counts });
    this.digest = init.digest;
    this.isTerminal = init.isTerminal;
    this.createdAt = init.createdAt;
    this.expiresAt = init.expiresAt;
    this.decidedAt = init.decidedAt;
    this.decidedBy = init.decidedBy;
    this.decision = init.decision;
    this.finishedAt = init.finishedAt;
    this.approvalsReceived = init.approvalsReceived;
    this.approvalsRequired = init.approvalsRequired;
    this.grantId = init.grantId;
    this.policyId = init.policyId;
    this.agent = init.agent;
    this.amountField = init.amountField;
    this.approvalIds = Object.freeze([...(init.approvalIds ?? [])]);
  }

  /** True once the batch has its seal (`expected` is set). */
  get sealed(): boolean {
    return this.expected !== null;
  }

  /** How many members are in `status` (0 when none). */
  count(status: string): number {
    return this.counts[status] ?? 0;
  }

  /** A copy with `approvalIds` set. */
  withApprovalIds(approvalIds: readonly string[]): BatchStatus {
    return new BatchStatus({ ...this, counts: { ...this.counts }, approvalIds });
  }

  /** Reads the API's snake_case JSON. */
  static fromWire(o: Wire): BatchStatus {
    const c = o["counts"] ?? {};
    if (!c || typeof c !== "object" || Array.isArray(c)) throw badField("counts", "an object");
    const counts: Record<string, number> = {};
    for (const [k, v] of Object.entries(c)) {
      if (typeof v !== "number") throw badField(`counts.${k}`, "a number");
      counts[k] = v;
    }
    const finishedAt = optDate(o, "finished_at");
    return new BatchStatus({
      batchId: str(o, "batch_id"),
      batchUid: optStr(o, "batch_uid") ?? "",
      status: str(o, "status"),
      expected: optInt(o, "expected"),
      members: int(o, "members", 0),
      counts,
      digest: optStr(o, "digest"),
      isTerminal: bool(o, "is_terminal", finishedAt !== null),
      createdAt: optDate(o, "created_at"),
      expiresAt: optDate(o, "expires_at"),
      decidedAt: optDate(o, "decided_at"),
      decidedBy: optStr(o, "decided_by"),
      decision: optStr(o, "decision"),
      finishedAt,
      approvalsReceived: int(o, "approvals_received", 0),
      approvalsRequired: int(o, "approvals_required", 0),
      grantId: optStr(o, "grant_id"),
      policyId: optStr(o, "policy_id"),
      agent: optStr(o, "agent"),
      amountField: optStr(o, "amount_field"),
    });
  }
}
