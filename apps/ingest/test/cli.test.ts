import { join } from 'node:path';
import { DatasetCatalog, readSourceTile } from '@tilefarm/datasets';
import { LocalObjectStore, openObjectStore } from '@tilefarm/storage';
import { runIngestCli as main } from '../src/cli';
import { startS3Server } from '../../../test/support/s3-server';
import { TestSystem } from '../../../test/support/system';
import { FIXTURES, tempCatalog, type TempCatalog } from '../../../packages/ingest/test/support/read-back';
import { patternRows, writeTiff } from '../../../packages/ingest/test/support/tiff-writer';
import { uniquePrefix } from '../../../test/support/redis';

// The CLI takes the same per-dataset lock as queued ingests: its own Redis prefix here.
const REDIS = { REDIS_PREFIX: uniquePrefix('cli') };

function captureIo(isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: { write: (s: string) => out.push(s), isTTY }, stderr: { write: (s: string) => err.push(s) } }, out, err };
}

let tc: TempCatalog;
beforeEach(() => {
  tc = tempCatalog();
});
afterEach(() => tc.cleanup());

describe('CLI', () => {
  it('ingests into DATA_DIR with plain progress lines when not on a terminal', async () => {
    const file = join(tc.dir, 'stack.tif');
    writeTiff(file, [0, 1].map((p) => ({ width: 300, height: 300, bits: 16 as const, rows: patternRows(p, 300, 16) })));
    const { io, out, err } = captureIo();
    const code = await main([file, '--id', 'cli-stack', '--name', 'From the CLI', '--tile-size', '512'], { DATA_DIR: join(tc.dir, 'data'), ...REDIS }, io);
    expect([code, err.join('')]).toEqual([0, '']);
    expect(out.join('')).toMatch(/ingest cli-stack: .*tiles\/s/);
    expect(out.join('')).toMatch(/ingested cli-stack v1: 300×300, 2 z, .* MP\/s\)/);
    const m = await new DatasetCatalog(new LocalObjectStore(join(tc.dir, 'data'))).get('cli-stack');
    expect(m).toMatchObject({ name: 'From the CLI', tileSize: 512, levels: 1 });
  });

  it('draws a bar on a terminal', async () => {
    const file = join(tc.dir, 'one.tif');
    writeTiff(file, [{ width: 600, height: 600, bits: 16, rows: patternRows(0, 600, 16) }]);
    const { io, out } = captureIo(true);
    expect(await main([file, '--id', 'tty'], { DATA_DIR: join(tc.dir, 'data'), ...REDIS }, io)).toBe(0);
    expect(out.join('')).toMatch(/\r(tiles|publish|done)\s+\[#+-*\]\s+\d+\.\d%.*ETA/);
  });

  it('reports every argument and environment problem at once, exit 2', async () => {
    const { io, err } = captureIo();
    const code = await main(['--tile-size', '300'], { STORAGE: 's3', S3_ENDPOINT: 'not a url', S3_ACCESS_KEY_ID: 'x' }, io);
    const text = err.join('');
    expect(code).toBe(2);
    for (const m of [/FILE is required/, /--id is required/, /--tile-size must be 256 or 512/, /S3_ENDPOINT/, /S3_BUCKET is required when STORAGE=s3/, /go together/]) expect(text).toMatch(m);
  });

  it("meets the tenant's storage quota like queued ingests (TENANT_STORAGE_QUOTA_MB): over it, exit 1 and nothing published", async () => {
    const file = join(tc.dir, 'big.tif');
    // 1024² uint16 of varied samples: about 2.7 MB written.
    writeTiff(file, [{ width: 1024, height: 1024, bits: 16, rows: patternRows(3, 1024, 16) }]);
    const data = join(tc.dir, 'data');
    const { io, err } = captureIo();
    expect(await main([file, '--id', 'over', '--tenant', 'lab'], { DATA_DIR: data, TENANT_STORAGE_QUOTA_MB: '1', ...REDIS }, io)).toBe(1);
    expect(err.join('')).toMatch(/ingest failed: tenant "lab" has 0 MB of 1 MB stored; this ingest stopped after writing \d+ MB \(bytes written to storage\)\nnothing was published/);
    const catalog = new DatasetCatalog(new LocalObjectStore(data));
    expect(await catalog.find('over')).toBeUndefined();
    // Within the quota it goes through, and its manifest records what it stored.
    expect(await main([file, '--id', 'fits', '--tenant', 'lab'], { DATA_DIR: data, TENANT_STORAGE_QUOTA_MB: '3', ...REDIS }, captureIo().io)).toBe(0);
    expect((await catalog.get('fits')).storedBytes).toBeGreaterThan(2 * 2 ** 20);
  });

  it('exits 1 naming the problem for bad input', async () => {
    const { io, err } = captureIo();
    expect(await main([join(tc.dir, 'missing.tif'), '--id', 'x'], { DATA_DIR: join(tc.dir, 'data'), ...REDIS }, io)).toBe(1);
    expect(err.join('')).toMatch(/ingest failed: cannot open .*missing\.tif.*\nnothing was published/);
  });
});

describe('S3 storage', () => {
  it('ingests the pyramid fixture into an S3-protocol server (s3rver) via the CLI environment', async () => {
    const s3 = await startS3Server();
    try {
      const { io, err } = captureIo();
      const code = await main([join(FIXTURES, 'pyramid-4c-3z.ome.tif'), '--id', 'pyr-s3'], { ...s3.env, ...REDIS }, io);
      expect([code, err.join('')]).toEqual([0, '']);
      const store = openObjectStore({ kind: 's3', bucket: s3.bucket, region: 'us-east-1', endpoint: s3.endpoint, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
      try {
        const catalog = new DatasetCatalog(store);
        const m = await catalog.get('pyr-s3');
        expect(m).toMatchObject({ version: 1, levels: 4, sizeZ: 3 });
        expect(m.channels).toHaveLength(4);
        const tile = await readSourceTile(store, 'pyr-s3', 1, { level: 0, t: 0, z: 1, c: 0, x: 1, y: 0 });
        expect(tile.data[123 * tile.width + 200]).toBe(211);
        expect((await catalog.getStats('pyr-s3', 1))?.planes).toHaveLength(12);
      } finally {
        await store.close?.();
      }
    } finally {
      await s3.stop();
    }
  }, 120_000);
});

describe('S3 storage with a key prefix', () => {
  it('writes under S3_PREFIX, where the API (same environment) finds the dataset and renders its tiles', async () => {
    const system = await TestSystem.start({ storage: 's3', workers: 1, env: { S3_PREFIX: 'lab-7/' } });
    try {
      const file = join(tc.dir, 'prefixed.tif');
      writeTiff(file, [0, 1].map((p) => ({ width: 300, height: 200, bits: 16 as const, rows: patternRows(p, 300, 16) })));
      const { io, err } = captureIo();
      expect([await main([file, '--id', 'prefixed'], system.env, io), err.join('')]).toEqual([0, '']);
      // Not at the bucket's root: under the prefix.
      expect(await new DatasetCatalog(system.store, 0).find('prefixed')).toBeUndefined();
      const res = await fetch(`${system.apiUrl}/v1/datasets/prefixed`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: 'prefixed', width: 300, height: 200, sizeZ: 2 });
      const spec = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channels: [{ index: 0, color: '#ffffff', window: [0, 65535] }], format: 'png' }) });
      const { id: specId } = (await spec.json()) as { id: string };
      const tile = await fetch(`${system.apiUrl}/v1/tiles/prefixed/${specId}/0/1/0/0/0.png`);
      expect([tile.status, tile.headers.get('content-type')]).toEqual([200, 'image/png']);
    } finally {
      await system.stop();
    }
  }, 180_000);
});
