import { randomBytes } from 'node:crypto';
import type { IngestTracker } from './ingest-tracking';
import type { RetiredVersions } from './retired-versions';

/** A CLI holder that stops heart-beating (killed) gives the lock up after this long. */
const CLI_LOCK_TTL_S = 120;

/**
 * The Redis side of `IngestCoordination` (@tilefarm/ingest) for ingests outside the queue (the
 * CLI): the same per-id lock and status as queued ingests (`IngestTracker`, job ids `cli-...`),
 * the same version counter, and retirement of the replaced version after `graceMs`.
 */
export class RedisIngestCoordination {
  constructor(
    private readonly tracker: IngestTracker,
    private readonly retired: RetiredVersions,
    private readonly graceMs: number,
  ) {}

  async lock(id: string, tenant: string) {
    const jobId = `cli-${id}-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    if (!(await this.tracker.begin(jobId, id, tenant, CLI_LOCK_TTL_S)).ok) return undefined;
    await this.tracker.setState(jobId, 'running');
    return {
      heartbeat: () => this.tracker.heartbeat(jobId, id, CLI_LOCK_TTL_S),
      release: async (outcome: { version: number } | { code: string; message: string }) => {
        if ('version' in outcome) await this.tracker.complete(jobId, id, outcome.version);
        else await this.tracker.fail(jobId, id, outcome.code, outcome.message);
      },
    };
  }

  reserveVersion(id: string, floor: number): Promise<number> {
    return this.tracker.reserveVersion(id, floor);
  }

  async retire(id: string, version: number): Promise<void> {
    await this.retired.retire(id, version, Date.now() + this.graceMs);
  }
}
