import type { MemoryArena } from './memory-arena';

/**
 * Memory for source tiles read from storage, Zarr chunks and their decodes, cut from one arena
 * instead of allocated per read.
 *
 * Why: a raw-v1 256² uint16 source tile is 131,088 bytes, just over glibc's mmap threshold, so
 * every fresh buffer was a new mapping whose pages fault in as the read fills them (and are unmapped
 * again when the buffer is collected). Measured on the project VM: a 131 KB synchronous read into a
 * fresh buffer costs 90-470 us of CPU, into a reused one 17-28 us; a cold 3-channel tile reads three.
 * Why one arena and not a free list per size (sessions 8-26): a worker asks for sizes that come and
 * go with the datasets it serves (128 KB tiles and planes, 1.5 MB compressed and 2 MB decoded
 * 1024² chunks, 2 MB stacks of 64³ windows), and memory kept per size was of no use to the next
 * dataset's: bench:zarr end to end, a copied source's round after a linked 64³ one read 418-512 of
 * its 512 tiles into fresh memory (0.13-0.34 ms of garbage collection per tile against 0.02-0.04
 * alone), a 64³ round after a 1024² one 254-975 planes. Spans of the arena serve any size, and a
 * span given back merges with its free neighbours; memory the collector never sees costs it nothing.
 *
 * Ownership: a buffer from `allocate` belongs to whoever keeps the decoded tile (the worker's source
 * cache, which views the samples in place). When it lets go (`retire`), renders that started
 * earlier may still be reading the samples, so the memory is reused only once every render that
 * had `enter`ed by then has `leave`n; renders that start later cannot reach it (it is no longer in
 * the cache). When the arena has no room (a burst of renders holding memory, a render that never
 * finishes), buffers are fresh memory of their own, which the collector frees like any other: the
 * arena bounds what the pool holds, never what a worker can read. Not thread-safe (one event loop).
 */
export interface SourceBufferPoolOptions {
  /** Bytes of the arena buffers are cut from (poolArenaBytesFor; below 64 KB: none, every buffer fresh). */
  arenaBytes: number;
}

export interface SourceBufferPoolStats {
  /** Buffers cut from the arena. */
  fromArena: number;
  /** Buffers of fresh memory of their own (the arena had no room). */
  fresh: number;
  /** Retired arena spans waiting for older renders to finish. */
  waiting: number;
  /** Renders that have entered and not left. */
  renders: number;
  /** Arena spans handed out and not given back, and their bytes. */
  lent: number;
  lentBytes: number;
}

/**
 * The arena of a worker whose source cache holds `cacheBytes` (its read-ahead bytes included: their
 * memory comes and goes through the pool too): that, and half as much again (at least 32 MB) for
 * what renders hold besides (compressed chunks being decoded, tiles being assembled, memory retired
 * while older renders may read it) and for spans too small to use between the ones in use. Pages
 * the worker never needs are never touched, so never resident.
 */
export function poolArenaBytesFor(cacheBytes: number): number {
  return cacheBytes + Math.max(32 * 1024 * 1024, Math.floor(cacheBytes / 2));
}

/** Below this an arena is not worth its bookkeeping (tests and tiny caches run without one). */
const MIN_ARENA_BYTES = 64 * 1024;

// The allocator is loaded only by a process that keeps a pool (the worker): the API, the gateway
// and the ingest CLI import this package for other things.
function arenaModule(): typeof import('./memory-arena') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./memory-arena') as typeof import('./memory-arena');
}

export class SourceBufferPool {
  private readonly arena: MemoryArena | undefined;
  /**
   * Spans handed out and not yet given back, by offset (ascending, for the span holding a view) and
   * with their sizes. Only these are taken back, each once: a span given back twice would later be
   * handed to two owners.
   */
  private readonly lentAt: number[] = [];
  private readonly lentSize = new Map<number, number>();
  private lentBytes = 0;
  /** Retired spans in retirement order, each with the last render ticket issued at that moment. */
  private readonly waiting: { at: number; lastTicket: number }[] = [];
  private waitingHead = 0;
  /** Tickets of renders in flight, in ascending order (Set keeps insertion order). */
  private readonly active = new Set<number>();
  private lastTicket = 0;
  private fromArena = 0;
  private fresh = 0;

  constructor(options: SourceBufferPoolOptions) {
    this.arena = options.arenaBytes >= MIN_ARENA_BYTES ? new (arenaModule().MemoryArena)(options.arenaBytes) : undefined;
  }

