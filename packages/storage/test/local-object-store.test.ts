import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalObjectStore } from '@tilefarm/storage';
import { objectStoreContract } from './object-store-contract';

objectStoreContract('LocalObjectStore', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tilefarm-local-'));
  return { store: new LocalObjectStore(dir), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
});
