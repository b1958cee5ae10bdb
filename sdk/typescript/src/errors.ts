/**
 * Every error the SDK throws is a {@link CountersignError}. Server errors keep the
 * server's JSON error `code` (docs/ERRORS.md), its `message`, the HTTP status as
 * `statusCode` and its `details`; errors raised locally (a timeout of the local
 * wait, a transport failure, a bad argument) have `statusCode` null.
 *
 * The subclasses are the same as the Python SDK's, so `catch` blocks port by
 * name. The transport failure is {@link TransportError} (not `ConnectionError`,
 * to shadow no global name), also exported as `CountersignConnectionError`, the
 * Python SDK's name for it.
 *
 * No error ever holds the API key: messages come from the server, or from the
 * SDK, which never formats its credentials, and are redacted once more by the
 * Agent before they are thrown.
 */

import type { ApprovalStatus, BatchStatus } from "./models.js";

/** The JSON `details` of a server error (free-form; snake_case keys as sent). */
export type ErrorDetails = Record<string, unknown>;

/** Fields shared by every error's constructor. */
export interface CountersignErrorInit {
  /** HTTP status of the response, or null when the error was raised locally. */
  statusCode?: number | null;
  /** The server's `error.details`, or SDK-supplied details. */
  details?: ErrorDetails;
  /** The approval the error is about, when known. */
  approvalId?: string | null;
  /** The underlying error (e.g. the fetch failure behind a TransportError). */
  cause?: unknown;
}

/** The base of every error the SDK throws. */
export class CountersignError extends Error {
  /** A stable code: the server's `error.code`, or an SDK code such as `transport_error`. */
  readonly code: string;
  /** HTTP status of the response, or null when raised locally. */
  readonly statusCode: number | null;
  /** Structured details (e.g. `reason` and `decided_by` of a denial). Never undefined. */
  readonly details: ErrorDetails;
  /** The approval this error is about, when known. */
  readonly approvalId: string | null;

  constructor(code: string, message: string, init: CountersignErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    // Keep instanceof and the class name right whatever the compile target.
    Object.setPrototypeOf(this, new.target.prototype);
    Object.defineProperty(this, "name", {
      value: new.target.name,
      enumerable: false,
      configurable: true,
      writable: true,
    });
    this.code = code;
    this.statusCode = init.statusCode ?? null;
    this.details = init.details ?? {};
    this.approvalId = init.approvalId ?? null;
  }

  /** A plain object for logs (`JSON.stringify(err)`). */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      statusCode: this.statusCode,
      details: this.details,
      approvalId: this.approvalId,
    };
  }
}

/** The approvers denied the call (409 `denied`). `details.reason` is the approver's reason. */
export class ApprovalDeniedError extends CountersignError {
  /** The approver's reason for the denial (`details.reason`), or null. */
  get reason(): string | null {
    return detailString(this.details, "reason");
  }

  /** Who denied it, as the server reports it (`details.decided_by`), or null. */
  get decidedBy(): string | null {
    return detailString(this.details, "decided_by");
  }
}

function detailString(details: ErrorDetails, key: string): string | null {
  const v = details[key];
  return typeof v === "string" ? v : null;
}

/** The approval window elapsed before a decision (410 `expired`). */
export class ApprovalExpiredError extends CountersignError {}

/**
 * The local wait (awaitApproval's or awaitBatch's `timeout`) gave up. Nothing
 * happened on the server: the approval may still be pending, and a later
 * awaitApproval can succeed. From awaitBatch, `lastBatchStatus` is the batch's
 * last state and `details` holds `batch_id`, `status` and `counts`.
 */
export class ApprovalTimeoutError extends CountersignError {
  /** The last status the server reported during the wait, or null. */
  readonly lastStatus: ApprovalStatus | null;
  /** awaitBatch: the batch's last state seen during the wait, or null. */
  readonly lastBatchStatus: BatchStatus | null;

  constructor(
    code: string,
    message: string,
    init: CountersignErrorInit & { lastStatus?: ApprovalStatus | null; lastBatchStatus?: BatchStatus | null } = {},
  ) {
    super(code, message, init);
    this.lastStatus = init.lastStatus ?? null;
    this.lastBatchStatus = init.lastBatchStatus ?? null;
  }
}

