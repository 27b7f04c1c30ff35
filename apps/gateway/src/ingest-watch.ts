import { IngestJobId, IngestWatch, TilefarmError, describeZodError, type IngestProgressEvent } from '@tilefarm/contracts';
import { maySeeJob, type Principal } from '@tilefarm/tile-requests';

/** A job's current event, and the tenant it runs for. */
export interface WatchedIngest {
  event: IngestProgressEvent;
  tenant: string | undefined;
}

export function ingestRoom(jobId: string): string {
  return `ingest:${jobId}`;
}

const RANK = { running: 0, completed: 1, failed: 1 } as const;
/** How long a finished job's last event is remembered (to order it against late status reads). */
const KEEP_FINISHED_MS = 60_000;

/**
 * Watching an ingest over the socket: a watcher joins the job's room, then is sent the current
 * status, so it learns the outcome even if the job ended before it asked. Events come from
 * workers over Redis in counter order; the status read can be overtaken by an event already sent,
 * so the status is sent only if it is not behind the newest event seen for the job.
 */
export class IngestWatchers {
  private readonly latest = new Map<string, IngestProgressEvent>();

  constructor(private readonly status: (jobId: string) => Promise<WatchedIngest | undefined>) {}

  /** Every event from the bus passes here before it is sent to the room. */
  seen(event: IngestProgressEvent): void {
    this.latest.set(event.jobId, event);
    if (event.state !== 'running') setTimeout(() => this.latest.get(event.jobId) === event && this.latest.delete(event.jobId), KEEP_FINISHED_MS).unref();
  }

  /**
   * Joins the room and returns the status to send, or undefined when the watcher already has newer
   * news. Another tenant's job is answered exactly like one that does not exist, and checked before
   * joining, so not one of its events reaches the socket.
   */
  async watch(payload: unknown, room: { join(name: string): unknown; leave(name: string): unknown }, principal: Principal): Promise<IngestProgressEvent | undefined> {
    const parsed = IngestWatch.safeParse(payload);
    if (!parsed.success) throw new TilefarmError('bad_request', describeZodError(parsed.error));
    const notFound = () => new TilefarmError('not_found', `no ingest job "${parsed.data.jobId.slice(0, 100)}" (finished ones are kept for a day)`);
    const known = IngestJobId.safeParse(parsed.data.jobId);
    const before = known.success ? await this.status(parsed.data.jobId) : undefined;
    if (!before || !maySeeJob(principal, before.tenant)) throw notFound();
    await room.join(ingestRoom(parsed.data.jobId));
    const current = (await this.status(parsed.data.jobId))?.event;
    if (!current) {
      await room.leave(ingestRoom(parsed.data.jobId));
      throw notFound();
    }
    const newest = this.latest.get(current.jobId);
    if (newest && (RANK[newest.state] > RANK[current.state] || (RANK[newest.state] === RANK[current.state] && newest.done > current.done))) return undefined;
    return current;
  }
}
