import { TilefarmError } from '@tilefarm/contracts';

/** Why an ingest failed; the message names the file part (page, strip, tag) that is wrong. */
export type IngestProblem =
  | 'truncated'
  | 'corrupt'
  | 'unsupported'
  | 'ome_mismatch'
  | 'too_large'
  | 'aborted'
  | 'not_found';

/**
 * An input the ingest cannot turn into a dataset. It is a `source_unreadable` TilefarmError (422)
 * so API and job boundaries map it without special cases; `problem` lets callers decide on retries
 * (none of these are worth retrying except perhaps `aborted`).
 */
export class IngestError extends TilefarmError {
  constructor(
    readonly problem: IngestProblem,
    message: string,
  ) {
    super('source_unreadable', message);
    this.name = 'IngestError';
  }
}

export function isIngestError(e: unknown): e is IngestError {
  return e instanceof IngestError;
}
