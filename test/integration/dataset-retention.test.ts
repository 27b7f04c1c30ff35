import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { TestSystem } from '../support/system';

// Issue 11 item 6: 20 re-ingests kept 21 versions (1.1 GB for one dataset). A replaced version's
// objects (sources and rendered tiles) are deleted after a grace period, so are a deleted
// dataset's, and a per-tenant quota refuses an ingest that would pass it.

const TOKEN_A = 'alpha-token-0123456789abcdef';
const bearer = { authorization: `Bearer ${TOKEN_A}` };
const json = { 'content-type': 'application/json' };

describe('old versions, deletion and the tenant quota', () => {
  let system: TestSystem;
  let root: string;

  const ingest = (id: string, source: string) => system.registerDataset({ id, source }, { token: TOKEN_A, timeoutMs: 60_000 });
  /** Versions that still have any object: sources under datasets/{id}/, rendered tiles in every shard. */
  const storedVersions = async (id: string) => {
    const versions = new Set<string>();
    for await (const key of system.store.list(`datasets/${id}/`)) versions.add(key.split('/')[2]!);
    for (let shard = 0; shard < 256; shard++) {
      for await (const key of system.store.list(`tiles/${shard.toString(16).padStart(2, '0')}/${id}/`)) versions.add(`rendered ${key.split('/')[3]}`);
    }
    return [...versions].sort();
  };
  const until = async (check: () => Promise<boolean>, ms: number) => {
    const deadline = Date.now() + ms;
    while (!(await check()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tilefarm-retention-'));
    const small = Buffer.alloc(64 * 48 * 3);
    for (let i = 0; i < small.length; i++) small[i] = i % 251;
    await sharp(small, { raw: { width: 64, height: 48, channels: 3 } }).png().toFile(join(root, 'small.png'));
    // 1024 × 1024 × 3 channels: 4 MB of uncompressed pyramid, a tiny file.
    await sharp(Buffer.alloc(1024 * 1024 * 3, 9), { raw: { width: 1024, height: 1024, channels: 3 } }).png().toFile(join(root, 'big.png'));
    system = await TestSystem.start({
      workers: 1,
      env: { ACCESS_TOKENS: `${TOKEN_A}:alpha`, INGEST_ROOT: root, VERSION_GRACE_S: '2', PRUNE_INTERVAL_MS: '200', TENANT_STORAGE_QUOTA_MB: '1' },
    });
  }, 120_000);
  afterAll(async () => {
    await system?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('deletes a replaced version (sources and rendered tiles) after the grace period, never the current one', async () => {
    expect(await ingest('keep', 'small.png')).toMatchObject({ state: 'completed', version: 1 });
    const spec = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { ...json, ...bearer }, body: JSON.stringify({ channels: [{ index: 0, color: '#ffffff', window: [0, 255] }], format: 'png' }) });
    const specId = ((await spec.json()) as { id: string }).id;
    expect((await fetch(`${system.apiUrl}/v1/tiles/keep/${specId}/0/0/0/0/0.png`, { headers: bearer })).status).toBe(200);
    expect(await storedVersions('keep')).toEqual(['rendered v1', 'v1']);
    for (const version of [2, 3]) expect(await ingest('keep', 'small.png')).toMatchObject({ state: 'completed', version });
    // Within the grace period the replaced versions are still there (tiles of them may be in flight).
    expect(await storedVersions('keep')).toContain('v2');
    await until(async () => (await storedVersions('keep')).join() === 'v3', 20_000);
    expect(await storedVersions('keep')).toEqual(['v3']);
    expect((await fetch(`${system.apiUrl}/v1/tiles/keep/${specId}/0/0/0/0/0.png`, { headers: bearer })).status).toBe(200);
  }, 120_000);

  it('deletes a deleted dataset\'s objects after the grace period', async () => {
    expect(await ingest('gone', 'small.png')).toMatchObject({ state: 'completed', version: 1 });
    expect((await fetch(`${system.apiUrl}/v1/datasets/gone`, { method: 'DELETE', headers: bearer })).status).toBe(204);
    expect((await fetch(`${system.apiUrl}/v1/datasets/gone`, { headers: bearer })).status).toBe(404);
    await until(async () => (await storedVersions('gone')).length === 0, 20_000);
    expect(await storedVersions('gone')).toEqual([]);
    // The id keeps counting: a new ingest is version 2, never a reuse of 1.
    expect(await ingest('gone', 'small.png')).toMatchObject({ state: 'completed', version: 2 });
  }, 120_000);

  it('refuses an ingest that would pass the tenant\'s quota, naming the figures', async () => {
    const refused = await ingest('too-big', 'big.png');
    expect(refused).toMatchObject({ state: 'failed', error: { code: 'quota_exceeded' } });
    // Counted as written: the worker stops the ingest once its bytes pass what the quota left.
    expect(refused.error?.message).toMatch(/tenant "alpha" has \d+ MB of 1 MB stored; this ingest stopped after writing \d+ MB \(bytes written to storage\)/);
    expect((await fetch(`${system.apiUrl}/v1/datasets/too-big`, { headers: bearer })).status).toBe(404);
  }, 60_000);
});
