import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { LocalObjectStore } from '@tilefarm/storage';
import { objectStoreContract } from './object-store-contract';

objectStoreContract('LocalObjectStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tilefarm-local-'));
  const files = () => (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[]).filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
  return { store: new LocalObjectStore(dir), cleanup: async () => rmSync(dir, { recursive: true, force: true }), files };
});

describe('LocalObjectStore.getInto', () => {
  it('reads a small object into the memory the caller gives; a missing key is undefined and allocates nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tilefarm-local-'));
    try {
      const store = new LocalObjectStore(dir);
      await store.put('a/b.bin', Buffer.from('hello'));
      const given: Buffer[] = [];
      const allocate = (size: number) => {
        const b = Buffer.alloc(size, 0xff);
        given.push(b);
        return b;
      };
      const got = await store.getInto('a/b.bin', allocate);
      expect(got?.toString()).toBe('hello');
      expect(got?.buffer).toBe(given[0]?.buffer);
      expect(await store.getInto('a/missing.bin', allocate)).toBeUndefined();
      expect(given).toHaveLength(1);
      await expect(store.getInto('a/b.bin', () => Buffer.alloc(3))).rejects.toThrow(/gave 3 bytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a store built to read larger objects synchronously reads them into the caller\'s memory too (the default leaves them to readFile)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tilefarm-local-'));
    try {
      const body = Buffer.alloc(1536 * 1024, 7);
      await new LocalObjectStore(dir).put('chunk', body);
      let allocated = 0;
      const allocate = (size: number) => (allocated++, Buffer.alloc(size));
      expect((await new LocalObjectStore(dir).getInto('chunk', allocate))?.equals(body)).toBe(true);
      expect(allocated).toBe(0);
      expect((await new LocalObjectStore(dir, { syncReadMaxBytes: 4 << 20 }).getInto('chunk', allocate))?.equals(body)).toBe(true);
      expect(allocated).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
