/**
 * Memory for source tiles read from storage, reused instead of allocated per read.
 *
 * Why: a raw-v1 256² uint16 source tile is 131,088 bytes, just over glibc's mmap threshold, so
 * every fresh buffer was a new mapping whose pages fault in as the read fills them (and are unmapped
 * again when the buffer is collected). Measured on the project VM: a 131 KB synchronous read into a
 * fresh buffer costs 90-470 us of CPU, into a reused one 17-28 us; a cold 3-channel tile reads three.
 *
 * Ownership: a buffer from `allocate` belongs to whoever keeps the decoded tile (the worker's source
 * cache, which views the samples in place). When it lets go (`retire`), renders that started
 * earlier may still be reading the samples, so the buffer is reused only once every render that
 * had `enter`ed by then has `leave`n; renders that start later cannot reach it (it is no longer in
 * the cache). A buffer that is never retired is simply collected. Not thread-safe (one event loop).
 */
export interface SourceBufferPoolOptions {
  /** Idle buffers kept for reuse, in bytes (more are left to the garbage collector). */
  maxFreeBytes: number;
  /**
   * Retired buffers that may wait for older renders (default 1024). Past it the oldest is given up
   * to the collector instead (never reused): a render that never finished cannot hold memory forever.
   */
  maxWaiting?: number;
}

export interface SourceBufferPoolStats {
  /** Buffers handed out that were reused. */
  reused: number;
  /** Buffers handed out that were allocated. */
  allocated: number;
  /** Retired buffers waiting for older renders to finish. */
  waiting: number;
  /** Renders that have entered and not left. */
  renders: number;
  /** Idle buffers, and their bytes. */
  free: number;
  freeBytes: number;
}

/**
 * Idle memory a worker's pool keeps beside a source cache of `cacheBytes` (its read-ahead bytes
 * included: their memory comes and goes through the pool too): a quarter of that, at least 4 MB.
 * Why that much: when the cache holds 1024² Zarr chunks, every decode needs a 2 MB buffer and its
 * read a 1.5 MB one, and the renders in flight let go of several chunks at once; a
 * fixed 4 MB kept two of them and left the rest to the collector, so most decodes landed in fresh
 * memory (bench:zarr, 1024² chunks: 1.5-1.8 ms of CPU per tile with 8-16 MB idle, 2.2-2.4 with 4 MB;
 * linked ÷ copied 0.83-0.98 against 0.52-0.63). Idle memory is bounded all the same.
 */
export function poolIdleBytesFor(cacheBytes: number): number {
  return Math.max(4 * 1024 * 1024, Math.floor(cacheBytes / 4));
}

/**
 * The memory behind a buffer of `size` bytes from a pool: sizes a little apart share one class (at
 * or above 64 KB, rounded up to 4 KB after 256 bytes of slack; smaller sizes are their own). Why: a
 * pool matches the memory it keeps idle to what is asked for, and a worker asks for sizes that
 * differ by a few bytes: a raw-v1 256² uint16 source tile is 131,088 bytes (its header, then the
 * samples), a plane read back from another worker's tile stack or a 256² uint16 Zarr chunk 131,072.
 * Each size apart, memory one dataset's entries gave back was of no use to another's reads
 * (bench:zarr end to end: a copied source's round after a linked 64³ one read 418-512 of its 512
 * tiles into fresh memory; with the classes 196-404, the rest being the 2 MB stacks' memory). At
 * most 4,352 bytes more per buffer (3 % of a 128 KB one), which a cache counting its values' bytes
 * does not see.
 */
export function poolCapacityFor(size: number): number {
  if (size < 64 * 1024) return size;
  return Math.ceil((size + 256) / 4096) * 4096;
}

/** Allocations after which a size not asked for since counts as no longer in use. */
const STALE_AFTER = 1024;

