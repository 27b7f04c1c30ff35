import type { RenderJob } from '@tilefarm/contracts';

/**
 * Tiles of one request queued together, a few per render job (RENDER_BATCH_TILES): the queue's
 * per-job cost (BullMQ's job lifecycle is ~35 Redis commands, ~0.9 ms of worker Redis client CPU)
 * is paid once per batch. A batch is consecutive tiles of the request (which lists them visible
 * first, then by place), of one plane (level, z, t, format), each next to one already in it;
 * never regions nor heavy renders. The worker renders them in that order and announces each as soon as it is stored.
 */

/**
 * A request is cut into at least this many jobs when it has that many tiles: the default system
 * runs 4 renders at once (2 workers × 2), and a small request in one job would render its tiles one
 * after the other on one of them (a screen of 8 tiles: 4 jobs of 2, done as soon as today's 8 jobs).
 */
export const MIN_JOBS_PER_REQUEST = 4;

export interface Batchable {
  job: RenderJob;
  lane: string;
}

/** Groups `items` (in order) into batches of at most `max`, as described above. */
export function renderBatches<T extends Batchable>(items: T[], max: number): T[][] {
  const size = Math.min(max, Math.max(1, Math.floor(items.length / MIN_JOBS_PER_REQUEST)));
  if (size <= 1) return items.map((i) => [i]);
  const out: T[][] = [];
  let current: T[] = [];
  for (const item of items) {
    if (current.length > 0 && (current.length >= size || !fits(current, item))) {
      out.push(current);
      current = [];
    }
    current.push(item);
  }
  if (current.length > 0) out.push(current);
  return out;
}

function fits(batch: Batchable[], item: Batchable): boolean {
  const first = batch[0]!;
  const a = first.job;
  const b = item.job;
  // Heavy renders stand alone: a job's Redis work is nothing beside their cost, and a batch of them
  // would hold one of the few heavy slots four times as long.
  if (a.region || b.region || first.lane !== 'render' || item.lane !== 'render') return false;
  if (a.dataset !== b.dataset || a.version !== b.version || a.specId !== b.specId) return false;
  if (a.tile.level !== b.tile.level || a.tile.z !== b.tile.z || a.tile.t !== b.tile.t || a.tile.format !== b.tile.format) return false;
  return batch.some((m) => Math.max(Math.abs(m.job.tile.x - b.tile.x), Math.abs(m.job.tile.y - b.tile.y)) <= 1);
}

/** One job for a batch: the first tile's job, carrying the others in order. */
export function batchJob(jobs: RenderJob[]): RenderJob {
  const [first, ...rest] = jobs as [RenderJob, ...RenderJob[]];
  return rest.length === 0 ? first : { ...first, batch: rest.map((j) => ({ key: j.key, tile: j.tile })) };
}
