import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import type { DatasetSummary } from '@tilefarm/contracts';
import { TestSystem } from '../support/system';
import { zarrFixtures } from '../support/zarr-fixtures';

// Issue 13, "In": an OME-Zarr registered where it lies (link) renders exactly like the same Zarr
// copied into tilefarm's own source tiles, for every render operation. Fixtures by Python's zarr.

const fixtures = zarrFixtures();
const json = { 'content-type': 'application/json' };

async function spec(system: TestSystem, body: unknown): Promise<string> {
  const res = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: json, body: JSON.stringify(body) });
  expect(res.status).toBeLessThan(300);
  return ((await res.json()) as { id: string }).id;
}

async function pixels(system: TestSystem, dataset: string, specId: string, level: number, z: number, x: number, y: number): Promise<Buffer> {
  const res = await fetch(`${system.apiUrl}/v1/tiles/${dataset}/${specId}/${level}/${z}/0/${x}/${y}.png`);
  if (res.status !== 200) throw new Error(`${dataset} ${level}/${z}/${x}/${y}: ${res.status} ${await res.text()}`);
  return sharp(Buffer.from(await res.arrayBuffer())).raw().toBuffer();
}

describe.each(['local', 's3'] as const)('linked OME-Zarr = copied OME-Zarr, pixel for pixel (%s storage)', (storage) => {
  let system: TestSystem;
  /** A Zarr under INGEST_ROOT, also put on the test's S3-protocol server (under zarr-src/). */
  async function uploadZarr(name: string): Promise<void> {
    const root = join(fixtures.dir, name);
    for (const file of readdirSync(root, { recursive: true, withFileTypes: true })) {
      if (file.isFile()) await system.store.put(`zarr-src/${name}/${relative(root, join(file.parentPath, file.name))}`, readFileSync(join(file.parentPath, file.name)));
    }
  }
  // The machine's shared chunks, this system's own (the default is one directory per user in /dev/shm).
  const sharedChunks = mkdtempSync(join(tmpdir(), 'tilefarm-shared-chunks-'));
  beforeAll(async () => {
    system = await TestSystem.start({ workers: 1, storage, env: { INGEST_ROOT: fixtures.dir, INGEST_S3_SOURCES: 'tilefarm-test/zarr-src', SHARED_CHUNKS_DIR: sharedChunks } });
    // From S3: the Zarrs are uploaded to the test's S3-protocol server and linked by s3:// URL.
    if (storage === 's3') for (const name of ['cells-ngff04.zarr', 'cells-ngff05.zarr']) await uploadZarr(name);
  }, 180_000);
  const source = (name: string) => (storage === 's3' ? `s3://tilefarm-test/zarr-src/${name}` : name);
  afterAll(async () => {
    await system?.stop();
    rmSync(sharedChunks, { recursive: true, force: true });
  });

  it('registers NGFF 0.4 and 0.5 (sharded) by link and by copy; omero defaults and physical size come along', async () => {
    for (const [id, source_, mode] of [['l04', 'cells-ngff04.zarr', undefined], ['c04', 'cells-ngff04.zarr', 'copy'], ['l05', 'cells-ngff05.zarr', 'link'], ['c05', 'cells-ngff05.zarr', 'copy']] as const) {
      const status = await system.registerDataset({ id, source: source(source_), ...(mode ? { mode } : {}) });
      expect({ id, state: status.state, error: status.error }).toMatchObject({ id, state: 'completed' });
    }
    const l04 = (await (await fetch(`${system.apiUrl}/v1/datasets/l04`)).json()) as DatasetSummary;
    expect(l04).toMatchObject({ width: 900, height: 700, sizeZ: 6, sizeT: 1, sizeC: 3, levels: 4, dtype: 'uint16' });
    expect(l04.channels.map((c) => [c.label, c.color, c.window])).toEqual([['DAPI', '#0000ff', [100, 600]], ['GFP', '#00ff00', [3100, 3600]], ['mCherry', '#ff0000', [6100, 6600]]]);
    // omero `active: false` (GFP in the fixture) is the dataset's default: off in the summary, the
    // /zarr/ view's omero block, OMERO.web's imgData and a webgateway render without c=.
    expect(l04.channels.map((c) => c.active !== false)).toEqual([true, false, true]);
    const view = (await (await fetch(`${system.apiUrl}/zarr/l04.zarr/.zattrs`)).json()) as { omero: { channels: { active: boolean }[] } };
    expect(view.omero.channels.map((c) => c.active)).toEqual([true, false, true]);
    const imgData = (await (await fetch(`${system.apiUrl}/webgateway/imgData/l04/`)).json()) as { channels: { active: boolean }[] };
    expect(imgData.channels.map((c) => c.active)).toEqual([true, false, true]);

    const l05 = (await (await fetch(`${system.apiUrl}/v1/datasets/l05`)).json()) as DatasetSummary;
    expect(l05).toMatchObject({ width: 800, height: 600, sizeZ: 4, sizeT: 2, sizeC: 2, levels: 3 });
    expect(l05.channels.map((c) => c.active !== false)).toEqual([true, true]);
    // Nothing was copied for the linked ones: no source tiles under their prefix.
    for (const id of ['l04', 'l05']) {
      const keys: string[] = [];
      for await (const k of system.store.list(`datasets/${id}/`)) keys.push(k);
      expect(keys.filter((k) => k.includes('/src/'))).toEqual([]);
    }
  }, 300_000);

  it('renders equal for window, LUT, formula and a max projection over z chunks', async () => {
    const specs = {
      window: await spec(system, { channels: [{ index: 0, window: [150, 500] }, { index: 1, window: 'auto' }], format: 'png' }),
      lut: await spec(system, { channels: [{ index: 1, lut: 'fire', window: [3100, 3400] }], format: 'png' }),
      formula: await spec(system, { channels: [{ formula: 'c1 - c0', color: '#ffffff', window: [2800, 3200] }], format: 'png' }),
      projection: await spec(system, { channels: [{ index: 0, window: [100, 3000] }, { index: 1, window: [3000, 6000] }], projection: { type: 'max', z: [0, 3] }, format: 'png' }),
    };
    let compared = 0;
    for (const [linked, copied, places] of [
      ['l04', 'c04', [[0, 4, 0, 0], [0, 1, 3, 2], [1, 5, 1, 1], [3, 0, 0, 0]]],
      ['l05', 'c05', [[0, 0, 0, 0], [0, 3, 2, 1], [2, 1, 0, 0]]],
    ] as const) {
      for (const [name, specId] of Object.entries(specs)) {
        for (const [level, z, x, y] of places) {
          const a = await pixels(system, linked, specId, level, z, x, y);
          const b = await pixels(system, copied, specId, level, z, x, y);
          expect({ name, linked, level, z, x, y, equal: a.equals(b) }).toEqual({ name, linked, level, z, x, y, equal: true });
          compared++;
        }
      }
    }
    expect(compared).toBe(28);
  }, 300_000);

  it('a worker started later reads back the chunks another decoded (none decoded again), and renders the same', async () => {
    // Level 0 of the NGFF 0.4 fixture: 4 × 3 tiles over 3 × 4 chunks of 300 × 200 × 2 z per channel.
    const places = [0, 1, 2].flatMap((y) => [0, 1, 2, 3].map((x) => [x, y] as const));
    const first = await spec(system, { channels: [{ index: 0, window: [120, 580] }, { index: 2, window: [6150, 6550] }], format: 'png' });
    for (const [x, y] of places) await pixels(system, 'l04', first, 0, 5, x, y);
    // The first worker dies (SIGKILL: nothing of its own is cleaned up); a new one takes over.
    await system.workers[0]!.stop('SIGKILL');
    const later = system.addWorker();
    for (let i = 0; i < 300 && !later.output.join('').includes('worker ready'); i++) await new Promise((r) => setTimeout(r, 100));
    const second = await spec(system, { channels: [{ index: 0, window: [130, 570] }, { index: 2, window: [6200, 6500] }], format: 'png' });
    for (const [x, y] of places) {
      const [a, b] = [await pixels(system, 'l04', second, 0, 5, x, y), await pixels(system, 'c04', second, 0, 5, x, y)];
      expect({ x, y, equal: a.equals(b) }).toEqual({ x, y, equal: true });
    }
    // Read back, one entry per tile and channel, for the 9 tiles whose windows the new worker did
    // not hold yet (the last column, 768-899, lies in the chunks 600-899 that the tile before it
    // read), both channels; none claimed and decoded by the new worker.
    expect(await system.workerCounter('tilefarm_shared_chunk_reads_total', { result: 'hit' })).toBe(18);
    expect(await system.workerCounter('tilefarm_shared_chunk_reads_total', { result: 'miss' })).toBe(0);
  }, 120_000);

  it('chunks deeper than a slice that lie inside a tile (the worker\'s stacks of planes) render equal too, through z and across windows; a worker started later reads back only the planes it renders', async () => {
    // Written by Python's zarr (Blosc lz4): 2 channels × 32 z × 512², chunks 1 × 32 × 64 × 64, 2 levels.
    const name = `deep-${process.pid}-${storage}`;
    execFileSync('/usr/bin/python3', [join(__dirname, '../../bench/support/zarr-bench-image.py'), fixtures.dir, '2', '32', '512', '2', `${name}:32:64`], { stdio: 'ignore' });
    try {
      if (storage === 's3') await uploadZarr(`${name}.zarr`);
      for (const [id, mode] of [['ld', 'link'], ['cd', 'copy']] as const) {
        expect(await system.registerDataset({ id, source: source(`${name}.zarr`), mode })).toMatchObject({ state: 'completed' });
      }
      const specs = [
        await spec(system, { channels: [{ index: 0, window: [100, 1500] }, { index: 1, window: [100, 3000] }], format: 'png' }),
        await spec(system, { channels: [{ formula: 'c1 - c0', color: '#ffffff', window: [0, 2000] }], format: 'png' }),
        await spec(system, { channels: [{ index: 0, window: [100, 4000] }], projection: { type: 'max', z: [3, 29] }, format: 'png' }),
      ];
      let compared = 0;
      for (const specId of specs) {
        // A scroll through z 14-17 crosses from one window of 16 planes to the next; level 1 too.
        for (const [level, z, x, y] of [[0, 14, 1, 1], [0, 15, 1, 1], [0, 16, 1, 1], [0, 17, 1, 1], [0, 31, 0, 1], [1, 2, 0, 0]] as const) {
          const [a, b] = [await pixels(system, 'ld', specId, level, z, x, y), await pixels(system, 'cd', specId, level, z, x, y)];
          expect({ specId, level, z, x, y, equal: a.equals(b) }).toEqual({ specId, level, z, x, y, equal: true });
          compared++;
        }
      }
      expect(compared).toBe(18);

      // A worker started later reads back only the planes it renders of the stacks the other decoded.
      await system.workers.at(-1)!.stop('SIGKILL');
      const later = system.addWorker();
      for (let i = 0; i < 300 && !later.output.join('').includes('worker ready'); i++) await new Promise((r) => setTimeout(r, 100));
      const again = await spec(system, { channels: [{ index: 0, window: [200, 1400] }, { index: 1, window: [150, 2900] }], format: 'png' });
      for (const z of [15, 17]) {
        const [a, b] = [await pixels(system, 'ld', again, 0, z, 1, 1), await pixels(system, 'cd', again, 0, z, 1, 1)];
        expect({ z, equal: a.equals(b) }).toEqual({ z, equal: true });
      }
      // Two planes of two channels, from the stacks of planes 0-15 and 16-31 (the Blosc block's other half), none decoded again.
      expect(await system.workerCounter('tilefarm_shared_chunk_reads_total', { result: 'plane' })).toBe(4);
      expect(await system.workerCounter('tilefarm_shared_chunk_reads_total', { result: 'hit' })).toBe(0);
      expect(await system.workerCounter('tilefarm_shared_chunk_reads_total', { result: 'miss' })).toBe(0);
    } finally {
      rmSync(join(fixtures.dir, `${name}.zarr`), { recursive: true, force: true });
    }
  }, 180_000);

  it('refuses what cannot be linked, clearly', async () => {
    const bad = await fetch(`${system.apiUrl}/v1/datasets`, { method: 'POST', headers: json, body: JSON.stringify({ id: 'bad1', source: 'cells-ngff04.zarr/0/.zarray', mode: 'link' }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/link.*OME-Zarr/);
    const missing = await system.registerDataset({ id: 'bad2', source: source('nothing-here.zarr') });
    expect(missing).toMatchObject({ state: 'failed', error: { code: 'source_unreadable' } });
    expect(missing.error?.message).toMatch(/not a Zarr group/);
  }, 60_000);

  it('a corrupt chunk: a linked tile over it fails with the reason (never zeros); a copy fails midway and leaves no object', async () => {
    // NGFF 0.4 with level 3's first chunk overwritten: statistics (level 0) pass, that chunk does not.
    const name = `broken-${process.pid}-${storage}.zarr`;
    const local = join(fixtures.dir, name);
    cpSync(fixtures.ngff04, local, { recursive: true });
    writeFileSync(join(local, '3', '0', '0', '0', '0'), Buffer.from('not a blosc chunk at all'));
    try {
      if (storage === 's3') await uploadZarr(name);
      expect(await system.registerDataset({ id: 'broken-link', source: source(name) })).toMatchObject({ state: 'completed' });
      const specId = await spec(system, { channels: [{ index: 0, window: [100, 600] }], format: 'png' });
      await expect(pixels(system, 'broken-link', specId, 3, 0, 0, 0)).rejects.toThrow(/corrupt/);
      expect((await pixels(system, 'broken-link', specId, 2, 0, 0, 0)).length).toBeGreaterThan(0); // the rest still renders

      const copy = await system.registerDataset({ id: 'broken-copy', source: source(name), mode: 'copy' });
      expect(copy).toMatchObject({ state: 'failed', error: { code: 'source_unreadable' } });
      expect(copy.error?.message).toMatch(/level 3 .*corrupt/);
      const left: string[] = [];
      for await (const k of system.store.list('datasets/broken-copy/')) left.push(k);
      expect(left).toEqual([]);
      expect((await fetch(`${system.apiUrl}/v1/datasets/broken-copy`)).status).toBe(404);
    } finally {
      rmSync(local, { recursive: true, force: true });
    }
  }, 120_000);
});