export class SourceBufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private freeBytes = 0;
  /**
   * Buffers handed out and not yet given back: only these are taken back (other values share the
   * cache), and each once (a buffer given back twice would later be handed to two owners).
   */
  private readonly lent = new WeakSet<ArrayBufferLike>();
  /** Retired buffers in retirement order, each with the last render ticket issued at that moment. */
  private readonly waiting: { buffer: ArrayBuffer; lastTicket: number }[] = [];
  private waitingHead = 0;
  /** Tickets of renders in flight, in ascending order (Set keeps insertion order). */
  private readonly active = new Set<number>();
  private lastTicket = 0;
  private reused = 0;
  private allocated = 0;
  /** Allocations so far, and the count at each size's latest. */
  private handedOut = 0;
  private readonly lastAsked = new Map<number, number>();

  constructor(private readonly options: SourceBufferPoolOptions) {}

  /**
   * A buffer of exactly `size` bytes (contents undefined), at offset 0 of its own ArrayBuffer, which
   * holds poolCapacityFor(size) bytes.
   */
  allocate(size: number): Buffer {
    const capacity = poolCapacityFor(size);
    this.lastAsked.set(capacity, ++this.handedOut);
    const list = this.free.get(capacity);
    const reuse = list?.pop();
    if (reuse) {
      this.freeBytes -= capacity;
      this.reused++;
      this.lent.add(reuse);
      return Buffer.from(reuse, 0, size);
    }
    this.allocated++;
    // Not zero-filled (contents are undefined either way): zeroing is a pass over memory every reader overwrites.
    const buffer = Buffer.allocUnsafeSlow(capacity).buffer as ArrayBuffer;
    this.lent.add(buffer);
    return Buffer.from(buffer, 0, size);
  }

  /** A render starts: buffers retired from now on wait until it has left. */
  enter(): number {
    const ticket = ++this.lastTicket;
    this.active.add(ticket);
    return ticket;
  }

  /** A render is done with every source tile it read (its promise has settled). */
  leave(ticket: number): void {
    if (!this.active.delete(ticket)) return;
    this.release();
  }

  /** The latest render ticket issued: a clock for the source cache's `readClock`. */
  latestTicket(): number {
    return this.lastTicket;
  }

  /**
   * The owner lets go of the memory behind a tile (ignored unless it came from this pool).
   * `lastReadAt`: `latestTicket()` when the memory was last handed to a reader (by default now).
   * Only renders with tickets up to it can hold it, so memory no render in flight has read (a
   * source-cache entry last read by renders that are done, the usual LRU victim) is reused at once.
   * Why: evictions were held until every render then in flight had finished, so a burst of cold
   * reads (a new viewport over 64³ Zarr chunks: 32 windows per render) found the idle memory
   * still waiting and allocated fresh memory, each page faulting in (bench:zarr: ~300 fresh
   * 128 KB buffers per run).
   */
  retire(buffer: ArrayBufferLike, lastReadAt: number = this.lastTicket): void {
    if (!this.lent.delete(buffer)) return;
    if (lastReadAt < this.oldestActiveTicket()) {
      this.keep(buffer as ArrayBuffer);
      return;
    }
    this.waiting.push({ buffer: buffer as ArrayBuffer, lastTicket: lastReadAt });
    if (this.waiting.length - this.waitingHead > (this.options.maxWaiting ?? 1024)) this.waitingHead++;
    this.release();
  }

  /**
   * Memory only its caller ever saw (a decode's scratch output, a compressed chunk once decoded),
   * done with: reusable at once, no render can hold it. Ignored unless it came from this pool.
   */
  recycle(buffer: ArrayBufferLike): void {
    if (this.lent.delete(buffer)) this.keep(buffer as ArrayBuffer);
  }

  stats(): SourceBufferPoolStats {
    let free = 0;
    for (const list of this.free.values()) free += list.length;
    return { reused: this.reused, allocated: this.allocated, waiting: this.waiting.length - this.waitingHead, renders: this.active.size, free, freeBytes: this.freeBytes };
  }

  /** Moves retired buffers that no render in flight can hold to the free lists. */
  /** The ticket of the oldest render in flight (Infinity when none is). */
  private oldestActiveTicket(): number {
    const oldest = this.active.values().next();
    return oldest.done ? Infinity : oldest.value;
  }

  private release(): void {
    const oldestActive = this.oldestActiveTicket();
    while (this.waitingHead < this.waiting.length) {
      const w = this.waiting[this.waitingHead] as { buffer: ArrayBuffer; lastTicket: number };
      // Every render that could have seen it has a ticket <= lastTicket.
      if (w.lastTicket >= oldestActive) break;
      this.waitingHead++;
      this.keep(w.buffer);
    }
    if (this.waitingHead > 64 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
  }

  /**
   * Keeps an idle buffer. Over maxFreeBytes, buffers are given up, oldest first, by a size nobody
   * has asked for in the last STALE_AFTER allocations (a previous dataset's), else by the size
   * holding the most idle bytes: idle memory is shared by the sizes in use. A worker reads source
   * tiles of one size, decodes Zarr chunks of another and reads them into a third. Trimming by age
   * (the size given back longest ago) dropped the 2 MB chunk buffers whenever a tile buffer came
   * back, which is every render: bench:zarr's 1024² chunks after 256² ones got 39-47 fresh buffers
   * per run against 17-23 alone, and ran at 0.55-0.67 of the copied source against 0.8-0.98.
   */
  private keep(buffer: ArrayBuffer): void {
    const size = buffer.byteLength;
    if (size > this.options.maxFreeBytes) return; // left to the collector
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buffer);
    this.freeBytes += size;
    while (this.freeBytes > this.options.maxFreeBytes) {
      let victim = size;
      let rank = -1;
      for (const [other, idle] of this.free) {
        const stale = this.handedOut - (this.lastAsked.get(other) ?? 0) > STALE_AFTER;
        // Stale sizes rank above every size in use; within each, the most idle bytes.
        const r = idle.length * other + (stale ? this.options.maxFreeBytes + 1 : 0);
        if (r > rank) {
          victim = other;
          rank = r;
        }
      }
      const idle = this.free.get(victim)!;
      idle.shift();
      this.freeBytes -= victim;
      if (idle.length === 0) {
        this.free.delete(victim);
        if (rank > this.options.maxFreeBytes) this.lastAsked.delete(victim); // stale: forget it
      }
    }
  }
}
