import type { DatasetManifest, RenderJob, TileAddress } from '@tilefarm/contracts';

/**
 * Tiles of one request queued together, a few per render job (RENDER_BATCH_TILES): the queue's
 * per-job cost (BullMQ's job lifecycle is ~35 Redis commands, ~0.9 ms of worker Redis client CPU)
 * is paid once per batch. A batch is consecutive tiles of the request (which lists them visible
 * first, then by place), of one plane (level, z, t, format), each next to one already in it;
 * never regions nor heavy renders. For a linked Zarr whose chunks span several tiles (in the plane,
 * or through z), a batch is instead the tiles of the request that lie in one chunk (up to
 * MAX_CHUNK_BATCH), z slices included: one worker then reads and decodes the chunk. The worker
 * renders a batch's tiles in order and announces each as soon as it is stored.
 */

/**
 * A request is cut into at least this many jobs when it has that many tiles: the default system
 * runs 4 renders at once (2 workers × 2), and a small request in one job would render its tiles one
 * after the other on one of them (a screen of 8 tiles: 4 jobs of 2, done as soon as today's 8 jobs).
 */
export const MIN_JOBS_PER_REQUEST = 4;

/**
 * The most tiles of one chunk queued in one job: a 1024² chunk holds 16 tiles of 256². Why whole
 * chunks: workers keep what they decoded in their own memory, so a chunk whose tiles went to two
 * workers in jobs of 4 was read and decoded by both (bench:zarr end to end, 2 workers: 66-76 reads
 * of 1024² chunks for 32 needed per round; with a job per chunk, 32).
 */
export const MAX_CHUNK_BATCH = 16;

/** Tiles that lie in one source chunk (a linked Zarr's chunks that span several tiles, in the plane or through z). */
export interface ChunkGroup {
  /** Which chunk: its place in the chunk grid (x, y, z). */
  key: string;
  /** How many tiles (of the level, over the chunk's z slices) it spans. */
  tiles: number;
}

export interface Batchable {
  job: RenderJob;
  lane: string;
  chunk?: ChunkGroup | undefined;
}

/**
 * The chunk of a linked Zarr that a tile's top-left pixel lies in, when it spans more than one
 * tile: several tiles of a plane (1024² chunks) or one tile's place through several z slices (64³
 * chunks, which the workers decode in windows of planes). Undefined otherwise: source tiles, chunks
 * of one tile's size and one plane, manifests that do not record chunks.
 */
export function chunkGroupOf(manifest: Pick<DatasetManifest, 'tileSize' | 'source'>, tile: Pick<TileAddress, 'level' | 'x' | 'y' | 'z'>): ChunkGroup | undefined {
  const chunk = manifest.source?.chunks?.[tile.level];
  if (!chunk) return undefined;
  const size = manifest.tileSize;
  const tiles = Math.ceil(chunk.x / size) * Math.ceil(chunk.y / size) * chunk.z;
  if (tiles < 2) return undefined;
  return { key: `${Math.floor((tile.x * size) / chunk.x)},${Math.floor((tile.y * size) / chunk.y)},${Math.floor(tile.z / chunk.z)}`, tiles };
}

/**
 * Groups `items` (in order) into batches of at most `max`, as described above; tiles of one source
 * chunk go together instead (one job per chunk where the request is large enough: MAX_CHUNK_BATCH),
 * each such batch where its first tile was in the request.
 */
export function renderBatches<T extends Batchable>(items: T[], max: number): T[][] {
  const spread = Math.max(1, Math.floor(items.length / MIN_JOBS_PER_REQUEST));
  const size = Math.min(max, spread);
  if (size <= 1) return items.map((i) => [i]);
  // z is in the chunk's key: a batch may go through the z slices of one chunk (one tier's request:
  // the visible plane is asked apart from the slices prefetched around it).
  const chunkKey = (item: T) => {
    const j = item.job;
    return item.chunk && batchable(item) ? `${j.dataset}/${j.version}/${j.specId}/${j.tile.level}/${j.tile.t}/${j.tile.format}/${item.chunk.key}` : undefined;
  };
  const keys = items.map(chunkKey);
  // Only chunks this request has several tiles of are batched by chunk (a plane of 64³ chunks has
  // one tile per chunk: its tiles are batched as neighbours).
  const inChunk = new Map<string, number>();
  for (const key of keys) if (key !== undefined) inChunk.set(key, (inChunk.get(key) ?? 0) + 1);
  // Every batch takes its place in `out` at its first tile.
  const out: T[][] = [];
  let current: T[] = [];
  const byChunk = new Map<string, T[]>();
  for (const [i, item] of items.entries()) {
    const key = keys[i];
    if (key !== undefined && inChunk.get(key)! > 1) {
      const open = byChunk.get(key);
      if (open && open.length < Math.max(size, Math.min(MAX_CHUNK_BATCH, item.chunk!.tiles, spread))) open.push(item);
      else {
        const batch = [item];
        byChunk.set(key, batch);
        out.push(batch);
      }
      continue;
    }
    if (current.length > 0 && current.length < size && fits(current, item)) current.push(item);
    else {
      current = [item];
      out.push(current);
    }
  }
  return out;
}

/**
 * May share a job at all: not a region, not a heavy render. Heavy renders stand alone: a job's
 * Redis work is nothing beside their cost, and a batch of them would hold one of the few heavy
 * slots four times as long.
 */
function batchable(item: Batchable): boolean {
  return !item.job.region && item.lane === 'render';
}

function fits(batch: Batchable[], item: Batchable): boolean {
  const first = batch[0]!;
  const a = first.job;
  const b = item.job;
  if (!batchable(first) || !batchable(item)) return false;
  if (a.dataset !== b.dataset || a.version !== b.version || a.specId !== b.specId) return false;
  if (a.tile.level !== b.tile.level || a.tile.z !== b.tile.z || a.tile.t !== b.tile.t || a.tile.format !== b.tile.format) return false;
  return batch.some((m) => Math.max(Math.abs(m.job.tile.x - b.tile.x), Math.abs(m.job.tile.y - b.tile.y)) <= 1);
}

/** One job for a batch: the first tile's job, carrying the others in order. */
export function batchJob(jobs: RenderJob[]): RenderJob {
  const [first, ...rest] = jobs as [RenderJob, ...RenderJob[]];
  return rest.length === 0 ? first : { ...first, batch: rest.map((j) => ({ key: j.key, tile: j.tile })) };
}
