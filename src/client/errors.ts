// The client's errors: each has a stable `code`, and none of them stops the client by itself.

export type ClientErrorCode =
  /** A text frame that is not JSON, or a binary frame: dropped, the socket stays open. */
  | 'INVALID_FRAME'
  /** The `url` option's function threw or rejected: counted as a failed attempt, retried with backoff. */
  | 'URL_FAILED'
  /** The WebSocket constructor threw (a malformed URL, a blocked port): a failed attempt, retried. */
  | 'SOCKET_FAILED';

/** Reported on a client's `error` event; the client carries on (retries, or drops the frame). */
export class ClientError extends Error {
  readonly code: ClientErrorCode;
  /** What went wrong underneath (the exception the hook or the constructor threw), when there was one. */
  override readonly cause?: unknown;

  constructor(code: ClientErrorCode, message: string, cause?: unknown) {
    super(message);
    this.name = 'ClientError';
    this.code = code;
    if (cause !== undefined) this.cause = cause;
  }
}
