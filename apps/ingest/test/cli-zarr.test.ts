import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { DatasetManifest } from '@tilefarm/contracts';
import { DatasetCatalog } from '@tilefarm/datasets';
import { LocalObjectStore, openObjectStore, type ObjectStore } from '@tilefarm/storage';
import { DatasetPixels, zarrPlaceResolver, type ChunkCache } from '@tilefarm/zarr';
import { runIngestCli as main } from '../src/cli';
import { startS3Server } from '../../../test/support/s3-server';
import { uniquePrefix } from '../../../test/support/redis';
import { fixtureValue, isFixtureFill, zarrFixtures } from '../../../test/support/zarr-fixtures';

// Issue 13: `npm run ingest -- IMAGE.zarr --id NAME [--link | --copy]` for local and s3:// OME-Zarr
// (fixtures by Python's zarr, test/fixtures/zarr/generate.py), checked against the fixtures' known
// values; a failed or stopped copy leaves no object behind.

const fixtures = zarrFixtures();
const REDIS = { REDIS_PREFIX: uniquePrefix('cli-zarr') };
const noCache: ChunkCache = { getOrLoad: (_key, load) => load() };

function captureIo(onWrite?: (s: string) => void, isTTY = false) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (s: string) => (out.push(s), onWrite?.(s)), isTTY }, stderr: { write: (s: string) => err.push(s) } },
    out,
    err,
  };
}

async function keys(store: ObjectStore, prefix = ''): Promise<string[]> {
  const all: string[] = [];
  for await (const k of store.list(prefix)) all.push(k);
  return all;
}

/** Known values of NGFF 0.4 (t=0) at a few level-0 and reduced positions, read back through the dataset's pixels. */
async function expectKnownValues(pixels: DatasetPixels, m: DatasetManifest, which: '04' | '05'): Promise<void> {
  const probes = which === '04' ? [[0, 0, 0, 1, 123, 456], [0, 0, 2, 4, 150, 250], [1, 0, 1, 5, 300, 400], [2, 0, 2, 3, 170, 220]] : [[0, 1, 1, 3, 500, 700], [0, 1, 1, 0, 100, 100], [1, 0, 0, 2, 250, 300], [2, 1, 1, 1, 120, 190]];
  for (const [level, t, c, z, y, x] of probes as [number, number, number, number, number, number][]) {
    const tile = await pixels.read(m, { level, t, c, z, x: Math.floor(x / 256), y: Math.floor(y / 256) }, noCache);
    const got = tile.data[(y % 256) * tile.width + (x % 256)];
    const f = 2 ** level;
    const want = isFixtureFill(which, level, t, c, z, y * f, x * f) ? 0 : fixtureValue(t, c, z, y * f, x * f);
    expect({ level, t, c, z, y, x, got }).toEqual({ level, t, c, z, y, x, got: want });
  }
}

describe('npm run ingest -- IMAGE.zarr (local)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tilefarm-cli-zarr-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('links a Zarr under INGEST_ROOT: no pixel copied, the manifest names it as the servers read it, known values', async () => {
    const data = join(dir, 'data');
    const { io, out, err } = captureIo();
    const code = await main([fixtures.ngff04, '--id', 'cli-l04', '--link'], { DATA_DIR: data, INGEST_ROOT: fixtures.dir, ...REDIS }, io);
    expect([code, err.join('')]).toEqual([0, '']);
    expect(out.join('')).toMatch(/link cli-l04: 100\.0%\s+18\/18 planes/);
    expect(out.join('')).toMatch(/linked cli-l04 v1: 900×700, 6 z, 1 t, 3 channel\(s\) \[DAPI, GFP, mCherry\], uint16, 4 levels .*no pixel copied; reads file:cells-ngff04\.zarr/);
    const store = new LocalObjectStore(data);
    const m = await new DatasetCatalog(store).get('cli-l04');
    expect(m.source).toMatchObject({ kind: 'zarr', url: 'file:cells-ngff04.zarr', zarrFormat: 2 });
    expect((await keys(store)).filter((k) => k.includes('/src/'))).toEqual([]);
    await expectKnownValues(new DatasetPixels(store, zarrPlaceResolver({ ingestRoot: fixtures.dir, s3: { region: 'us-east-1' } }), 2 ** 40), m, '04');
    // Linking is the default for a Zarr; a second registration is v2.
    const again = captureIo();
    expect(await main([`${fixtures.ngff04}/`, '--id', 'cli-l04'], { DATA_DIR: data, INGEST_ROOT: fixtures.dir, ...REDIS }, again.io)).toBe(0);
    expect(again.out.join('')).toMatch(/linked cli-l04 v2/);
  }, 120_000);

  it('copies a Zarr from anywhere into source tiles (--copy); refuses to link one outside INGEST_ROOT', async () => {
    const data = join(dir, 'data');
    const elsewhere = join(dir, 'elsewhere', 'cells.zarr');
    cpSync(fixtures.ngff05, elsewhere, { recursive: true });
    const refused = captureIo();
    expect(await main([elsewhere, '--id', 'cli-nolink'], { DATA_DIR: data, INGEST_ROOT: fixtures.dir, ...REDIS }, refused.io)).toBe(1);
    expect(refused.err.join('')).toMatch(/is not under INGEST_ROOT .*set INGEST_ROOT or use --copy\nnothing was published/);
    const { io, out, err } = captureIo();
    expect([await main([elsewhere, '--id', 'cli-c05', '--copy'], { DATA_DIR: data, ...REDIS }, io), err.join('')]).toEqual([0, '']);
    expect(out.join('')).toMatch(/copied cli-c05 v1: 800×600, 4 z, 2 t, 2 channel\(s\)/);
    const store = new LocalObjectStore(data);
    const m = await new DatasetCatalog(store).get('cli-c05');
    expect(m.source).toBeUndefined();
    expect((await keys(store)).filter((k) => k.includes('/src/')).length).toBeGreaterThan(100);
    // The copy stands alone: read back with no Zarr reachable at all.
    rmSync(elsewhere, { recursive: true, force: true });
    await expectKnownValues(new DatasetPixels(store, zarrPlaceResolver({ s3: { region: 'us-east-1' } }), 2 ** 40), m, '05');
  }, 120_000);

  it('a copy that fails midway (a corrupt chunk) or is stopped (Ctrl-C) leaves no object behind', async () => {
    const data = join(dir, 'data');
    const broken = join(dir, 'broken.zarr');
    cpSync(fixtures.ngff04, broken, { recursive: true });
    // Statistics come from level 0 (no level has 1 Mpx); the copy writes c=0 z=0's levels 0..2 before it reaches this chunk.
    writeFileSync(join(broken, '3', '0', '0', '0', '0'), Buffer.from('not a blosc chunk at all'));
    const failed = captureIo();
    expect(await main([broken, '--id', 'cli-broken', '--copy'], { DATA_DIR: data, ...REDIS }, failed.io)).toBe(1);
    expect(failed.err.join('')).toMatch(/ingest failed: .*level 3.*\nnothing was published/s);
    const store = new LocalObjectStore(data);
    expect(await keys(store)).toEqual([]);

    const controller = new AbortController();
    // Stopped at the first progress line of the copy phase (past the 18 planes of statistics), with tiles written.
    const stopped = captureIo((s) => {
      const m = /(\d+)\/(\d+) planes/.exec(s);
      if (m && Number(m[1]) > 18) controller.abort();
    }, true);
    expect(await main([fixtures.ngff04, '--id', 'cli-stopped', '--copy'], { DATA_DIR: data, ...REDIS }, { ...stopped.io, signal: controller.signal })).toBe(130);
    expect(stopped.err.join('')).toMatch(/stopped\nnothing was published/);
    expect(stopped.out.join('')).toMatch(/\[#+-*\]/);
    expect(await keys(store)).toEqual([]);
  }, 120_000);
});

