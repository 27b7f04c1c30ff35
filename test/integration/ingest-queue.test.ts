import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import type { IngestAccepted, IngestProgressEvent, IngestStatusBody } from '@tilefarm/contracts';
import { TestSystem } from '../support/system';
import { TestViewer } from '../support/socket-client';
import { patternRows, writeTiff } from '../../packages/ingest/test/support/tiff-writer';

// Issue 4, "also as queue work": POST /v1/datasets queues an ingest whose units (file pages) are
// shared by two worker processes; progress goes over Redis to the socket of whoever watches it.

/** Shared fixtures live beside the repository: <clone>/../shared/fixtures (also in CI). */
const FIXTURES = resolve(__dirname, '../../../shared/fixtures');
const PYRAMID = join(FIXTURES, 'pyramid-4c-3z.ome.tif');
// 1300 × 900, 4 levels at 256 (24 + 6 + 2 + 1 tiles), 4 channels × 3 z = 12 pages (units).
const PYRAMID_TILES = 33 * 12;

const json = { 'content-type': 'application/json' };

async function post(system: TestSystem, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${system.apiUrl}/v1/datasets`, { method: 'POST', headers: json, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** One counter per worker process (not summed): who did the work. */
async function perWorker(system: TestSystem, name: string): Promise<number[]> {
  const out: number[] = [];
  for (const w of system.workers) {
    const port = /"metricsPort":(\d+)/.exec(w.output.join(''))?.[1];
    if (!port) throw new Error(`${w.name} has not logged its metrics port`);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
    out.push(line ? Number(line.split(' ').pop()) : 0);
  }
  return out;
}

/** A socket that watches one ingest and keeps every event it is sent. */
async function watch(viewer: TestViewer, jobId: string): Promise<{ events: IngestProgressEvent[]; ended: Promise<IngestProgressEvent> }> {
  const events: IngestProgressEvent[] = [];
  let resolveEnd!: (e: IngestProgressEvent) => void;
  const ended = new Promise<IngestProgressEvent>((r) => (resolveEnd = r));
  viewer.socket.on('ingest:progress', (e) => {
    if (e.jobId !== jobId) return;
    events.push(e);
    if (e.state !== 'running') resolveEnd(e);
  });
  const ack = await viewer.socket.timeout(10_000).emitWithAck('ingest:watch', { jobId });
  expect(ack).toEqual({ ok: true });
  return { events, ended: withTimeout(ended, 60_000, `ingest ${jobId} did not end`) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]).finally(() => clearTimeout(timer));
}

async function status(system: TestSystem, jobId: string): Promise<IngestStatusBody> {
  const res = await fetch(`${system.apiUrl}/v1/ingests/${jobId}`);
  expect(res.status).toBe(200);
  return (await res.json()) as IngestStatusBody;
}

describe('queued ingest (POST /v1/datasets), 2 workers', () => {
  let system: TestSystem;
  let root: string;
  let viewer: TestViewer;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tilefarm-ingest-root-'));
    copyFileSync(PYRAMID, join(root, 'pyramid.ome.tif'));
    // Deflate data garbled half-way through: the headers plan fine, one page fails to decode.
    const corrupt = Buffer.from(readFileSync(PYRAMID));
    const at = Math.floor(corrupt.length * 0.5);
    for (let i = 0; i < 4096; i++) corrupt[at + i] = (i * 131 + 7) & 255;
    writeFileSync(join(root, 'corrupt.ome.tif'), corrupt);
    // Inside the root by name, outside by target: the worker checks the real path.
    symlinkSync(PYRAMID, join(root, 'link-out.ome.tif'));
    // One plane carrying the OME-XML of the 12-plane fixture, as tools that copy metadata write it.
    const ome = /<\?xml[\s\S]*?<\/OME>/.exec(readFileSync(PYRAMID).toString('latin1'))![0];
    writeTiff(join(root, 'copied.ome.tif'), [{ width: 1300, height: 900, bits: 16, rows: patternRows(0, 1300, 16), rowsPerStrip: 64, compression: 'deflate', description: ome }]);
    system = await TestSystem.start({ workers: 2, env: { INGEST_ROOT: root, INGEST_CONCURRENCY: '1' } });
    // Both workers are up (they log their metrics port when ready) before any work is queued.
    await withTimeout(
      (async () => {
        while (system.workers.some((w) => !/"metricsPort":\d+/.test(w.output.join('')))) await new Promise((r) => setTimeout(r, 100));
      })(),
      20_000,
      'workers did not start',
    );
    viewer = new TestViewer(system.gatewayUrl());
    await viewer.connected();
  }, 60_000);

  afterAll(async () => {
    if (process.env.DEBUG_INGEST) for (const p of system.processes) console.log(p.name, p.output.join('').slice(-6000));
    viewer?.close();
    await system?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('ingests a shared fixture, both workers taking units, with increasing progress over the socket, then renders the known pixel', async () => {
    const accepted = await post(system, { id: 'pyr', source: 'pyramid.ome.tif', name: 'Pyramid fixture' });
    expect(accepted.status).toBe(202);
    const { jobId, dataset, statusUrl } = accepted.body as unknown as IngestAccepted;
    expect(dataset).toBe('pyr');
    expect(statusUrl).toBe(`/v1/ingests/${jobId}`);
    const { events, ended } = await watch(viewer, jobId);
    const last = await ended;

    expect(last).toMatchObject({ jobId, dataset: 'pyr', state: 'completed', done: PYRAMID_TILES, total: PYRAMID_TILES, version: 1 });
    const done = events.map((e) => e.done);
    for (let i = 1; i < done.length; i++) expect(done[i]!).toBeGreaterThanOrEqual(done[i - 1]!);
    expect(events.filter((e) => e.state === 'running' && e.done > 0 && e.done < PYRAMID_TILES).length).toBeGreaterThanOrEqual(2);
    expect(events.filter((e) => e.state !== 'running')).toHaveLength(1);

    expect(await status(system, jobId)).toMatchObject({ jobId, dataset: 'pyr', state: 'completed', done: PYRAMID_TILES, total: PYRAMID_TILES, units: 12, unitsDone: 12, version: 1 });
    // Units spread over both worker processes: each took some, all 12 done once.
    const units = await perWorker(system, 'tilefarm_ingest_units_total');
    expect(units.reduce((a, b) => a + b, 0)).toBe(12);
    for (const n of units) expect(n).toBeGreaterThan(0);
    expect((await perWorker(system, 'tilefarm_ingest_tiles_total')).reduce((a, b) => a + b, 0)).toBe(PYRAMID_TILES);

    const summary = (await (await fetch(`${system.apiUrl}/v1/datasets/pyr`)).json()) as Record<string, unknown>;
    expect(summary).toMatchObject({ id: 'pyr', version: 1, name: 'Pyramid fixture', width: 1300, height: 900, sizeZ: 3, sizeC: 4, levels: 4, dtype: 'uint16' });

    // A 1:1 level-0 gray tile with window [0, 255]: 8-bit output equals the raw value (clamped at 255).
    const spec = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: json, body: JSON.stringify({ channels: [{ index: 0, color: '#ffffff', window: [0, 255] }], format: 'png' }) });
    const specId = ((await spec.json()) as { id: string }).id;
    const tile = await fetch(`${system.apiUrl}/v1/tiles/pyr/${specId}/0/1/0/1/0.png`);
    expect(tile.status).toBe(200);
    const { data, info } = await sharp(Buffer.from(await tile.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([256, 256]);
    // Fixture README: z=1, c=0, y=123, x=456 → 211 (tile x=1 starts at 256).
    expect(data[(123 * info.width + (456 - 256)) * info.channels]).toBe(211);
    // Every pixel against libvips reading the file's page z=1, c=0 (page 4, ZCYX) independently.
    const page = await sharp(PYRAMID, { page: 4 }).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
    const source = new Uint16Array(page.data.buffer, page.data.byteOffset, page.data.byteLength / 2);
    let mismatches = 0;
    for (let y = 0; y < 256; y++) {
      for (let x = 0; x < 256; x++) if (data[(y * 256 + x) * info.channels] !== Math.min(255, source[y * 1300 + 256 + x]!)) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it('refuses a second ingest of the same id while one runs (409), then bumps the version', async () => {
    const first = await post(system, { id: 'again', source: 'pyramid.ome.tif' });
    expect(first.status).toBe(202);
    const second = await post(system, { id: 'again', source: 'pyramid.ome.tif' });
    expect(second.status).toBe(409);
    expect((second.body.error as { code: string }).code).toBe('conflict');
    const { ended } = await watch(viewer, (first.body as unknown as IngestAccepted).jobId);
    expect(await ended).toMatchObject({ state: 'completed', version: 1 });
    const third = await post(system, { id: 'again', source: join(root, 'pyramid.ome.tif') });
    expect(third.status).toBe(202);
    const { ended: ended3 } = await watch(viewer, (third.body as unknown as IngestAccepted).jobId);
    expect(await ended3).toMatchObject({ state: 'completed', version: 2 });
  });

  it('answers 400 for sources outside INGEST_ROOT and bad bodies, queueing nothing', async () => {
    for (const source of ['../escape.ome.tif', '/etc/passwd', `${root}/../x.tif`, 'file:///etc/passwd', 'http://example.com/a.tif', 's3://Bad_Bucket/key', 's3://bucket']) {
      const res = await post(system, { id: 'outside', source });
      expect([source, res.status, (res.body.error as { code: string }).code]).toEqual([source, 400, 'bad_request']);
    }
    // A local-storage deployment without INGEST_S3_SOURCES: an s3:// source is refused up front, by name (issue 11 item 12).
    const s3 = await post(system, { id: 'outside', source: 's3://some-bucket/a.ome.tif' });
    expect([s3.status, (s3.body.error as { code: string; message: string }).message]).toEqual([400, expect.stringContaining('INGEST_S3_SOURCES')]);
    expect((await post(system, { source: 'pyramid.ome.tif' })).status).toBe(400);
    expect((await post(system, { id: 'Bad Id', source: 'pyramid.ome.tif' })).status).toBe(400);
    expect((await post(system, { id: 'x', source: 'pyramid.ome.tif', extra: 1 })).status).toBe(400);
    expect((await fetch(`${system.apiUrl}/v1/ingests/ing-nothing-here`)).status).toBe(404);
    expect((await fetch(`${system.apiUrl}/v1/datasets/outside`)).status).toBe(404);
  });

  it('an OME-XML that does not describe its file: refused with the way forward, then ingested with "ignoreOmeXml" and a warning', async () => {
    const refused = await post(system, { id: 'copied', source: 'copied.ome.tif' });
    const failed = await (await watch(viewer, (refused.body as unknown as IngestAccepted).jobId)).ended;
    expect(failed).toMatchObject({ state: 'failed', code: 'source_unreadable' });
    expect(failed.message).toMatch(/OME-XML says .* but the file has only 1 pages; .*"ignoreOmeXml": true/);
    expect((await post(system, { id: 'copied', source: 'copied.ome.tif', ignoreOmeXml: 'yes' })).status).toBe(400);
    const accepted = await post(system, { id: 'copied', source: 'copied.ome.tif', ignoreOmeXml: true });
    expect(accepted.status).toBe(202);
    const jobId = (accepted.body as unknown as IngestAccepted).jobId;
    expect(await (await watch(viewer, jobId)).ended).toMatchObject({ state: 'completed', version: 1 });
    expect((await status(system, jobId)).warnings).toEqual([expect.stringMatching(/OME-XML was ignored as asked: its 1 page\(s\) were read as a plain TIFF/)]);
    const summary = (await (await fetch(`${system.apiUrl}/v1/datasets/copied`)).json()) as Record<string, unknown>;
    expect(summary).toMatchObject({ width: 1300, height: 900, sizeZ: 1 });
  });

  it('fails a missing file with a clear code; the watcher is told', async () => {
    const res = await post(system, { id: 'missing', source: 'not-there.ome.tif' });
    expect(res.status).toBe(202);
    const jobId = (res.body as unknown as IngestAccepted).jobId;
    const { ended } = await watch(viewer, jobId);
    const last = await ended;
    expect(last).toMatchObject({ state: 'failed', code: 'source_unreadable' });
    expect(last.message).toContain('not-there.ome.tif" does not exist');
    expect((await status(system, jobId)).error).toEqual({ code: 'source_unreadable', message: last.message });
    expect((await fetch(`${system.apiUrl}/v1/datasets/missing`)).status).toBe(404);
  });

  it('fails a symlink that leads outside INGEST_ROOT (bad_request), publishing nothing', async () => {
    const res = await post(system, { id: 'linked', source: 'link-out.ome.tif' });
    expect(res.status).toBe(202);
    const last = await (await watch(viewer, (res.body as unknown as IngestAccepted).jobId)).ended;
    expect(last).toMatchObject({ state: 'failed', code: 'bad_request', message: 'source "link-out.ome.tif" leads outside the ingest root' });
    expect((await fetch(`${system.apiUrl}/v1/datasets/linked`)).status).toBe(404);
  });

  it('fails a corrupt file in one unit: nothing published, partial tiles removed', async () => {
    const res = await post(system, { id: 'bad', source: 'corrupt.ome.tif' });
    expect(res.status).toBe(202);
    const jobId = (res.body as unknown as IngestAccepted).jobId;
    const { ended } = await watch(viewer, jobId);
    const last = await ended;
    expect(last).toMatchObject({ state: 'failed', code: 'source_unreadable' });
    expect(last.message).toMatch(/page 7 .*deflate data is corrupt/);
    expect(await status(system, jobId)).toMatchObject({ state: 'failed' });
    expect((await fetch(`${system.apiUrl}/v1/datasets/bad`)).status).toBe(404);
    // Units that were still running when the ingest failed clean up after themselves: wait for quiet.
    let left = -1;
    for (let i = 0; i < 50 && left !== 0; i++) {
      left = 0;
      for await (const _key of system.store.list('datasets/bad/')) left++;
      if (left) await new Promise((r) => setTimeout(r, 200));
    }
    expect(left).toBe(0);
    // The dataset id is free again after a failure. Versions are reserved atomically for every
    // writer and never reused (issue 11 item 7), so the retry publishes version 2.
    const retry = await post(system, { id: 'bad', source: 'pyramid.ome.tif' });
    expect(retry.status).toBe(202);
    expect(await (await watch(viewer, (retry.body as unknown as IngestAccepted).jobId)).ended).toMatchObject({ state: 'completed', version: 2 });
  });

  it('tells a watcher that comes after the end, and refuses unknown jobs', async () => {
    const res = await post(system, { id: 'late', source: 'pyramid.ome.tif' });
    const jobId = (res.body as unknown as IngestAccepted).jobId;
    for (let i = 0; i < 200 && (await status(system, jobId)).state !== 'completed'; i++) await new Promise((r) => setTimeout(r, 100));
    const { events, ended } = await watch(viewer, jobId);
    expect(await ended).toMatchObject({ state: 'completed', done: PYRAMID_TILES });
    expect(events).toHaveLength(1);
    const unknown = await viewer.socket.timeout(5000).emitWithAck('ingest:watch', { jobId: 'ing-nope-1' });
    expect(unknown).toMatchObject({ ok: false, error: { code: 'not_found' } });
  });
});

describe('queued ingest from s3://bucket/key (s3rver), S3 storage, 2 workers', () => {
  let system: TestSystem;
  let viewer: TestViewer;

  beforeAll(async () => {
    // No INGEST_ROOT: server-side paths are refused, S3 sources work.
    system = await TestSystem.start({ workers: 2, storage: 's3', env: { INGEST_S3_SOURCES: 'tilefarm-test/uploads' } });
    // The system's own store is an S3ObjectStore on the s3rver bucket (no key prefix).
    await system.store.put('uploads/pyramid.ome.tif', readFileSync(PYRAMID));
    viewer = new TestViewer(system.gatewayUrl());
    await viewer.connected();
  }, 60_000);

  afterAll(async () => {
    viewer?.close();
    await system?.stop();
  });

  it('downloads the object, ingests it on the workers and names the dataset after the object', async () => {
    expect((await post(system, { id: 'local', source: 'pyramid.ome.tif' })).status).toBe(400);
    // Only the configured bucket/prefix (INGEST_S3_SOURCES), whatever else the workers' credentials can read.
    for (const source of ['s3://other-bucket/uploads/pyramid.ome.tif', `s3://${system.env.S3_BUCKET}/datasets/x.tif`, `s3://${system.env.S3_BUCKET}/uploads/../catalog/x.json`]) {
      expect([source, (await post(system, { id: 'elsewhere', source })).status]).toEqual([source, 400]);
    }
    const res = await post(system, { id: 'from-s3', source: `s3://${system.env.S3_BUCKET}/uploads/pyramid.ome.tif` });
    expect(res.status).toBe(202);
    const last = await (await watch(viewer, (res.body as unknown as IngestAccepted).jobId)).ended;
    expect(last).toMatchObject({ state: 'completed', done: PYRAMID_TILES, version: 1 });
    const summary = (await (await fetch(`${system.apiUrl}/v1/datasets/from-s3`)).json()) as Record<string, unknown>;
    expect(summary).toMatchObject({ name: 'pyramid.ome.tif', width: 1300, height: 900, sizeC: 4 });
    const spec = await fetch(`${system.apiUrl}/v1/specs`, { method: 'POST', headers: json, body: JSON.stringify({ channels: [{ index: 0, color: '#ffffff', window: [0, 255] }], format: 'png' }) });
    const specId = ((await spec.json()) as { id: string }).id;
    const tile = await fetch(`${system.apiUrl}/v1/tiles/from-s3/${specId}/0/1/0/1/0.png`);
    const { data, info } = await sharp(Buffer.from(await tile.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    expect(data[(123 * info.width + (456 - 256)) * info.channels]).toBe(211);
  });

  it('fails a missing object with a clear code', async () => {
    const res = await post(system, { id: 'nope', source: `s3://${system.env.S3_BUCKET}/uploads/absent.tif` });
    const last = await (await watch(viewer, (res.body as unknown as IngestAccepted).jobId)).ended;
    expect(last).toMatchObject({ state: 'failed', code: 'source_unreadable' });
    expect(last.message).toContain('does not exist');
  });
});