  /** A buffer of exactly `size` bytes (contents undefined); it may share its ArrayBuffer with others (see byteOffset). */
  allocate(size: number): Buffer {
    const at = size > 0 ? this.arena?.allocate(size) : undefined;
    if (at === undefined) {
      this.fresh++;
      // Not zero-filled (contents are undefined either way): zeroing is a pass over memory every reader overwrites.
      return Buffer.allocUnsafeSlow(size);
    }
    this.fromArena++;
    this.lentAt.splice(this.firstAbove(at), 0, at);
    this.lentSize.set(at, size);
    this.lentBytes += size;
    return Buffer.from(this.arena!.buffer, at, size);
  }

  /** A render starts: memory retired from now on waits until it has left. */
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
   * The owner lets go of the memory behind `view` (a buffer from `allocate`, or a view into one: a
   * raw-v1 tile's samples after its header; anything else is ignored).
   * `lastReadAt`: `latestTicket()` when the memory was last handed to a reader (by default now).
   * Only renders with tickets up to it can hold it, so memory no render in flight has read (a
   * source-cache entry last read by renders that are done, the usual LRU victim) is reused at once.
   * Why: evictions were held until every render then in flight had finished, so a burst of cold
   * reads (a new viewport over 64³ Zarr chunks: 32 windows per render) found the idle memory
   * still waiting and allocated fresh memory (bench:zarr: ~300 fresh 128 KB buffers per run).
   */
  retire(view: ArrayBufferView, lastReadAt: number = this.lastTicket): void {
    const at = this.spanHolding(view);
    if (at === undefined || !this.takeBack(at)) return;
    if (lastReadAt < this.oldestActiveTicket()) {
      this.arena!.free(at);
      return;
    }
    this.waiting.push({ at, lastTicket: lastReadAt });
    this.release();
  }

  /**
   * Memory only its caller ever saw (a decode's scratch output, a compressed chunk once decoded),
   * done with: reusable at once, no render can hold it. Only a view from the start of a buffer
   * from `allocate` gives it back (its one holder sees it from there); anything else is ignored.
   */
  recycle(view: ArrayBufferView): void {
    if (view.buffer !== this.arena?.buffer || !this.takeBack(view.byteOffset)) return;
    this.arena.free(view.byteOffset);
  }

  /** The memory a view keeps alive: its span of the arena, or its whole ArrayBuffer. */
  bytesBehind(view: ArrayBufferView): number {
    const at = this.spanHolding(view);
    return at === undefined ? view.buffer.byteLength : this.lentSize.get(at)!;
  }

  stats(): SourceBufferPoolStats {
    return { fromArena: this.fromArena, fresh: this.fresh, waiting: this.waiting.length - this.waitingHead, renders: this.active.size, lent: this.lentAt.length, lentBytes: this.lentBytes };
  }

  /** The offset of the lent span that holds all of `view`, if any. */
  private spanHolding(view: ArrayBufferView): number | undefined {
    if (view.buffer !== this.arena?.buffer) return undefined;
    const at = this.lentAt[this.firstAbove(view.byteOffset) - 1];
    if (at === undefined || view.byteOffset + view.byteLength > at + this.lentSize.get(at)!) return undefined;
    return at;
  }

  /** Index of the first lent offset above `offset` (binary search). */
  private firstAbove(offset: number): number {
    let lo = 0;
    let hi = this.lentAt.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lentAt[mid]! <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Forgets a lent span (false when it is not lent: never handed out, or given back already). */
  private takeBack(at: number): boolean {
    const size = this.lentSize.get(at);
    if (size === undefined) return false;
    this.lentSize.delete(at);
    this.lentAt.splice(this.firstAbove(at) - 1, 1);
    this.lentBytes -= size;
    return true;
  }

  /** The ticket of the oldest render in flight (Infinity when none is). */
  private oldestActiveTicket(): number {
    const oldest = this.active.values().next();
    return oldest.done ? Infinity : oldest.value;
  }

  /** Gives the arena back the retired spans that no render in flight can hold. */
  private release(): void {
    const oldestActive = this.oldestActiveTicket();
    while (this.waitingHead < this.waiting.length) {
      const w = this.waiting[this.waitingHead]!;
      // Every render that could have seen it has a ticket <= lastTicket.
      if (w.lastTicket >= oldestActive) break;
      this.waitingHead++;
      this.arena!.free(w.at);
    }
    if (this.waitingHead > 64 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting.splice(0, this.waitingHead);
      this.waitingHead = 0;
    }
  }
}
