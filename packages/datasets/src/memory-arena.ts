import { MemPool } from '@thi.ng/malloc';

/**
 * One block of memory that buffers of any size are cut from and given back to (the only module
 * that loads @thi.ng/malloc: first fit over a free list kept in address order, neighbours merged as
 * they come back). Offsets are byte offsets into `buffer`, 8-byte aligned (any sample type views
 * them), 0 never being one. Not thread-safe (one event loop).
 */
export class MemoryArena {
  readonly buffer: ArrayBuffer;
  private readonly pool: MemPool;

  /** `bytes`: rounded down to 4 KB; at most 2 GB (the allocator keeps 32-bit offsets). */
  constructor(bytes: number) {
    const size = Math.floor(Math.min(bytes, MAX_ARENA_BYTES) / 4096) * 4096;
    // Not zero-filled: readers overwrite what they are given; the pages fault in as they are first used.
    this.buffer = Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer;
    this.pool = new MemPool({ buf: this.buffer, align: 8 });
  }

  /** The offset of `size` fresh bytes, or undefined when no free span holds them. */
  allocate(size: number): number | undefined {
    const at = this.pool.malloc(size);
    return at === 0 ? undefined : at;
  }

  /** Gives back the span at `offset` (from allocate; each once). */
  free(offset: number): void {
    this.pool.free(offset);
  }
}

/** The allocator's offsets are unsigned 32-bit. */
const MAX_ARENA_BYTES = 2 ** 31;
