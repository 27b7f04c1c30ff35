import { LUT_TABLES, LruByteCache } from '@tilefarm/render';

describe('LruByteCache', () => {
  it('evicts least recently used entries by bytes and counts hits/misses', () => {
    const c = new LruByteCache<string, Uint16Array>({ maxBytes: 1000 });
    c.set('a', new Uint16Array(200)); // 400 B
    c.set('b', new Uint16Array(200));
    expect(c.get('a')).toBeDefined(); // a is now most recent
    c.set('c', new Uint16Array(200)); // 1200 B > 1000: evicts b
    expect(c.has('b')).toBe(false);
    expect(c.has('a')).toBe(true);
    expect(c.get('zzz')).toBeUndefined();
    expect(c.stats()).toMatchObject({ hits: 1, misses: 1, evictions: 1, entries: 2, bytes: 800, maxBytes: 1000 });
    c.set('huge', new Uint16Array(10_000)); // larger than the cache: not stored, nothing evicted
    expect(c.stats().entries).toBe(2);
    c.set('a', new Uint16Array(10)); // replacing updates the byte count
    expect(c.stats().bytes).toBe(420);
  });

  it('shares one load between concurrent callers and does not cache failures', async () => {
    const c = new LruByteCache<string, { data: Uint8Array }>({ maxBytes: 100 });
    let loads = 0;
    const load = async () => {
      loads++;
      return { data: new Uint8Array(10) };
    };
    const [x, y] = await Promise.all([c.getOrLoad('k', load), c.getOrLoad('k', load)]);
    expect(x).toBe(y);
    expect(loads).toBe(1);
    // One load (a miss); the caller that joined it is served from memory (a hit).
    expect(c.stats()).toMatchObject({ hits: 1, misses: 1 });
    expect(c.stats().bytes).toBe(10); // sized by .data.byteLength (SourceTile shape)
    await expect(c.getOrLoad('bad', async () => Promise.reject(new Error('nope')))).rejects.toThrow('nope');
    expect(c.has('bad')).toBe(false);
  });
});

describe('LUT tables', () => {
  const at = (name: keyof typeof LUT_TABLES, i: number) => [...LUT_TABLES[name].subarray(i * 3, i * 3 + 3)];
  it('have 256 entries and match published anchor colours', () => {
    for (const t of Object.values(LUT_TABLES)) expect(t.length).toBe(768);
    expect(at('gray', 0)).toEqual([0, 0, 0]);
    expect(at('gray', 200)).toEqual([200, 200, 200]);
    expect(at('viridis', 0)).toEqual([0x44, 0x01, 0x54]);
    expect(at('viridis', 255)).toEqual([0xfd, 0xe7, 0x25]);
    expect(at('magma', 255)).toEqual([0xfc, 0xfd, 0xbf]);
    expect(at('inferno', 0)).toEqual([0, 0, 4]);
    expect(at('cividis', 0)).toEqual([0x00, 0x20, 0x4d]);
    expect(at('fire', 0)).toEqual([0, 0, 0]);
    expect(at('fire', 255)[0]).toBe(255);
    expect(at('ice', 0)).toEqual([0, 156, 140]);
  });
});

describe('LruByteCache dispose', () => {
  it('is called once for every value that leaves: evicted, replaced, deleted, cleared, refused', () => {
    const gone: string[] = [];
    const c = new LruByteCache<string, { name: string; byteLength: number }>({ maxBytes: 100, dispose: (v) => gone.push(v.name) });
    const v = (name: string, byteLength = 40) => ({ name, byteLength });
    c.set('a', v('a1'));
    c.set('b', v('b1'));
    c.set('c', v('c1')); // evicts a
    expect(gone).toEqual(['a1']);
    const b = v('b2');
    c.set('b', b); // replaced
    c.set('b', b); // the same value again: not disposed
    expect(gone).toEqual(['a1', 'b1']);
    c.set('huge', v('huge', 1000)); // refused
    c.delete('c');
    c.clear();
    expect(gone).toEqual(['a1', 'b1', 'huge', 'c1', 'b2']);
  });
});

describe('LruByteCache readClock', () => {
  it('hands dispose the clock reading at the last hit or store, not at eviction', async () => {
    let now = 1;
    const gone: [string, number | undefined][] = [];
    const c = new LruByteCache<string, { name: string; byteLength: number }>({ maxBytes: 100, readClock: () => now, dispose: (v, lastRead) => gone.push([v.name, lastRead]) });
    c.set('a', { name: 'a', byteLength: 40 }); // stored at 1
    now = 2;
    await c.getOrLoad('b', async () => ({ name: 'b', byteLength: 40 })); // stored at 2
    now = 3;
    c.get('a'); // read at 3
    c.has('b'); // not a read
    now = 7;
    c.set('c', { name: 'c', byteLength: 40 }); // evicts b, last read at 2
    c.clear();
    expect(gone).toEqual([
      ['b', 2],
      ['a', 3],
      ['c', 7],
    ]);
  });
});

describe('LruByteCache offers (read-ahead)', () => {
  const bytes = (n: number) => new Uint8Array(n);

  it('never push out what was asked for; the oldest offer makes room for a newer one', () => {
    const cache = new LruByteCache<string, Uint8Array>({ maxBytes: 8, maxOfferBytes: 4 });
    cache.set('a', bytes(4));
    cache.set('b', bytes(4));
    cache.offer('x', bytes(2));
    cache.offer('y', bytes(2));
    cache.offer('z', bytes(2));
    expect(['a', 'b', 'x', 'y', 'z'].map((k) => cache.has(k))).toEqual([true, true, false, true, true]);
    expect(cache.stats()).toMatchObject({ bytes: 8, entries: 2, evictions: 0, offersKept: 3, offersRead: 0, offeredBytes: 4 });
  });

  it('an offer read is a hit and becomes an ordinary entry, which evicts by recency like any store', () => {
    const cache = new LruByteCache<string, Uint8Array>({ maxBytes: 8, maxOfferBytes: 4 });
    cache.set('a', bytes(4));
    cache.set('b', bytes(4));
    const y = bytes(2);
    cache.offer('y', y);
    expect(cache.get('y')).toBe(y);
    expect(['a', 'b', 'y'].map((k) => cache.has(k))).toEqual([false, true, true]);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 0, bytes: 6, entries: 2, evictions: 1, offersRead: 1, offeredBytes: 0 });
  });

  it('an offer of a key held, larger than the offer bytes, or with none kept apart is given back at once; every offer that leaves is given back once', () => {
    const disposed: string[] = [];
    const named = (name: string, n: number) => Object.assign(bytes(n), { name });
    const dispose = (v: Uint8Array & { name?: string }) => disposed.push(v.name!);
    const none = new LruByteCache<string, Uint8Array & { name?: string }>({ maxBytes: 8, dispose });
    none.offer('x', named('x0', 1));
    expect(none.has('x')).toBe(false);
    const cache = new LruByteCache<string, Uint8Array & { name?: string }>({ maxBytes: 8, maxOfferBytes: 4, dispose });
    cache.set('a', named('a', 2));
    cache.offer('a', named('a-offered', 2));
    cache.offer('big', named('big', 5));
    cache.offer('x', named('x1', 1));
    cache.set('x', named('x2', 1)); // asked for and stored: the offer is replaced
    cache.offer('y', named('y', 1));
    cache.offer('z', named('z', 1));
    cache.delete('y');
    cache.clear();
    expect(disposed.sort()).toEqual(['a', 'a-offered', 'big', 'x0', 'x1', 'x2', 'y', 'z'].sort());
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, offeredBytes: 0 });
  });
});
