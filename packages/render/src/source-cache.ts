/**
 * A bounded LRU cache by bytes, with counters for metrics. Generic so the worker can wrap
 * `readSource` with it (decoded source tiles: re-styling a view re-uses the reads) and the renderer
 * can keep its own derived tables in one too.
 */
export interface LruByteCacheStats {
  /** Reads served from memory, a load already in flight included. */
  hits: number;
  /** Reads that were not (getOrLoad then loads). */
  misses: number;
  evictions: number;
  entries: number;
  bytes: number;
  maxBytes: number;
  /** Values offered and kept; of those, read later (each also counted as a hit); bytes of offers held now. */
  offersKept: number;
  offersRead: number;
  offeredBytes: number;
}

export interface LruByteCacheOptions<V> {
  maxBytes: number;
  /** Size of a value in bytes; defaults to `byteLength` where the value has one, else 1. */
  sizeOf?: (value: V) => number;
  /**
   * Called once a value has left the cache (evicted, replaced, deleted, cleared, or too large to
   * keep): the worker gives pooled source-tile memory back this way. `lastRead` is `readClock`'s
   * reading at the value's last hit or store (undefined without a clock).
   */
  dispose?: (value: V, lastRead: number | undefined) => void;
  /**
   * Read at every hit and store; each entry keeps its latest reading for `dispose`. The worker
   * passes its pool's render tickets: memory no render in flight read can be reused at once.
   */
  readClock?: () => number;
  /**
   * Bytes kept apart for values offered, not asked for (`offer`): read-ahead. Offers never evict
   * what was asked for; the oldest offer goes first; an offer read becomes an ordinary entry.
   * Default 0: offers are not kept.
   */
  maxOfferBytes?: number;
}

interface Entry<V> {
  value: V;
  bytes: number;
  lastRead: number | undefined;
}

function defaultSizeOf(value: unknown): number {
  const n = (value as { byteLength?: unknown; data?: { byteLength?: unknown } } | null)?.byteLength ?? (value as { data?: { byteLength?: unknown } } | null)?.data?.byteLength;
  return typeof n === 'number' ? n : 1;
}

export class LruByteCache<K, V> {
  private readonly map = new Map<K, Entry<V>>();
  /** Offered values not read yet, oldest first, outside `bytes`/`maxBytes`. */
  private readonly offered = new Map<K, Entry<V>>();
  private offeredBytes = 0;
  private offersKept = 0;
  private offersRead = 0;
  readonly maxOfferBytes: number;
  private readonly inflight = new Map<K, Promise<V>>();
  private readonly sizeOf: (value: V) => number;
  private readonly dispose: ((value: V, lastRead: number | undefined) => void) | undefined;
  private readonly readClock: (() => number) | undefined;
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  readonly maxBytes: number;

  constructor(options: LruByteCacheOptions<V>) {
    if (!(options.maxBytes >= 0)) throw new RangeError('maxBytes must be >= 0');
    this.maxBytes = options.maxBytes;
    this.sizeOf = options.sizeOf ?? defaultSizeOf;
    this.dispose = options.dispose;
    this.readClock = options.readClock;
    this.maxOfferBytes = options.maxOfferBytes ?? 0;
  }

  /** The value, marked most recently used; counts a hit or a miss. */
  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (!e) {
      const offer = this.offered.get(key);
      if (offer) {
        this.offered.delete(key);
        this.offeredBytes -= offer.bytes;
        this.hits++;
        this.offersRead++;
        this.set(key, offer.value, offer.bytes);
        return offer.value;
      }
      this.misses++;
      return undefined;
    }
    this.hits++;
    e.lastRead = this.readClock?.();
    // Map keeps insertion order: re-inserting moves the key to the most-recent end.
    this.map.delete(key);
    this.map.set(key, e);
    return e.value;
  }

  has(key: K): boolean {
    return this.map.has(key) || this.offered.has(key);
  }

  /**
   * Keep a value nobody asked for yet (the other half of a block decoded for one half), in the
   * bytes kept apart for offers, so that it can never push out a value that was asked for. Ignored
   * when the key is held or the value is larger than those bytes; else the oldest offers make room.
   */
  offer(key: K, value: V, bytes: number = this.sizeOf(value)): void {
    if (this.map.has(key) || this.offered.has(key) || bytes > this.maxOfferBytes) {
      this.dispose?.(value, this.readClock?.());
      return;
    }
    this.offered.set(key, { value, bytes, lastRead: this.readClock?.() });
    this.offeredBytes += bytes;
    this.offersKept++;
    while (this.offeredBytes > this.maxOfferBytes) {
      const oldest = this.offered.keys().next();
      if (oldest.done) break;
      this.dropOffer(oldest.value);
    }
  }

  private dropOffer(key: K): void {
    const e = this.offered.get(key) as Entry<V>;
    this.offered.delete(key);
    this.offeredBytes -= e.bytes;
    this.dispose?.(e.value, e.lastRead);
  }

  /** Store a value; one larger than the whole cache is not stored (it would evict everything). */
  set(key: K, value: V, bytes: number = this.sizeOf(value)): void {
    if (this.offered.has(key)) this.dropOffer(key);
    const old = this.map.get(key);
    if (old) {
      this.map.delete(key);
      this.bytes -= old.bytes;
      if (old.value !== value) this.dispose?.(old.value, old.lastRead);
    }
    const lastRead = this.readClock?.();
    if (bytes > this.maxBytes) {
      this.dispose?.(value, lastRead);
      return;
    }
    this.map.set(key, { value, bytes, lastRead });
    this.bytes += bytes;
    while (this.bytes > this.maxBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      const e = this.map.get(oldest.value) as Entry<V>;
      this.map.delete(oldest.value);
      this.bytes -= e.bytes;
      this.evictions++;
      this.dispose?.(e.value, e.lastRead);
    }
  }

  delete(key: K): boolean {
    if (this.offered.has(key)) {
      this.dropOffer(key);
      return true;
    }
    const e = this.map.get(key);
    if (!e) return false;
    this.map.delete(key);
    this.bytes -= e.bytes;
    this.dispose?.(e.value, e.lastRead);
    return true;
  }

  clear(): void {
    const entries = this.dispose ? [...this.map.values(), ...this.offered.values()] : [];
    this.map.clear();
    this.offered.clear();
    this.bytes = 0;
    this.offeredBytes = 0;
    for (const e of entries) this.dispose?.(e.value, e.lastRead);
  }

  /** Whether a load of `key` is in flight: getOrLoad would join it. */
  loading(key: K): boolean {
    return this.inflight.has(key);
  }

  /**
   * The cached value, or load it once: concurrent callers for the same key share one load
   * (several tiles in flight often need the same source tile). A failed load is not cached.
   */
  async getOrLoad(key: K, load: () => Promise<V>): Promise<V> {
    // Joining a load in flight is a hit: only the load itself goes to storage (a miss).
    const pending = this.inflight.get(key);
    if (pending) {
      this.hits++;
      return pending;
    }
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const p = load().then(
      (v) => {
        this.inflight.delete(key);
        this.set(key, v);
        return v;
      },
      (e: unknown) => {
        this.inflight.delete(key);
        throw e;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  /** Entries held, offers included. */
  get size(): number {
    return this.map.size + this.offered.size;
  }

  stats(): LruByteCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      entries: this.map.size,
      bytes: this.bytes,
      maxBytes: this.maxBytes,
      offersKept: this.offersKept,
      offersRead: this.offersRead,
      offeredBytes: this.offeredBytes,
    };
  }
}