/**
 * The call was approved but its execution failed (502 `execution_failed`);
 * `details.error_code` and `details.error_message` say why (e.g. `outcome_unknown`).
 */
export class ApprovalExecutionFailedError extends CountersignError {
  /** Why the execution failed (`details.error_code`, e.g. `outcome_unknown`), or null. */
  get errorCode(): string | null {
    return detailString(this.details, "error_code");
  }

  /** The execution's error message (`details.error_message`), or null. */
  get errorMessage(): string | null {
    return detailString(this.details, "error_message");
  }
}

/** The requester cancelled the approval (409 `cancelled`). */
export class ApprovalCancelledError extends CountersignError {}

/** Missing, unknown or revoked API key (401). */
export class AuthenticationError extends CountersignError {}

/** Not found (404), e.g. `not_found` or `unknown_grant`. */
export class NotFoundError extends CountersignError {}

/** The request was refused as invalid (400, 413, 422), e.g. `forbidden_header`, `too_large`. */
export class ValidationError extends CountersignError {}

/** Not allowed (403), e.g. `forbidden`, `host_not_allowed`. */
export class PermissionDeniedError extends CountersignError {}

/**
 * Conflict (409) other than a denial or cancellation, e.g. `not_pending`, or
 * `conflict`: an idempotency key reused for another request, a batch member
 * after the seal or with another grant than the batch's, a seal with another count.
 */
export class ConflictError extends CountersignError {}

/**
 * No usable HTTP response: connection refused or reset, DNS failure, or the
 * request's own timeout. `code` is `transport_error` or `request_timeout`; `cause`
 * holds the underlying error. (The Python SDK's ConnectionError counterpart.)
 */
export class TransportError extends CountersignError {}

/** The Python SDK's name for {@link TransportError}: the same class. */
export const CountersignConnectionError = TransportError;
/** The Python SDK's name for {@link TransportError}. */
export type CountersignConnectionError = TransportError;

/** The server failed (5xx other than a reported execution failure). */
export class ServerError extends CountersignError {}

/**
 * An argument the SDK refused locally, before any request was sent (a missing
 * grantId, both json and body, a negative timeout, no API key...): a bug in the
 * calling code, never an answer of the server. `code` is `invalid_argument`,
 * `statusCode` is null. A request the server refused (HTTP 400, 413, 422) is a
 * {@link ValidationError} instead.
 */
export class InvalidArgumentError extends CountersignError {}

/** The shape of an error body: {"error": {"code", "message", "details"?}}. */
interface WireError {
  code?: unknown;
  message?: unknown;
  details?: unknown;
}

/**
 * Maps an HTTP error response to its error class.
 * `body` is the parsed JSON body (or undefined when it was not JSON).
 */
export function errorFromResponse(
  statusCode: number,
  body: unknown,
  approvalId: string | null = null,
): CountersignError {
  const err: WireError =
    body && typeof body === "object" && "error" in body && typeof body.error === "object" && body.error
      ? body.error
      : {};
  const code = typeof err.code === "string" && err.code ? err.code : `http_${statusCode}`;
  const message =
    typeof err.message === "string" && err.message
      ? err.message
      : `unexpected HTTP ${statusCode} response from Countersign`;
  const details =
    err.details && typeof err.details === "object" && !Array.isArray(err.details)
      ? (err.details as ErrorDetails)
      : {};
  const init: CountersignErrorInit = { statusCode, details, approvalId };

  if (code === "denied") return new ApprovalDeniedError(code, message, init);
  if (code === "cancelled") return new ApprovalCancelledError(code, message, init);
  if (code === "execution_failed") return new ApprovalExecutionFailedError(code, message, init);
  if (statusCode === 410) return new ApprovalExpiredError(code, message, init);
  if (statusCode === 401) return new AuthenticationError(code, message, init);
  if (statusCode === 403) return new PermissionDeniedError(code, message, init);
  if (statusCode === 404) return new NotFoundError(code, message, init);
  if (statusCode === 409) return new ConflictError(code, message, init);
  if (statusCode === 400 || statusCode === 413 || statusCode === 422) {
    return new ValidationError(code, message, init);
  }
  if (statusCode >= 500) return new ServerError(code, message, init);
  return new CountersignError(code, message, init);
}
