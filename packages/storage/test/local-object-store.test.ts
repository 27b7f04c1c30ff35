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
