import { LRUCache } from 'lru-cache';

/**
 * A cache with a fixed number of entries (least recently used go first) and an optional lifetime
 * per entry: what every lookup cache keyed by client input needs, or a client inventing keys grows
 * it without bound. The one module that imports lru-cache.
 */
export class BoundedCache<K extends {}, V> {
  private readonly entries: LRUCache<K, { value: V }>;

  constructor(maxEntries: number) {
    // Entries without a lifetime of their own live until evicted.
    this.entries = new LRUCache<K, { value: V }>({ max: maxEntries, ttlAutopurge: false, allowStale: false });
  }

  /** `{ value }` when cached (the value itself may be undefined: a remembered miss). */
  get(key: K): { value: V } | undefined {
    return this.entries.get(key);
  }

  /** `ttlMs` undefined: kept until evicted. */
  set(key: K, value: V, ttlMs?: number): void {
    this.entries.set(key, { value }, ttlMs === undefined ? {} : { ttl: ttlMs });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
