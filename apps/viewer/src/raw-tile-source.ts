import type { DType } from '@tilefarm/contracts';

/** One chunk of the raw-pixel Zarr view: one channel of one source tile. */
export interface RawChunkRef {
  level: number;
  t: number;
  c: number;
  z: number;
  y: number;
  x: number;
}

export type RawSamples = Uint8Array | Uint16Array;

const MAX_IN_FLIGHT = 8;

export function chunkKey(r: RawChunkRef): string {
  return `${r.level}/${r.t}/${r.c}/${r.z}/${r.y}/${r.x}`;
}

/**
 * Raw channel pixels of one dataset version from the API's OME-Zarr view
 * (`GET {root}/{level}/{t}/{c}/{z}/{y}/{x}`: little-endian samples, always a full tileSize² chunk,
 * no compressor). At most MAX_IN_FLIGHT
 * requests at once, newest wishes first; the most recently used chunks are kept.
 */
export class RawTileSource {
  private readonly cache = new Map<string, RawSamples>();
  private readonly inFlight = new Map<string, Promise<RawSamples | undefined>>();
  private queue: { key: string; ref: RawChunkRef; resolve: (s: RawSamples | undefined) => void }[] = [];
  private running = 0;
  /** Chunk requests sent (tests and the status strip count them). */
  fetched = 0;
  failed = 0;

  constructor(
    /** The view's root URL; a `?sig=` query on it is carried to every key. */
    private readonly root: string,
    readonly dtype: Extract<DType, 'uint8' | 'uint16'>,
    readonly tileSize: number,
    private readonly maxChunks = 1200,
  ) {}

  get(ref: RawChunkRef): RawSamples | undefined {
    const key = chunkKey(ref);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key);
      this.cache.set(key, hit);
    }
    return hit;
  }

  has(ref: RawChunkRef): boolean {
    return this.cache.has(chunkKey(ref));
  }

  get pending(): number {
    return this.queue.length + this.running;
  }

  load(ref: RawChunkRef): Promise<RawSamples | undefined> {
    const key = chunkKey(ref);
    const hit = this.cache.get(key);
    if (hit) return Promise.resolve(hit);
    let p = this.inFlight.get(key);
    if (!p) {
      p = new Promise<RawSamples | undefined>((resolve) => this.queue.push({ key, ref, resolve }));
      this.inFlight.set(key, p);
      this.pump();
    }
    return p;
  }

  /** Forget queued (not yet sent) requests that are no longer wanted. */
  retain(wanted: (ref: RawChunkRef) => boolean): void {
    const keep: typeof this.queue = [];
    for (const q of this.queue) {
      if (wanted(q.ref)) keep.push(q);
      else {
        this.inFlight.delete(q.key);
        q.resolve(undefined);
      }
    }
    this.queue = keep;
  }

  private pump(): void {
    while (this.running < MAX_IN_FLIGHT && this.queue.length > 0) {
      const job = this.queue.pop() as (typeof this.queue)[number];
      this.running++;
      void this.fetchChunk(job.key)
        .then(
          (s) => {
            if (s) this.remember(job.key, s);
            job.resolve(s);
          },
          () => {
            this.failed++;
            job.resolve(undefined);
          },
        )
        .finally(() => {
          this.inFlight.delete(job.key);
          this.running--;
          this.pump();
        });
    }
  }

  private remember(key: string, samples: RawSamples): void {
    this.cache.set(key, samples);
    while (this.cache.size > this.maxChunks) this.cache.delete(this.cache.keys().next().value as string);
  }

  private async fetchChunk(key: string): Promise<RawSamples | undefined> {
    const q = this.root.indexOf('?');
    const url = q < 0 ? `${this.root}/${key}` : `${this.root.slice(0, q)}/${key}${this.root.slice(q)}`;
    this.fetched++;
    const res = await fetch(url);
    if (!res.ok || !res.body) {
      this.failed++;
      return undefined;
    }
    const bytes = await res.arrayBuffer();
    const n = this.tileSize * this.tileSize;
    if (this.dtype === 'uint8') return bytes.byteLength === n ? new Uint8Array(bytes) : undefined;
    return bytes.byteLength === n * 2 ? new Uint16Array(bytes) : undefined;
  }
}
