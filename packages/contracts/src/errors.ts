/**
 * The one table from error code to HTTP status and public message.
 * Every boundary (HTTP, socket acknowledgement, job failure) answers with one of these codes;
 * the message given at the throw site names the field or value, the table's message is the fallback.
 */
export const ERROR_TABLE = {
  bad_request: { status: 400, message: 'The request is malformed.' },
  invalid_spec: { status: 400, message: 'The render spec is invalid.' },
  invalid_formula: { status: 400, message: 'The formula could not be parsed.' },
  invalid_tile: { status: 400, message: 'The tile address is invalid.' },
  unknown_format: { status: 400, message: 'Unknown image format; use jpeg, png or webp.' },
  out_of_range: { status: 400, message: 'A tile coordinate is outside the image.' },
  spec_too_expensive: { status: 400, message: 'Rendering this spec on this dataset would cost more than the configured ceiling (MAX_RENDER_COST).' },
  invalid_signature: { status: 403, message: 'The URL signature is missing or invalid.' },
  unauthorized: { status: 401, message: 'A valid access token is required.' },
  forbidden: { status: 403, message: 'This token may not access that resource.' },
  quota_exceeded: { status: 403, message: "The tenant's storage quota would be exceeded." },
  not_found: { status: 404, message: 'No such resource.' },
  conflict: { status: 409, message: 'The resource is busy with another operation; try again when it is done.' },
  dataset_not_found: { status: 404, message: 'No such dataset.' },
  spec_not_found: { status: 404, message: 'No such render spec; POST it to /v1/specs first.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  rate_limited: { status: 429, message: 'Too many requests; slow down.' },
  budget_exceeded: { status: 429, message: 'Too many tiles in flight for this viewer.' },
  queue_full: { status: 503, message: 'The render queue is full; try again shortly.' },
  unavailable: { status: 503, message: 'A backing service is unavailable; try again shortly.' },
  not_ready: { status: 503, message: 'The service is not ready.' },
  render_timeout: { status: 504, message: 'The tile did not render in time; try again.' },
  render_failed: { status: 500, message: 'The tile could not be rendered.' },
  source_unreadable: { status: 422, message: 'The source data could not be read.' },
  internal: { status: 500, message: 'Internal error.' },
  not_implemented: { status: 501, message: 'That feature of the protocol is not supported here.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export const ERROR_CODES = Object.keys(ERROR_TABLE) as ErrorCode[];

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** An expected failure with a public code. Thrown at boundaries, mapped once to status and body. */
export class TilefarmError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string) {
    super(message ?? ERROR_TABLE[code].message);
    this.name = 'TilefarmError';
    this.code = code;
  }
  get status(): number {
    return ERROR_TABLE[this.code].status;
  }
  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isTilefarmError(e: unknown): e is TilefarmError {
  return e instanceof TilefarmError;
}

const UNAVAILABLE = /enableOfflineQueue|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|MaxRetriesPerRequest|max retries|Redis not ready|socket hang up|TimeoutError/i;

/** A backing service (Redis, storage) refused, dropped or timed out the call: `unavailable` (503, retry shortly). */
export function isUnavailableError(e: unknown): boolean {
  const err = e as { name?: unknown; message?: unknown; code?: unknown } | null | undefined;
  return typeof err === 'object' && err !== null && UNAVAILABLE.test(`${String(err.name ?? '')} ${String(err.message ?? '')} ${String(err.code ?? '')}`);
}

/** A code received from another process, checked against the table. */
export function asErrorCode(code: string, fallback: ErrorCode): ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_TABLE, code) ? (code as ErrorCode) : fallback;
}
