import type { ObjectStore } from '@tilefarm/storage';

/** The behaviour every ObjectStore adapter must have; each adapter's test file runs it. */
export interface ContractOptions {
  /**
   * Real S3, MinIO and the local adapter never show a partial object to a reader racing a write.
   * s3rver (the test server) streams into its file in place, so for it this one check is skipped:
   * the property belongs to the server, not to the adapter.
   */
  atomicUnderConcurrentRead: boolean;
}

export function objectStoreContract(
  name: string,
  open: () => Promise<{ store: ObjectStore; cleanup(): Promise<void> }>,
  options: ContractOptions = { atomicUnderConcurrentRead: true },
): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let store: ObjectStore;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await open());
    });
    afterAll(async () => {
      await store.close?.();
      await cleanup();
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('returns undefined for a missing key on get and head', async () => {
      expect(await store.get('missing/nothing.bin')).toBeUndefined();
      expect(await store.head('missing/nothing.bin')).toBeUndefined();
    });

    it('round-trips bytes exactly, including binary and empty bodies', async () => {
      const body = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 256));
      await store.put('a/b/c.bin', body, { contentType: 'application/octet-stream' });
      expect((await store.get('a/b/c.bin'))?.equals(body)).toBe(true);
      expect((await store.head('a/b/c.bin'))?.size).toBe(body.length);
      await store.put('a/empty.bin', Buffer.alloc(0));
      expect((await store.get('a/empty.bin'))?.length).toBe(0);
    });

    it('reads byte ranges, suffixes, and ranges cut at the end', async () => {
      const body = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 31 + 7) % 256));
      await store.put('range/obj.bin', body);
      expect((await store.getRange('range/obj.bin', { offset: 0, length: 10 }))?.equals(body.subarray(0, 10))).toBe(true);
      expect((await store.getRange('range/obj.bin', { offset: 4321, length: 1234 }))?.equals(body.subarray(4321, 5555))).toBe(true);
      expect((await store.getRange('range/obj.bin', { suffixLength: 16 }))?.equals(body.subarray(10_000 - 16))).toBe(true);
      expect((await store.getRange('range/obj.bin', { offset: 9_990, length: 100 }))?.equals(body.subarray(9_990))).toBe(true);
      expect((await store.getRange('range/obj.bin', { offset: 3, length: 0 }))?.length).toBe(0);
      expect((await store.getRange('range/obj.bin', { offset: 20_000, length: 5 }))?.length).toBe(0);
      expect((await store.getRange('range/obj.bin', { suffixLength: 50_000 }))?.equals(body)).toBe(true);
      expect(await store.getRange('range/missing.bin', { offset: 0, length: 4 })).toBeUndefined();
      await expect(store.getRange('range/obj.bin', { offset: -1, length: 4 })).rejects.toThrow(/invalid byte range/);
      await expect(store.getRange('../x', { offset: 0, length: 4 })).rejects.toThrow(/invalid object key/);
    });

    it('overwrites whole objects', async () => {
      await store.put('over/x.txt', Buffer.from('first version, long'));
      await store.put('over/x.txt', Buffer.from('second'));
      expect((await store.get('over/x.txt'))?.toString()).toBe('second');
    });

    (options.atomicUnderConcurrentRead ? it : it.skip)('never exposes a partial object to a concurrent reader', async () => {
      const big = Buffer.alloc(512 * 1024, 0xab);
      const small = Buffer.alloc(10, 0xcd);
      await store.put('race/obj', small);
      const reads: Promise<Buffer | undefined>[] = [];
      const write = store.put('race/obj', big);
      for (let i = 0; i < 20; i++) reads.push(store.get('race/obj'));
      await write;
      // A read may fail while a write is in flight (s3rver aborts it); one that succeeds is whole.
      for (const r of await Promise.allSettled(reads)) {
        if (r.status === 'rejected') continue;
        const got = r.value;
        expect(got === undefined || got.equals(big) || got.equals(small)).toBe(true);
      }
      expect((await store.get('race/obj'))?.equals(big)).toBe(true);
    });

    it('lists keys under a prefix in order, and not others', async () => {
      for (const k of ['list/2.txt', 'list/1.txt', 'list/sub/3.txt', 'listing-other/4.txt']) {
        await store.put(k, Buffer.from(k));
      }
      const keys: string[] = [];
      for await (const k of store.list('list/')) keys.push(k);
      expect(keys).toEqual(['list/1.txt', 'list/2.txt', 'list/sub/3.txt']);
    });

    it('deletes, and deleting a missing key is not an error', async () => {
      await store.put('del/x', Buffer.from('x'));
      await store.delete('del/x');
      expect(await store.get('del/x')).toBeUndefined();
      await expect(store.delete('del/never')).resolves.toBeUndefined();
    });

    it('rejects keys that could escape the store', async () => {
      await expect(store.put('../etc/passwd', Buffer.from('x'))).rejects.toThrow(/invalid object key/);
      await expect(store.get('/abs')).rejects.toThrow(/invalid object key/);
      await expect(store.get('a/../../b')).rejects.toThrow(/invalid object key/);
    });
  });
}