describe('npm run ingest -- IMAGE.zarr under a tenant storage quota', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tilefarm-cli-zarr-quota-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a --copy counts the bytes it writes (over the quota: refused, nothing left); a --link writes none', async () => {
    const data = join(dir, 'data');
    const env = { DATA_DIR: data, INGEST_ROOT: fixtures.dir, TENANT_STORAGE_QUOTA_MB: '1', ...REDIS };
    // 900×700 × 6 z × 3 channels of uint16: about 30 MB of source tiles, against 1 MB.
    const over = captureIo();
    expect(await main([fixtures.ngff04, '--id', 'cli-q-copy', '--copy', '--tenant', 'lab'], env, over.io)).toBe(1);
    expect(over.err.join('')).toMatch(/ingest failed: tenant "lab" has 0 MB of 1 MB stored; this ingest stopped after writing 2 MB \(bytes written to storage\)\nnothing was published/);
    const store = new LocalObjectStore(data);
    expect((await keys(store)).filter((k) => k.includes('cli-q-copy'))).toEqual([]);
    const linked = captureIo();
    expect(await main([fixtures.ngff04, '--id', 'cli-q-link', '--link', '--tenant', 'lab'], env, linked.io)).toBe(0);
    expect((await new DatasetCatalog(store).get('cli-q-link')).storedBytes).toBe(0);
  }, 120_000);
});

describe('npm run ingest -- s3://bucket/prefix.zarr', () => {
  it('links a sharded NGFF 0.5 Zarr in an S3-protocol bucket, storage in the same bucket', async () => {
    const s3 = await startS3Server();
    const store = openObjectStore({ kind: 's3', bucket: s3.bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    try {
      for (const file of readdirSync(fixtures.ngff05, { recursive: true, withFileTypes: true })) {
        if (!file.isFile()) continue;
        const path = join(file.parentPath, file.name);
        await store.put(`zarr-src/cells.zarr/${relative(fixtures.ngff05, path)}`, readFileSync(path));
      }
      const { io, out, err } = captureIo();
      const code = await main([`s3://${s3.bucket}/zarr-src/cells.zarr`, '--id', 'cli-s05'], { ...s3.env, ...REDIS }, io);
      expect([code, err.join('')]).toEqual([0, '']);
      expect(out.join('')).toMatch(/linked cli-s05 v1: 800×600, 4 z, 2 t/);
      const m = await new DatasetCatalog(store).get('cli-s05');
      expect(m.source).toMatchObject({ kind: 'zarr', url: `s3://${s3.bucket}/zarr-src/cells.zarr`, zarrFormat: 3 });
      expect((await keys(store, 'datasets/')).filter((k) => k.includes('/src/'))).toEqual([]);
      const places = zarrPlaceResolver({ s3: { region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
      await expectKnownValues(new DatasetPixels(store, places, 2 ** 40), m, '05');
    } finally {
      await store.close?.();
      await s3.stop();
    }
  }, 120_000);
});
