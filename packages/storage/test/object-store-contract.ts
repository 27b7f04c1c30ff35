import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { multipartOf, type ObjectStore } from '@tilefarm/storage';

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
  /** `files` lists every file the store's backend holds (objects and multipart parts), looked at directly. */
  open: () => Promise<{ store: ObjectStore; cleanup(): Promise<void>; files(): string[] }>,
  options: ContractOptions = { atomicUnderConcurrentRead: true },
): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let store: ObjectStore;
    let cleanup: () => Promise<void>;
    let files: () => string[];
    beforeAll(async () => {
      ({ store, cleanup, files } = await open());
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

    it('writes in parts: nothing at the key until complete, parts joined in number order, a part sent again replaces it', async () => {
      const m = multipartOf(store);
      const MiB = 2 ** 20;
      // S3 wants every part but the last to be at least 5 MiB.
      const parts = [Buffer.alloc(5 * MiB, 1), Buffer.alloc(5 * MiB, 2), Buffer.from('the end')];
      const token = await m.beginMultipart('mp/file.tif');
      const etags: string[] = [];
      etags[2] = await m.putPart('mp/file.tif', token, 3, parts[2]!);
      etags[0] = await m.putPart('mp/file.tif', token, 1, Buffer.alloc(5 * MiB, 9)); // sent again below
      etags[1] = await m.putPart('mp/file.tif', token, 2, parts[1]!);
      etags[0] = await m.putPart('mp/file.tif', token, 1, parts[0]!);
      expect(await store.head('mp/file.tif')).toBeUndefined();
      await m.completeMultipart('mp/file.tif', token, [3, 1, 2].map((n) => ({ partNumber: n, etag: etags[n - 1]! })));
      const whole = Buffer.concat(parts);
      expect((await store.head('mp/file.tif'))?.size).toBe(whole.length);
      const dir = mkdtempSync(join(tmpdir(), 'tilefarm-mp-'));
      try {
        expect(await m.downloadTo('mp/file.tif', join(dir, 'f'))).toBe(whole.length);
        expect(readFileSync(join(dir, 'f')).equals(whole)).toBe(true);
        expect(await m.downloadTo('mp/missing.tif', join(dir, 'g'))).toBeUndefined();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      await store.delete('mp/file.tif');
      expect(files().filter((f) => /(^|\/)mp\//.test(f))).toEqual([]);
    });

    it('an aborted write in parts leaves no file behind, in the backend itself', async () => {
      const m = multipartOf(store);
      const before = files();
      const token = await m.beginMultipart('mp/cancelled.tif');
      await m.putPart('mp/cancelled.tif', token, 1, Buffer.alloc(5 * 2 ** 20, 3));
      await m.putPart('mp/cancelled.tif', token, 2, Buffer.from('x'));
      expect(files().length).toBeGreaterThan(before.length); // the parts are there, somewhere
      await m.abortMultipart('mp/cancelled.tif', token);
      expect(files()).toEqual(before);
      expect(await store.head('mp/cancelled.tif')).toBeUndefined();
      await expect(m.abortMultipart('mp/cancelled.tif', token)).resolves.toBeUndefined(); // twice: nothing to do
    });

    it('rejects keys that could escape the store', async () => {
      await expect(store.put('../etc/passwd', Buffer.from('x'))).rejects.toThrow(/invalid object key/);
      await expect(store.get('/abs')).rejects.toThrow(/invalid object key/);
      await expect(store.get('a/../../b')).rejects.toThrow(/invalid object key/);
    });
  });
}
