/**
 * countersign: the TypeScript/JavaScript SDK of Countersign, the human-in-the-loop
 * approval gateway. See README.md for the full flow.
 *
 *   import { Agent, PendingApproval } from "countersign";
 */

export {
  Agent,
  HttpMethod,
  VERSION,
  DEFAULT_BASE_URL,
  MAX_LONG_POLL_SECONDS,
  RETRY_POLICY,
  BATCH_MAX_MEMBERS,
  BATCH_CONCURRENCY,
  BATCH_POLL_MAX_SECONDS,
  longPollWait,
  batchPollDelay,
} from "./agent.js";
export type {
  AgentOptions,
  CallOptions,
  FetchLike,
  ProxyRequestOptions,
  AwaitApprovalOptions,
  CancelApprovalOptions,
  QueryValue,
  BatchRequest,
  SubmitBatchOptions,
  AwaitBatchOptions,
} from "./agent.js";
export { PendingApproval, ApprovalResult, ApprovalStatus, BatchStatus, TERMINAL_STATUSES } from "./models.js";
export type {
  ApprovalState,
  BatchState,
  BatchStatusInit,
  PendingApprovalInit,
  ApprovalResultInit,
  ApprovalStatusInit,
} from "./models.js";
export {
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
  CountersignConnectionError,
  ServerError,
  errorFromResponse,
} from "./errors.js";
export type { ErrorDetails, CountersignErrorInit } from "./errors.js";
export { SIGNATURE_HEADER, signEnvelope } from "./signing.js";
export type { SignEnvelopeOptions } from "./signing.js";
